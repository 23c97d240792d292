"""Reference-runner throughput on one core: end to end (wire bytes in, decisions in a real Redis) and per stage.

    python -m bench.throughput [--events N --users U]

All figures come from one run on one machine; compare them as ratios, not across machines.
"""
from __future__ import annotations

import argparse
import gc
import os
import time

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import MemorySink
from shiftstream.runners.local import LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config
from shiftstream.transforms.decisions import Renderer, snapshot
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser
from shiftstream.transforms.watermarks import END_OF_TIME


class NullSink:
    def write(self, decisions):
        pass

    def delete(self, keys):
        pass

    def flush(self):
        pass


def _timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(events: int = 200_000, users: int = 2000, seed: int = 1) -> dict:
    """events/s for each stage and end to end, in one process (pinned to one core where possible)."""
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    sim = simulate(SimConfig(users=users, events=events, seed=seed, malformed=0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    msgs = list(wire_messages(sim, wire))
    n = len(msgs)
    cfg = load_config()
    out: dict = {"messages": n}
    records = []
    out["decode"] = n / _timed(lambda: records.extend(wire.decode(m) for m in msgs))

    def core_only():
        job = ReferenceJob(cfg, NullSink(), Pseudonymiser(DEV_KEY))
        job.flush = lambda: job.dirty.clear()  # no decisions rendered: accept/advance only
        for r in records:
            job.on_record(r)
        job.fire(END_OF_TIME)

    out["core (accept + advance)"] = n / _timed(core_only)
    holder = {}

    def core_and_decisions():
        mem = MemorySink()
        job = ReferenceJob(cfg, mem, Pseudonymiser(DEV_KEY))
        for r in records:
            job.on_record(r)
        job.finish()
        holder["job"] = job

    out["core + decisions rendered"] = n / _timed(core_and_decisions)
    job = holder["job"]
    out["decisions per event"] = job.stats["decisions_written"] / n
    renderer = Renderer(cfg)
    rows = [snapshot(st, k, cfg) for k, st in job.states.items() if st.profile.events]
    decisions = renderer.render(rows, 0)
    batches = [decisions[i:i + 256] for i in range(0, len(decisions), 256)]
    with LocalRedis() as redis:
        sink = RedisSink(redis.url)
        reps = max(1, job.stats["decisions_written"] // max(1, len(decisions)))

        def redis_only():
            for _ in range(reps):
                for b in batches:
                    sink.write(b)
            sink.flush()

        out["redis write (decisions/s)"] = reps * len(decisions) / _timed(redis_only)

        def bare():
            s = RedisSink(redis.url)
            batch = []
            for m in msgs:
                r = wire.decode(m)
                batch.append(r)
                if len(batch) == 256:
                    s._send(b"".join(_hset(x) for x in batch), len(batch))
                    batch = []
            s.flush()

        out["bare loop: decode + one HSET per event"] = n / _timed(bare)

        def end_to_end():
            s = RedisSink(redis.url)
            j = ReferenceJob(cfg, s, Pseudonymiser(DEV_KEY))
            for m in msgs:
                j.on_message(m)
            j.finish()

        out["end to end: bytes -> core -> decisions -> Redis"] = n / _timed(end_to_end)
    return out


def _hset(r: dict) -> bytes:
    import hiredis

    return hiredis.pack_command(("HSET", "bare:" + r["user_id"], "event_time", str(r["ts"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=2000)
    a = ap.parse_args(argv)
    out = measure(a.events, a.users)
    n = out.pop("messages")
    per = out.pop("decisions per event")
    bare = out["bare loop: decode + one HSET per event"]
    print(f"{n:,} wire-format messages, {a.users} users, one core; {per:.2f} decisions written per event")
    print("| stage | events/s | us/event | vs bare loop |")
    print("|---|---|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:,.0f} | {1e6 / v:.1f} | {v / bare:.2f}x |")
    dec, core = out["decode"], out["core (accept + advance)"]
    red = out["redis write (decisions/s)"] / per if per else float("inf")
    print(f"core cost {1e6 / core:.1f} us/event vs decode + Redis write {1e6 / dec + 1e6 / red:.1f} us/event "
          f"(ratio {(1e6 / core) / (1e6 / dec + 1e6 / red):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
