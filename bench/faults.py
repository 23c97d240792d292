"""Fault runs with real servers (`python -m bench.faults`): each fault is done to a run, and the run is compared key
by key with the same input run without the fault. Prints the README's reliability table.

Every driver returns an `Outcome`; tests/faults runs the same drivers, smaller, and asserts nothing is lost.
The reference runner runs as `shiftstream run` in a subprocess against a real broker (noida-db) and a real
redis-server, with checkpoints every 500 ms; the expected result is the same messages through the reference job in
this process."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shiftstream.jobs.testing import create_topic, redis_decisions, run_reference
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec


@dataclass
class Outcome:
    fault: str
    runner: str
    done: str
    decisions: int                 # users with a decision in the fault-free run
    differ: int                    # of those, decisions that differ (or are missing) after the fault
    dead_lost: int = 0             # dead letters of the fault-free run missing from the side output
    late_lost: int = 0             # late events likewise
    duplicated: int = 0            # side-output records written more than once
    notes: dict = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.differ + self.dead_lost + self.late_lost

    def row(self) -> str:
        extra = "; ".join(f"{k} {v}" for k, v in self.notes.items())
        return (f"| {self.fault} | {self.runner} | {self.done} | {self.differ} of {self.decisions:,} | "
                f"{self.dead_lost} | {self.late_lost} | {self.duplicated} |" + (f" {extra} |" if extra else " |"))


HEADER = ("| fault | runner | what was done | decisions differing | dead letters lost | late events lost | "
          "duplicated outputs | notes |\n|---|---|---|---|---|---|---|---|")


# -- shared pieces -----------------------------------------------------------------------------------------------

def stream(events: int, users: int, seed: int) -> tuple[list[bytes], object]:
    """Messages with dead letters and late events among them (so losing either shows), and the simulation."""
    sim = simulate(SimConfig(users=users, events=events, seed=seed, out_of_order=0.05, max_delay_s=60,
                             too_late=0.01, duplicates=0.01, malformed=0.01, privacy_rate=0.0))
    return list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction"))), sim


def expected(msgs: list[bytes]):
    """The fault-free result: (decisions without updated_at, dead letters by offset, late events by id)."""
    _, sink, cap = run_reference(msgs, messages=True)
    return (sink.stable(), sorted(d["offset"] for d in cap.dead_letters),
            sorted((r["key"], r["event"]["event_id"]) for r in cap.late))


def produce(bootstrap: str, topic: str, msgs: list[bytes]) -> None:
    from confluent_kafka import Producer

    from shiftstream.jobs.kafka import client_config

    p = Producer(client_config(bootstrap, **{"linger.ms": 5, "acks": "all",
                                             "max.in.flight.requests.per.connection": 1}))
    for m in msgs:
        while True:
            try:
                p.produce(topic, m)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(60):
        raise RuntimeError(f"could not deliver to {topic}")


def config(tmp: Path, retry_for: str = "120s") -> Path:
    p = tmp / "faults.yaml"
    p.write_text(f"engine:\n  checkpoint_interval: 500ms\n  checkpoint_dir: {tmp / 'checkpoints'}\n"
                 f"redis:\n  retry_for: {retry_for}\n")
    return p


def runner(bootstrap: str, redis_url: str, topic: str, tmp: Path, idle_exit: float | None = None,
           group: str = "faults") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "shiftstream.runners.cli", "run", "--kafka-bootstrap", bootstrap, "--topic", topic,
           "--privacy-topic", topic + "-privacy", "--redis-url", redis_url, "--models", "none",
           "--out-dir", str(tmp / "out"), "--config", str(config(tmp)), "--group-id", group, "--quiet"]
    if idle_exit is not None:
        cmd += ["--idle-exit", str(idle_exit)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout_s: float = 180) -> str:
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"the runner did not finish within {timeout_s}s: {err[-2000:]}")
    if p.returncode != 0:
        raise RuntimeError(f"the runner failed ({p.returncode}): {err[-2000:]}")
    return out


def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout_s}s for {what}")


def committed(bootstrap: str, topic: str, group: str = "faults") -> int:
    from shiftstream.jobs.kafka import committed_total

    try:
        return committed_total(bootstrap, group, topic)
    except Exception:  # the broker is restarting
        return -1


def compare(fault: str, done: str, want, redis_url: str, tmp: Path, notes: dict | None = None,
            runner: str = "reference") -> Outcome:
    dec, dead, late = want
    got = redis_decisions(redis_url)
    differ = sum(1 for k, v in dec.items() if got.get(k) != v) + len(got.keys() - dec.keys())
    out = tmp / "out"
    got_dead = [json.loads(x)["offset"] for x in (out / "dead-letters.jsonl").read_text().splitlines()]
    got_late = [(r["key"], r["event"]["event_id"]) for r in
                map(json.loads, (out / "late-events.jsonl").read_text().splitlines())]
    want_dead, want_late, have_dead, have_late = Counter(dead), Counter(late), Counter(got_dead), Counter(got_late)
    dup = sum((have_dead - want_dead).values()) + sum((have_late - want_late).values())
    return Outcome(fault, runner, done, len(dec), differ, sum((want_dead - have_dead).values()),
                   sum((want_late - have_late).values()), dup, notes or {})


# -- the faults --------------------------------------------------------------------------------------------------

def kill9(bootstrap: str, redis_url: str, tmp: Path, events: int = 6000, users: int = 60,
          sig: int = signal.SIGKILL) -> Outcome:
    """SIGKILL (or another signal: SIGINT, SIGTERM stop it cleanly) of the reference runner after half the input,
    then a restart on the rest."""
    msgs, _ = stream(events, users, seed=41)
    topic = f"faults-kill9-{os.getpid()}-{time.monotonic_ns()}"
    create_topic(bootstrap, topic)
    half = len(msgs) // 2
    produce(bootstrap, topic, msgs[:half])
    p = runner(bootstrap, redis_url, topic, tmp)
    wait_for(lambda: committed(bootstrap, topic) >= half, 60, "a checkpoint of the first half")
    p.send_signal(sig)
    rc = p.wait(60)
    if sig != signal.SIGKILL and rc != 0:
        raise RuntimeError(f"the runner did not stop cleanly on {signal.Signals(sig).name}: {p.stderr.read()[-2000:]}")
    produce(bootstrap, topic, msgs[half:])
    finish(runner(bootstrap, redis_url, topic, tmp, idle_exit=3))
    name = signal.Signals(sig).name
    return compare("kill -9 mid-run" if sig == signal.SIGKILL else f"{name} stop mid-run",
                   f"{name} after {half:,} of {len(msgs):,} messages, restarted", expected(msgs), redis_url, tmp)


def redis_outage(bootstrap: str, redis_server, tmp: Path, outage_s: float = 30, events: int = 6000,
                 users: int = 60) -> Outcome:
    """Redis stopped (its data saved) while the runner writes, restarted `outage_s` later."""
    msgs, _ = stream(events, users, seed=42)
    topic = f"faults-redis-{os.getpid()}-{time.monotonic_ns()}"
    create_topic(bootstrap, topic)
    half = len(msgs) // 2
    produce(bootstrap, topic, msgs[:half])
    p = runner(bootstrap, redis_server.url, topic, tmp, idle_exit=3)
    wait_for(lambda: committed(bootstrap, topic) >= half, 60, "a checkpoint of the first half")
    redis_server.halt(save=True)
    t0 = time.monotonic()
    produce(bootstrap, topic, msgs[half:])
    time.sleep(max(0.0, outage_s - (time.monotonic() - t0)))
    alive = p.poll() is None
    redis_server.start()
    finish(p)
    return compare(f"Redis down {outage_s:g} s", f"redis-server shut down (data saved) mid-run, restarted "
                   f"{outage_s:g} s later",
                   expected(msgs), redis_server.url, tmp, {"runner alive during the outage": alive})


def broker_restart(broker, redis_url: str, tmp: Path, down_s: float = 3, events: int = 6000,
                   users: int = 60) -> Outcome:
    """The broker stopped mid-run and restarted on its data; the producer keeps sending across it."""
    msgs, _ = stream(events, users, seed=43)
    topic = f"faults-broker-{os.getpid()}-{time.monotonic_ns()}"
    create_topic(broker.bootstrap, topic)
    half = len(msgs) // 2
    produce(broker.bootstrap, topic, msgs[:half])
    p = runner(broker.bootstrap, redis_url, topic, tmp, idle_exit=8)
    wait_for(lambda: committed(broker.bootstrap, topic) >= half, 60, "a checkpoint of the first half")
    broker.halt()
    time.sleep(down_s)
    broker.start()
    produce(broker.bootstrap, topic, msgs[half:])
    finish(p)
    return compare("broker restart", f"broker stopped {down_s:g} s mid-run, restarted on its data", expected(msgs),
                   redis_url, tmp)


HOUR = 3_600_000


def clock_aligned(n: int = 10_000, users: int = 200, seed: int = 21):
    """A stream whose event times end at the processing clock (live traffic), and that clock in seconds."""
    sim = simulate(SimConfig(users=users, events=n, seed=seed, out_of_order=0.05, max_delay_s=60, too_late=0.0,
                             duplicates=0.0, malformed=0, privacy_rate=0.0))
    now = max(e["ts"] for e in sim.events) + 1000
    return [dict(e) for e in sim.events], now / 1000


def flip_ts_bits(events: list[dict], n: int, rng) -> set[int]:
    """Flip one bit (of those that move a time by minutes to weeks) in the ts of n events; returns their indices."""
    bad = set(rng.sample(range(len(events)), n))
    for i in sorted(bad):
        events[i]["ts"] ^= 1 << rng.randrange(26, 40)
    return bad


def _run_records(events: list[dict], clock_s: float, cfg=None):
    from shiftstream.jobs.reference import ReferenceJob
    from shiftstream.jobs.testing import Captured, MemorySink
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    cap = Captured()
    p = Pseudonymiser(DEV_KEY)
    job = ReferenceJob(cfg or load_config(), MemorySink(), p, cap.outputs(), clock=lambda: clock_s)
    for i, e in enumerate(events):
        job.on_record(e, 0, i)
    job.finish()
    return job.sink.stable(), {(r["key"], r["event"]["event_id"]) for r in cap.late}, p


def without(events: list[dict], bad: set[int], clock_s: float, cfg=None) -> tuple[set, set]:
    """Run with and without the bad events: (good events made late by them, users without a bad event whose
    decision changed)."""
    base_dec, base_late, p = _run_records([e for i, e in enumerate(events) if i not in bad], clock_s, cfg)
    dec, late, _ = _run_records(events, clock_s, cfg)
    bad_ids = {events[i]["event_id"] for i in bad}
    bad_users = {p(events[i]["user_id"]) for i in bad}
    new_late = {x for x in late if x[1] not in bad_ids} - base_late
    changed = {k for k in base_dec.keys() | dec.keys() if k not in bad_users and base_dec.get(k) != dec.get(k)}
    return new_late, changed


def outliers(events: int = 10_000, users: int = 200) -> list[Outcome]:
    """One event dated +23 h, and 9 flipped ts bits, in a clock-aligned stream (reference runner in process)."""
    import random

    out = []
    ev, now = clock_aligned(events, users)
    i = len(ev) // 10
    ev[i]["ts"] += 23 * HOUR
    new_late, changed = without(ev, {i}, now)
    out.append(Outcome("one event +23 h", "reference", f"1 of {len(ev):,} events dated 23 h ahead", users,
                       len(changed), notes={"good events made late": len(new_late)}))
    ev, now = clock_aligned(events, users, seed=22)
    bad = flip_ts_bits(ev, 9, random.Random(5))
    new_late, changed = without(ev, bad, now)
    out.append(Outcome("flipped ts bits", "reference", f"one bit flipped in 9 of {len(ev):,} timestamps", users,
                       len(changed), notes={"good events made late": len(new_late)}))
    return out


def _engine_run(engine: str, frames: Path, redis_url: str, out: Path) -> tuple[dict, list]:
    """Decisions and late records of a Beam or PyFlink file run into an emptied Redis."""
    import redis

    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import DEV_KEY

    redis.Redis.from_url(redis_url).flushall()
    cfg = load_config().replace(**{"redis.url": redis_url})
    if engine == "beam":
        from shiftstream.jobs.beam_pipeline import run

        run(cfg, [str(frames)], DEV_KEY, str(out), None)
    else:
        from shiftstream.jobs.flink.topology import run_file

        run_file(cfg, str(frames), DEV_KEY, str(out), None)
    late = [json.loads(x) for x in (out / "late-events.jsonl").read_text().splitlines()]
    return redis_decisions(redis_url), late


def outliers_on(engine: str, redis_url: str, tmp: Path, events: int = 10_000, users: int = 200) -> Outcome:
    """The +23 h stream through Beam or PyFlink (file runs), against the same stream without the outlier."""
    from shiftstream.schemas import write_frames
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    ev, _ = clock_aligned(events, users)
    i = len(ev) // 10
    ev[i]["ts"] += 23 * HOUR
    wire = WireCodec(MemoryRegistry(), "interaction")
    runs = []
    for name, evs in (("clean", [e for j, e in enumerate(ev) if j != i]), ("outlier", ev)):
        frames = tmp / f"{name}.frames"
        write_frames(frames, [wire.encode(e) for e in evs])
        runs.append(_engine_run(engine, frames, redis_url, tmp / f"out-{engine}-{name}"))
    (base, base_late), (got, got_late) = runs
    bad_user = Pseudonymiser(DEV_KEY)(ev[i]["user_id"])
    differ = sum(1 for k in base.keys() | got.keys() if k != bad_user and base.get(k) != got.get(k))
    ids = lambda late: {(r["key"], r["event"]["event_id"]) for r in late}  # noqa: E731
    made_late = len(ids(got_late) - ids(base_late))
    return Outcome("one event +23 h", engine, f"1 of {len(ev):,} events dated 23 h ahead (a file run)", users,
                   differ, notes={"good events made late": made_late})


def flink_redis_outage(redis_server, tmp: Path, outage_s: float = 30, events: int = 40_000,
                       users: int = 400) -> Outcome:
    """A PyFlink file run (thread mode, a subprocess) with Redis shut down once decisions start to land."""
    import redis

    from shiftstream.schemas import write_frames

    redis.Redis.from_url(redis_server.url).flushall()
    msgs, _ = stream(events, users, seed=45)
    frames = tmp / "in.frames"
    write_frames(frames, msgs)
    p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", "flink", "--input",
                          str(frames), "--redis-url", redis_server.url, "--models", "none", "--out-dir",
                          str(tmp / "out"), "--config", str(config(tmp)), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: client.dbsize() > 0 or p.poll() is not None, 120, "the first decisions")
    mid = p.poll() is None
    redis_server.halt(save=True)
    time.sleep(outage_s)
    alive = p.poll() is None
    redis_server.start()
    finish(p, 300)
    want = expected(msgs)
    return compare(f"Redis down {outage_s:g} s", "redis-server shut down (data saved) mid-run, restarted "
                   f"{outage_s:g} s later (a file run)", want, redis_server.url, tmp,
                   {"outage began mid-run": mid, "job alive during the outage": alive}, runner="pyflink")


def main(argv: list[str] | None = None) -> int:
    from shiftstream.runners.local import LocalKafka, LocalRedis

    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=6000)
    ap.add_argument("--outage", type=float, default=30, help="seconds Redis is down")
    args = ap.parse_args(argv)
    rows: list[Outcome] = []
    print("faults: outliers (in process)", file=sys.stderr, flush=True)
    rows += outliers()
    with LocalKafka() as broker, LocalRedis() as redis_server:
        import redis

        for engine in ("beam", "pyflink"):  # Beam first: PyFlink's workers break a later Beam run in one process
            print(f"faults: outliers on {engine}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix="shiftstream-faults-") as t:
                rows.append(outliers_on(engine, redis_server.url, Path(t)))
        for name, run in (("kill -9", lambda t: kill9(broker.bootstrap, redis_server.url, t, args.events)),
                          ("SIGINT", lambda t: kill9(broker.bootstrap, redis_server.url, t, args.events,
                                                     sig=signal.SIGINT)),
                          ("redis outage", lambda t: redis_outage(broker.bootstrap, redis_server, t, args.outage,
                                                                  args.events)),
                          ("broker restart", lambda t: broker_restart(broker, redis_server.url, t,
                                                                      events=args.events)),
                          ("pyflink redis outage", lambda t: flink_redis_outage(redis_server, t, args.outage))):
            print(f"faults: {name}", file=sys.stderr, flush=True)
            redis.Redis.from_url(redis_server.url).flushall()
            with tempfile.TemporaryDirectory(prefix="shiftstream-faults-") as t:
                rows.append(run(Path(t)))
    print(HEADER)
    for r in rows:
        print(r.row())
    return 0 if all(r.lost == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
