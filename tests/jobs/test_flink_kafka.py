"""The deployed form of the PyFlink job on a real Kafka-protocol broker and a real redis-server: decisions, dead
letters and late events end to end, and recovery from a checkpoint after the job is killed mid-stream."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from shiftstream.jobs.testing import create_topic, kafka_messages, redis_decisions, run_reference
from shiftstream.runners.simulate import produce
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.flink]
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, prefix: str, batching: dict | None = None, **engine) -> Path:
    """A config file of our own: topics and consumer group named for the test, checkpoints in tmp_path."""
    cfg = {"kafka": {"decisions_topic": f"{prefix}-decisions", "dead_letter_topic": f"{prefix}-dead",
                     "late_topic": f"{prefix}-late", "group_id": f"{prefix}-group",
                     "privacy_topic": f"{prefix}-privacy"},
           "engine": {"checkpoint_dir": str(tmp_path / "checkpoints"), "checkpoint_interval": "1s", **engine},
           "batching": batching or {}}
    p = tmp_path / f"{prefix}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _run(bootstrap, topic, redis_url, config, *extra, timeout=300, **popen):
    cmd = [sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", "flink", "--kafka-bootstrap", bootstrap,
           "--topic", topic, "--redis-url", redis_url, "--models", "none", "--config", str(config), *extra]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **popen)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _kill_mid_stream(p, log, tmp_path, client, producer) -> int:
    """Once the job checkpoints, start the producer; after two more checkpoints and a decision in Redis, SIGKILL
    the whole job (client and mini-cluster JVM: a crash, not a cancel) with the producer still going. Returns
    how many decisions Redis had then."""
    def completed():
        return {str(m.parent) for m in (tmp_path / "checkpoints").glob("*/chk-*/_metadata")}

    try:
        deadline = time.monotonic() + 240
        while not completed():  # the job is up and checkpointing
            assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        before = completed()
        producer.start()
        while len(completed() - before) < 2 or client.dbsize() == 0:
            assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.1)
        assert producer.is_alive()  # mid-stream
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        log.close()
    partial = client.dbsize()
    client.close()
    producer.join()
    return partial


@pytest.fixture(scope="module")
def produced(kafka_broker):
    """Simulated events with every imperfection (late, duplicate, malformed), produced once to a topic."""
    sim = simulate(SimConfig(users=60, events=6000, seed=41, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                             duplicates=0.05, malformed=0.01, privacy_rate=0))
    produce(sim, kafka_broker.bootstrap, "fk-events", "fk-privacy", rate=None, progress=False)
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    job, mem, cap = run_reference(msgs, messages=True)
    return sim, mem.stable(), job.summary()


def test_kafka_in_decisions_dead_letters_and_late_events_out(produced, kafka_broker, redis_url, tmp_path):
    sim, reference, summary = produced
    r = _run(kafka_broker.bootstrap, "fk-events", redis_url, _config(tmp_path, "e2e"), "--bounded")
    assert r.returncode == 0, r.stderr[-3000:]
    assert redis_decisions(redis_url) == reference  # the reference runner's Redis contents, key by key

    decisions = kafka_messages(kafka_broker.bootstrap, "e2e-decisions")
    wire = WireCodec(MemoryRegistry(), "decision")
    last = {}
    for m in decisions:
        d = wire.decode(m)
        d.pop("updated_at")
        last[d["user_key"]] = d
    assert {k: {f: v for f, v in d.items() if f != "user_key"} for k, d in last.items()} == \
        {k: {f: v for f, v in d.items() if f != "user_key"} for k, d in reference.items()}

    dead = [json.loads(m) for m in kafka_messages(kafka_broker.bootstrap, "e2e-dead")]
    assert len(dead) == len(sim.malformed) == summary["dead_letters"] > 0
    assert all(d["reason"] and d["source"] == "fk-events" for d in dead)
    late = [json.loads(m) for m in kafka_messages(kafka_broker.bootstrap, "e2e-late")]
    assert len(late) == summary["late"] > 0
    assert all(x["event"]["ts"] <= x["watermark"] for x in late)
    assert f"decisions {len(decisions):,}" in r.stdout and f"dead_letters {len(dead):,}" in r.stdout


def test_killed_mid_stream_and_restored_from_a_checkpoint_gives_the_uninterrupted_result(
        produced, kafka_broker, redis_url, tmp_path):
    """Events arrive while the job runs; once checkpoints exist and decisions are in Redis, SIGKILL the whole job
    (client and mini-cluster JVM: a crash, not a cancel) with the producer still going; then restart from the
    latest checkpoint. Nothing lost, nothing counted twice: the final Redis equals the reference runner's."""
    import threading

    sim, reference, _ = produced
    cfg = _config(tmp_path, "rec", checkpoint_interval="500ms")
    create_topic(kafka_broker.bootstrap, "rec-events")  # a source with no partition yet takes no checkpoints
    log = open(tmp_path / "first.log", "w")
    p = _run(kafka_broker.bootstrap, "rec-events", redis_url, cfg, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(redis_url)
    sent = {}
    producer = threading.Thread(target=lambda: sent.setdefault("n", produce(
        sim, kafka_broker.bootstrap, "rec-events", "rec-privacy", rate=400, progress=False)))

    partial = _kill_mid_stream(p, log, tmp_path, client, producer)
    r = _run(kafka_broker.bootstrap, "rec-events", redis_url, cfg, "--bounded", "--from-checkpoint", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "restored from" in r.stderr
    assert 0 < partial and redis_decisions(redis_url) == reference


def test_decisions_buffered_at_a_checkpoint_are_written_by_the_restored_flush_timers(
        produced, kafka_broker, redis_url, tmp_path):
    """Decisions flush only on a 30 s timer here (no micro-batch fills). The job reads the whole topic, a checkpoint
    covers it, and the job is SIGKILLed before any flush: Redis is empty. Restored with nothing left to read (no
    event is replayed, no watermark moves, so no event-time timer fires), only the flush timers restored from the
    checkpoint can write decisions: every user's must arrive."""
    from shiftstream.jobs.kafka import topic_ends, wait_committed

    _, reference, _ = produced
    cfg = _config(tmp_path, "ft", {"flush_interval": "30s", "micro_batch_size": 100_000}, checkpoint_interval="500ms")
    end = topic_ends(kafka_broker.bootstrap, ["fk-events"])["fk-events"]
    first = _run(kafka_broker.bootstrap, "fk-events", redis_url, cfg, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(redis_url)
    try:
        wait_committed(kafka_broker.bootstrap, "ft-group-flink", "fk-events", end, timeout_s=120)  # a checkpoint covers all
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert client.dbsize() == 0  # nothing flushed before the crash
    second = _run(kafka_broker.bootstrap, "fk-events", redis_url, cfg, "--from-checkpoint", "latest",
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while client.dbsize() < len(reference) and time.monotonic() < deadline:
            assert second.poll() is None
            time.sleep(0.5)
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()
        client.close()
    restored = redis_decisions(redis_url)
    assert restored.keys() == reference.keys()
    # states as of the checkpoint: before the end of input closed the last sessions, never past the final ones
    assert all(d["event_time"] <= reference[k]["event_time"] for k, d in restored.items())


def test_a_normal_stop_is_quiet_and_leaves_a_savepoint(produced, kafka_broker, redis_url, tmp_path):
    """SIGTERM (as Ctrl-C) stops the job with a savepoint: the savepoint line, exit 0, and no py4j traceback."""
    cfg = _config(tmp_path, "stop", checkpoint_interval="500ms")
    p = _run(kafka_broker.bootstrap, "fk-events", redis_url, cfg, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
             text=True)
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "checkpoints").glob("*/chk-*/_metadata")):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, err[-3000:]
    assert "stopping with a savepoint" in err and "savepoint " in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]


def test_content_choices_killed_mid_stream_and_restored_give_the_reference_runners_choices(
        kafka_broker, redis_url, tmp_path):
    """The content example's five slots, an experiment and threshold rules, on the deployed form: the job is
    SIGKILLed mid-stream and restored from its latest checkpoint (the per-user operator's state and the deciding
    operator's learner replica and waiting rows). The final Redis equals the reference runner's, choices and
    propensities included."""
    import threading

    from shiftstream.transforms.config import load_config

    example = yaml.safe_load((ROOT / "config" / "content-example.yaml").read_text())["content"]
    example["thresholds"] = [{"name": "loose", "slot": "homepage_hero", "action": "pause_arm", "window": "12h",
                              "baseline": "1d", "below": 5, "min_exposures": 1, "hold": "3d"}]
    cfg_path = _config(tmp_path, "cc", checkpoint_interval="500ms")
    data = yaml.safe_load(cfg_path.read_text())
    data["content"] = example
    cfg_path.write_text(yaml.safe_dump(data))
    cfg = load_config(cfg_path)
    sim = simulate(SimConfig(users=60, events=6000, seed=43, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                             duplicates=0.05, malformed=0.01, privacy_rate=0))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    job, mem, _ = run_reference(msgs, cfg, messages=True)
    reference = mem.stable()
    assert job.summary()["events"] > 0 and all(d["content"] for d in reference.values())

    create_topic(kafka_broker.bootstrap, "cc-events")
    log = open(tmp_path / "first.log", "w")
    p = _run(kafka_broker.bootstrap, "cc-events", redis_url, cfg_path, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(redis_url)
    producer = threading.Thread(target=lambda: produce(sim, kafka_broker.bootstrap, "cc-events", "cc-privacy",
                                                       rate=400, progress=False))

    _kill_mid_stream(p, log, tmp_path, client, producer)
    r = _run(kafka_broker.bootstrap, "cc-events", redis_url, cfg_path, "--bounded", "--from-checkpoint", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "restored from" in r.stderr
    assert redis_decisions(redis_url) == reference


def test_privacy_requests_from_their_topic_purge_and_refuse_on_the_flink_job(kafka_broker, redis_url, tmp_path):
    """Erasures and a consent revoke on the privacy topic (which the job creates if missing, and reads with the
    events): those users have no decision left in Redis, whichever topic the job read first; everyone else's
    decisions are the reference runner's for the events alone; a broken request is a dead letter of the privacy
    source."""
    from confluent_kafka import Producer

    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    sim = simulate(SimConfig(users=30, events=3000, seed=47, privacy_rate=0, malformed=0))
    produce(sim, kafka_broker.bootstrap, "fp-events", "fp-unused", rate=None, progress=False)
    users = sorted(sim.truth["users"])
    gone, revoked = users[:3], users[3]
    after = max(e["ts"] for e in sim.events) + 1000  # after all their events: both orders end with no decision
    pwire = WireCodec(MemoryRegistry(), "privacy_request")
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i, u in enumerate(gone + [revoked]):
        p.produce("fp-privacy", pwire.encode({"request_id": f"r{i}", "user_id": u, "ts": after, "source": "test",
                                              "kind": "erasure" if u in gone else "consent_revoked"}))
    p.produce("fp-privacy", b"\x00\x00\x00\x00\x07broken")
    p.flush(10)
    r = _run(kafka_broker.bootstrap, "fp-events", redis_url, _config(tmp_path, "fp"), "--bounded")
    assert r.returncode == 0, r.stderr[-3000:]
    ps = Pseudonymiser(DEV_KEY)
    got = redis_decisions(redis_url)
    assert not {ps(u) for u in gone + [revoked]} & set(got)
    _, mem, _ = run_reference(list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction"))), messages=True)
    want = {k: v for k, v in mem.stable().items() if k not in {ps(u) for u in gone + [revoked]}}
    assert got == want and len(want) == len(users) - 4
    dead = [json.loads(m) for m in kafka_messages(kafka_broker.bootstrap, "fp-dead")]
    assert [d["source"] for d in dead] == ["privacy"]


def _keyed(sim, bootstrap: str, topic: str, rate: float | None = None) -> None:
    """The simulation's messages onto 4 partitions, each user's in one (as a keyed producer sends them)."""
    from confluent_kafka import Producer

    from shiftstream.schemas.errors import DecodeError

    wire = WireCodec(MemoryRegistry(), "interaction")
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    users = sorted(sim.truth["users"])
    for i, m in enumerate(wire_messages(sim, wire)):
        try:
            part = users.index(wire.decode(m)["user_id"]) % 4
        except (DecodeError, ValueError):
            part = i % 4
        p.produce(topic, m, partition=part)
        if rate:
            p.poll(0)
            time.sleep(1 / rate)
    assert p.flush(30) == 0


def _reference_on(bootstrap, topic, redis_url, cfg, out: Path):
    """The reference runner over the topic: its Redis contents and its late events (key, event id), sorted."""
    ref = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "run", "--kafka-bootstrap", bootstrap,
                          "--topic", topic, "--idle-exit", "3", "--redis-url", redis_url, "--models", "none",
                          "--config", str(cfg), "--out-dir", str(out), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    return redis_decisions(redis_url), sorted((r["key"], r["event"]["event_id"])
                                              for r in map(json.loads, (out / "late-events.jsonl").open()))


def _late_on(bootstrap, topic):
    return sorted((x["key"], x["event"]["event_id"]) for x in map(json.loads, kafka_messages(bootstrap, topic)))


def _sim4(seed):
    return simulate(SimConfig(users=60, events=6000, seed=seed, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                              duplicates=0.05, malformed=0.01, privacy_rate=0))


def test_four_partitions_at_parallelism_two_give_the_reference_runners_result(kafka_broker, redis_url, tmp_path):
    """Each user's events in one of 4 partitions (keyed, as producers send them), read by the reference runner and
    by the Flink job at parallelism 2: the same decisions key by key and the same late events, though each
    interleaves the partitions its own way (an event is late against its own partition's watermark)."""
    sim = _sim4(53)
    create_topic(kafka_broker.bootstrap, "mp-events", 4)
    _keyed(sim, kafka_broker.bootstrap, "mp-events")
    cfg = _config(tmp_path, "mp", parallelism=2)
    want, want_late = _reference_on(kafka_broker.bootstrap, "mp-events", redis_url, cfg, tmp_path / "ref")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    r = _run(kafka_broker.bootstrap, "mp-events", redis_url, cfg, "--bounded")
    assert r.returncode == 0, r.stderr[-3000:]
    assert redis_decisions(redis_url) == want and len(want) == len(sim.truth["users"])
    late = _late_on(kafka_broker.bootstrap, "mp-late")
    assert late == want_late and late  # too-late events exist, and both call the same ones late
    dead = [json.loads(m) for m in kafka_messages(kafka_broker.bootstrap, "mp-dead")]
    assert len(dead) == len(sim.malformed) and {d["partition"] for d in dead} <= {0, 1, 2, 3}


def test_four_partitions_at_parallelism_two_killed_mid_stream_and_restored_give_the_reference_runners_result(
        kafka_broker, redis_url, tmp_path):
    """The same at parallelism 2 on 4 partitions, with a crash: events arrive while the job runs, the whole job is
    SIGKILLed after checkpoints and decisions, then restored from the latest checkpoint and run to the end. The final
    Redis and the late events (both runs', a replayed one once) are the reference runner's over the same topic."""
    import threading

    sim = _sim4(59)
    cfg = _config(tmp_path, "mpr", parallelism=2, checkpoint_interval="500ms")
    create_topic(kafka_broker.bootstrap, "mpr-events", 4)
    log = open(tmp_path / "first.log", "w")
    p = _run(kafka_broker.bootstrap, "mpr-events", redis_url, cfg, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(redis_url)
    producer = threading.Thread(target=_keyed, args=(sim, kafka_broker.bootstrap, "mpr-events", 400))
    partial = _kill_mid_stream(p, log, tmp_path, client, producer)
    r = _run(kafka_broker.bootstrap, "mpr-events", redis_url, cfg, "--bounded", "--from-checkpoint", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "restored from" in r.stderr
    got, late = redis_decisions(redis_url), sorted(set(_late_on(kafka_broker.bootstrap, "mpr-late")))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    want, want_late = _reference_on(kafka_broker.bootstrap, "mpr-events", redis_url, cfg, tmp_path / "ref")
    assert 0 < partial and got == want and len(want) == len(sim.truth["users"])
    assert late == sorted(set(want_late)) and late
