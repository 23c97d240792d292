"""The reference engine with a real redis-server: contents, replays, dead letters, privacy."""
import json
import subprocess
import sys

import pytest
import redis

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import MemorySink, redis_decisions, run_reference
from shiftstream.runners.simulate import write_outputs
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

CFG = load_config()


@pytest.fixture(scope="module")
def sim():
    return simulate(SimConfig(users=80, events=8000, seed=5, privacy_rate=0.05))


def decisions_and_client(url):
    return redis_decisions(url), redis.Redis.from_url(url)


def test_redis_holds_the_decisions_and_a_replay_leaves_the_same_contents(sim, redis_url):
    mem = MemorySink()
    run_reference(sim.events, sink=mem)
    sink = RedisSink(redis_url, CFG.redis.key_prefix, CFG.redis.ttl)
    run_reference(sim.events, sink=sink)
    first, client = decisions_and_client(redis_url)
    assert first == mem.stable() and len(first) > 50
    ttl = client.pttl(f"ss:d:{next(iter(first))}")
    assert 0 < ttl <= CFG.redis.ttl
    run_reference(sim.events, sink=RedisSink(redis_url, CFG.redis.key_prefix, CFG.redis.ttl))  # replay
    second = redis_decisions(redis_url)
    assert second == first


def test_bad_messages_become_dead_letters_and_good_ones_all_arrive(sim):
    wire = WireCodec(MemoryRegistry(), "interaction")
    from shiftstream.runners.simulator import wire_messages

    msgs = list(wire_messages(sim, wire))
    empty_user = wire.encode({**sim.events[0], "event_id": "x-1", "user_id": ""})
    job, sink, cap = run_reference(msgs + [empty_user], messages=True)
    reasons = {d["reason"] for d in cap.dead_letters}
    assert len(cap.dead_letters) == len(sim.malformed) + 1
    assert {"truncated", "bad_magic_byte", "unknown_schema_id", "unknown_enum_symbol", "bad_value"} <= reasons
    assert job.stats["events"] == len(sim.events)  # every good event processed
    blob = json.dumps(cap.dead_letters)
    assert "user-0" not in blob and all(d["detail"] for d in cap.dead_letters)
    assert all(d["payload_sha256"] and d["payload_length"] for d in cap.dead_letters)
    assert not any("payload_b64" in d for d in cap.dead_letters)  # no byte of a payload is kept


def _traces(job, sink_decisions, raw_id, key, client=None):
    found = []
    if key in job.states:
        found.append("state")
    if key in job.dirty or raw_id in job.pseudonymise.cached_raw_ids():
        found.append("runner memory")
    if any(k == key for _, k in job.timers):
        found.append("timers")
    if key in sink_decisions:
        found.append("sink")
    if client is not None:
        for k in client.scan_iter():
            if key.encode() in k or raw_id.encode() in k:
                found.append(f"redis key {k!r}")
            elif client.type(k) == b"hash":
                if any(key.encode() in v or raw_id.encode() in v for v in client.hgetall(k).values()):
                    found.append(f"redis value in {k!r}")
    return found


def test_erasure_leaves_no_trace_in_redis_or_the_runner(sim, redis_url):
    ps = Pseudonymiser(DEV_KEY)
    users = sorted(sim.truth["users"])
    victims = users[:3]
    mid = len(sim.events) // 2
    privacy = [(mid, {"request_id": f"r{i}", "user_id": u, "kind": "erasure", "ts": sim.events[mid]["ts"],
                      "source": "test"}) for i, u in enumerate(victims)]
    # only events before the request: the users leave for good
    events = [e for i, e in enumerate(sim.events) if i < mid or e["user_id"] not in victims]
    sink = RedisSink(redis_url, CFG.redis.key_prefix, CFG.redis.ttl)
    job, _, cap = run_reference(events, sink=sink, privacy=privacy)
    decisions, client = decisions_and_client(redis_url)
    for u in victims:
        assert _traces(job, decisions, u, ps(u), client) == []
    assert _traces(job, decisions, users[5], ps(users[5]), client) != []  # the check can find a trace
    assert job.stats["purged.erasure"] == 3


def test_consent_opt_in_and_revoke():
    sim = simulate(SimConfig(users=10, events=1500, seed=8, privacy_rate=0, too_late=0))
    ps = Pseudonymiser(DEV_KEY)
    cfg = CFG.replace(**{"privacy.consent_mode": "opt_in"})
    u0, u1 = sorted(sim.truth["users"])[:2]
    grant_ts = sim.events[len(sim.events) // 2]["ts"]
    job, sink, _ = run_reference(sim.events, cfg, privacy=[(0, {"request_id": "g", "user_id": u0,
                                                               "kind": "consent_granted", "ts": grant_ts,
                                                               "source": None})])
    assert set(sink.decisions) == {ps(u0)}
    first_applied = sink.decisions[ps(u0)]["features"]["events_total"]
    assert 0 < first_applied < sum(1 for e in sim.events if e["user_id"] == u0)
    # opt-out (default): a revoke removes the decision and blocks what follows
    job, sink, _ = run_reference(sim.events, privacy=[(len(sim.events) // 3, {
        "request_id": "r", "user_id": u1, "kind": "consent_revoked", "ts": sim.events[len(sim.events) // 3]["ts"],
        "source": None})])
    assert ps(u1) not in sink.decisions and ps(u0) in sink.decisions
    assert job.stats["blocked.consent_revoked"] > 0


def test_run_and_lookup_commands(tmp_path, redis_url):
    sim = simulate(SimConfig(users=30, events=3000, seed=12))
    paths = write_outputs(sim, tmp_path / "events.frames", 12)
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "run", "--input", str(paths["events"]), "--privacy",
                        str(paths["privacy"]), "--redis-url", redis_url, "--out-dir", str(tmp_path), "--quiet",
                        "--models", "none"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{sim.truth['counts']['deliveries']:,} events" in r.stdout and "dead_letters" in r.stdout
    dead = (tmp_path / "dead-letters.jsonl").read_text().splitlines()
    assert len(dead) == sim.truth["counts"]["malformed"]
    erased = {p["user_id"] for p in sim.privacy}
    uid = next(u for u in sorted(sim.truth["users"]) if u not in erased)
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "lookup", uid, "--redis-url", redis_url],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"segment", "shift", "top_categories", "features", "event_time", "updated_at"} <= set(d)
    assert set(d["shift"]) >= {"detected", "from_category", "to_category", "score", "at"}
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "lookup", "nobody", "--redis-url", redis_url],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no decision" in r.stderr


def test_a_restored_snapshot_continues_exactly_and_snapshots_are_incremental(sim, tmp_path):
    """Snapshot twice mid-stream (the second one re-serialises only the users touched since), write it with
    jobs/snapshots.py, restore into a fresh job, and finish: the same decisions, late events and counts."""
    from shiftstream.jobs import snapshots
    from shiftstream.jobs.reference import ReferenceJob
    from shiftstream.jobs.testing import Captured, MemorySink
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    cfg = load_config()

    def job():
        cap = Captured()
        return ReferenceJob(cfg, MemorySink(), Pseudonymiser(DEV_KEY), cap.outputs(), clock=lambda: 1.8e9), cap

    events = sim.events
    whole, whole_cap = job()
    for i, e in enumerate(events):
        whole.on_record(e, 0, i)
    whole.finish()

    a, a_cap = job()
    third = len(events) // 3
    for i, e in enumerate(events[:third]):
        a.on_record(e, 0, i)
    a.flush()
    a.snapshot()
    for i, e in enumerate(events[third:2 * third], third):
        a.on_record(e, 0, i)
    a.flush()
    touched = len(a._touched)
    path = tmp_path / "x.snapshot"
    snapshots.save(path, a.snapshot(), {("t", 0): 2 * third}, {}, ["t"])
    assert 0 < touched < len(a.states) + 1
    b, b_cap = job()
    b.restore(snapshots.load(path)["job"])
    for i, e in enumerate(events[2 * third:], 2 * third):
        b.on_record(e, 0, i)
    b.finish()
    got = {**a.sink.stable(), **b.sink.stable()}
    assert got == whole.sink.stable()
    assert a_cap.late + b_cap.late == whole_cap.late
    drop = lambda s: {k: v for k, v in s.items() if k != "decisions_written"}  # noqa: E731 (flushes differ)
    assert drop(b.summary()) == drop(whole.summary())


def test_a_checkpoint_cut_short_is_a_clear_error(tmp_path):
    import pytest

    from shiftstream.jobs import snapshots

    path = tmp_path / "g.snapshot"
    path.write_bytes(b"\x80\x05garbage")
    with pytest.raises(snapshots.CheckpointError, match="not a readable checkpoint.*delete it"):
        snapshots.load(path)


def test_a_forked_checkpoint_is_not_put_in_place_once_its_job_is_gone(tmp_path):
    """A background checkpoint (written by a forked child) whose parent died meanwhile must not replace what a
    restarted job may have written since."""
    import os

    from shiftstream.jobs import snapshots

    path = tmp_path / "ckpt"
    snapshots.save(path, {"x": 1}, {}, {}, ["t"], parent=os.getppid())  # our parent is alive: put in place
    assert snapshots.load(path)["job"] == {"x": 1}
    with pytest.raises(snapshots.CheckpointError, match="gone"):
        snapshots.save(path, {"x": 2}, {}, {}, ["t"], parent=os.getpid())  # not our parent
    assert snapshots.load(path)["job"] == {"x": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
