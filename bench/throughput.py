"""Reference-runner throughput on one core: end to end (wire bytes in, decisions in a real Redis) and per stage,
and the cost of the provisional path against a baseline commit, measured in the same run.

    python -m bench.throughput [--events N --users U] [--baseline REV | --no-baseline]

The baseline (default: BASELINE, the last commit before provisional decisions) is taken from git into a temporary
tree; this file is run as a script against each tree in turn (PYTHONPATH picks the `shiftstream` it measures),
alternating, best of `--rounds`. All figures come from one run on one machine; compare them as ratios.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import MemorySink
from shiftstream.runners.local import LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser
from shiftstream.transforms.watermarks import END_OF_TIME

BASELINE = "f1a0aec"  # the last commit before provisional decisions (issue 3/6): decisions settled only
ROOT = Path(__file__).resolve().parent.parent
CORE, E2E = "core (accept + advance)", "end to end: bytes -> core -> decisions -> Redis"


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


def measure(events: int = 200_000, users: int = 2000, seed: int = 1, stages: tuple | None = None) -> dict:
    """events/s for each stage and end to end, in one process (pinned to one core where possible); `stages`:
    only the core and the end-to-end run (what the baseline comparison needs)."""
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

    out[CORE] = n / _timed(core_only)
    if stages is None:
        holder = {}

        def core_and_decisions():
            mem = MemorySink()
            job = ReferenceJob(cfg, mem, Pseudonymiser(DEV_KEY))
            for r in records:
                job.on_record(r)
            job.finish()
            holder["job"], holder["sink"] = job, mem

        out["core + decisions rendered"] = n / _timed(core_and_decisions)
        job = holder["job"]
        out["decisions per event"] = job.stats["decisions_written"] / n
        decisions = list(holder["sink"].decisions.values())  # (the job's states are gone at the end of time)
        batches = [decisions[i:i + 256] for i in range(0, len(decisions), 256)]
    with LocalRedis() as redis:
        if stages is None:
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

        out[E2E] = n / _timed(end_to_end)
    return out


def _tree(rev: str, into: Path) -> Path:
    """The project at `rev`, unpacked from git (its `shiftstream` shim finds the folders beside it)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return into


def _measure_tree(tree: Path, events: int, users: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--events", str(events), "--users",
                        str(users), "--json"], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(rev: str, events: int, users: int, rounds: int = 2) -> dict:
    """Core and end-to-end events/s of `rev` and of this tree, alternating, best of `rounds` each."""
    best: dict = {"baseline": {}, "now": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = _tree(rev, Path(tmp))
        for i in range(rounds):
            for name, tree in (("baseline", base), ("now", ROOT)):
                print(f"bench.throughput: {name} ({rev if name == 'baseline' else 'this tree'}), round {i + 1} of "
                      f"{rounds} ...", file=sys.stderr, flush=True)
                got = _measure_tree(tree, events, users)
                for k in (CORE, E2E):
                    best[name][k] = max(best[name].get(k, 0.0), got[k])
    return best


def _hset(r: dict) -> bytes:
    import hiredis

    return hiredis.pack_command(("HSET", "bare:" + r["user_id"], "event_time", str(r["ts"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--baseline", default=BASELINE, help="git revision to compare the core and end to end with")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="only the core and end-to-end figures, as one JSON line")
    a = ap.parse_args(argv)
    if a.json:
        print(json.dumps(measure(a.events, a.users, stages=(CORE, E2E))))
        return 0
    out = measure(a.events, a.users)
    n = out.pop("messages")
    per = out.pop("decisions per event")
    bare = out["bare loop: decode + one HSET per event"]
    print(f"{n:,} wire-format messages, {a.users} users, one core; {per:.2f} decisions written per event")
    print("| stage | events/s | us/event | vs bare loop |")
    print("|---|---|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:,.0f} | {1e6 / v:.1f} | {v / bare:.2f}x |")
    dec, core = out["decode"], out[CORE]
    red = out["redis write (decisions/s)"] / per if per else float("inf")
    print(f"core cost {1e6 / core:.1f} us/event vs decode + Redis write {1e6 / dec + 1e6 / red:.1f} us/event "
          f"(ratio {(1e6 / core) / (1e6 / dec + 1e6 / red):.2f})")
    if a.no_baseline or not (ROOT / ".git").exists():
        return 0
    best = compare(a.baseline, a.events, a.users, a.rounds)
    b, now = best["baseline"], best["now"]
    print(f"\nagainst {a.baseline} (settled-only decisions), same run, best of {a.rounds} alternating:")
    print("| | baseline | now | ratio | aim |")
    print("|---|---|---|---|---|")
    ratio = b[CORE] / now[CORE]
    print(f"| core us/event | {1e6 / b[CORE]:.1f} | {1e6 / now[CORE]:.1f} | {ratio:.2f}x | <= 1.3x: "
          f"{'met' if ratio <= 1.3 else 'missed'} |")
    ratio = now[E2E] / b[E2E]
    print(f"| end to end events/s | {b[E2E]:,.0f} | {now[E2E]:,.0f} | {ratio:.2f}x | >= 0.8x: "
          f"{'met' if ratio >= 0.8 else 'missed'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
