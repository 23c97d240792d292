"""Memory over a long stream with users coming and going: does state stay bounded? (`python -m bench.soak`)

A synthetic stream (not the simulator: it must span weeks cheaply): users arrive one after another over
`--days` of event time, each sends `--per-user` events within an hour, then never comes back. The reference runner
takes it in process, with the configured `state.ttl` and with expiry off; every tenth of the stream it prints the
live user states and the process's RSS. Prints a table; `--flink` runs the PyFlink job (thread mode) over the same
stream as a file and reports the TaskManager process's peak RSS, with and without the ttl.
"""
from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY = 86_400_000
START = 1_767_571_200_000


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def events(users: int, per_user: int, days: float):
    """Records in event-time order: user i starts at i * span / users, one event every 10 minutes."""
    step = days * DAY / users
    cats = ("electronics", "books", "fashion", "home", "sports", "beauty")
    types = ("page_view", "click", "page_view", "add_to_cart", "page_view", "purchase")
    pending = []
    import heapq

    for i in range(users):
        t0 = START + int(i * step)
        while pending and pending[0][0] <= t0:
            yield heapq.heappop(pending)[1]
        for j in range(per_user):
            t = t0 + j * 600_000
            rec = {"event_id": f"e{i}-{j}", "user_id": f"user-{i:07d}", "event_type": types[(i + j) % 6], "ts": t,
                   "session_hint": None, "item_id": None, "category": cats[(i * 7 + j) % 6],
                   "price": 20.0 if types[(i + j) % 6] == "purchase" else None, "dwell_ms": 4000,
                   "scroll_depth": 0.5, "hover_ms": None, "page_url": None, "query": None, "variant": None,
                   "device": "mobile"}
            if j == 0:
                yield rec
            else:
                heapq.heappush(pending, (t, rec))
    while pending:
        yield heapq.heappop(pending)[1]


def reference(users: int, per_user: int, days: float, ttl_ms: int) -> list[tuple]:
    from shiftstream.jobs.reference import ReferenceJob
    from shiftstream.jobs.testing import MemorySink
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    class Discard(MemorySink):  # decisions are not what is measured: keep none
        def write(self, decisions):
            pass

    cfg = load_config().replace(**{"state.ttl": ttl_ms})
    gc.collect()
    base = rss_mb()
    job = ReferenceJob(cfg, Discard(), Pseudonymiser(DEV_KEY, cache_size=10_000), clock=lambda: 2_000_000_000.0)
    n = users * per_user
    marks = {n * k // 10 for k in range(1, 11)}
    rows = []
    t0 = time.perf_counter()
    for i, rec in enumerate(events(users, per_user, days), 1):
        job.on_record(rec, 0, i)
        if i in marks:
            rows.append((i, len(job.states), rss_mb() - base))
            print(f"  ttl {ttl_ms / DAY:g} d: {i:,} events, {len(job.states):,} live states, "
                  f"+{rows[-1][2]:,.0f} MB ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return rows


def flink(users: int, per_user: int, days: float, ttl_ms: int, tmp: Path) -> tuple[float, dict]:
    """Peak RSS of the PyFlink run's process tree (the JVM embeds Python in thread mode) over the stream."""
    from shiftstream.schemas import MemoryRegistry, WireCodec, write_frames

    frames = tmp / "soak.frames"
    if not frames.exists():
        wire = WireCodec(MemoryRegistry(), "interaction")
        write_frames(frames, [wire.encode(r) for r in events(users, per_user, days)])
    cfg = tmp / f"ttl-{ttl_ms}.yaml"
    cfg.write_text(f"state:\n  ttl: {ttl_ms}ms\n" if ttl_ms else "state:\n  ttl: 0\n")
    from shiftstream.runners.local import LocalRedis, process_tree

    with LocalRedis() as r:
        p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", "flink", "--input",
                              str(frames), "--config", str(cfg), "--redis-url", r.url, "--models", "none",
                              "--out-dir", str(tmp / "out"), "--quiet"], stdout=subprocess.PIPE, text=True)
        peak = 0.0
        while p.poll() is None:
            peak = max(peak, sum(rss_mb(q) for q in process_tree(p.pid) if q != p.pid))
            time.sleep(0.5)
        out = p.stdout.read()
    return peak, {"ok": p.returncode == 0, "summary": out.splitlines()[:2]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=250_000)
    ap.add_argument("--per-user", type=int, default=4)
    ap.add_argument("--days", type=float, default=60)
    ap.add_argument("--ttl-days", type=float, default=7)
    ap.add_argument("--flink", action="store_true", help="also the PyFlink job (thread mode), on the same stream")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one reference run in this process (ttl ms), JSON out
    args = ap.parse_args(argv)
    if args.one is not None:
        import json

        print(json.dumps(reference(args.users, args.per_user, args.days, args.one)))
        return 0
    ttl = int(args.ttl_days * DAY)
    print(f"{args.users:,} users x {args.per_user} events over {args.days:g} days of event time; reference "
          "runner in process (RSS above the process's start)\n")
    def fresh(ttl_ms: int) -> list:  # each run in its own process, so neither inherits the other's heap
        import json

        out = subprocess.run([sys.executable, "-m", "bench.soak", "--users", str(args.users), "--per-user",
                              str(args.per_user), "--days", str(args.days), "--one", str(ttl_ms)],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        return json.loads(out)

    runs = {f"state.ttl {args.ttl_days:g} d": fresh(ttl), "no expiry (ttl 0)": fresh(0)}
    print("| events | " + " | ".join(f"{k}: live states, RSS MB" for k in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for i in range(10):
        print(f"| {runs[next(iter(runs))][i][0]:,} | " + " | ".join(f"{r[i][1]:,}, {r[i][2]:,.0f}" for r in
                                                               runs.values()) + " |")
    last = runs["no expiry (ttl 0)"][-1]
    print(f"\nwithout expiry: {last[2] * 2**20 / max(last[1], 1):,.0f} bytes of RSS per live user state "
          f"({last[1]:,} states)")
    if args.flink:
        with tempfile.TemporaryDirectory(prefix="shiftstream-soak-") as t:
            for label, ms in ((f"state.ttl {args.ttl_days:g} d", ttl), ("no expiry", 0)):
                peak, info = flink(args.users, args.per_user, args.days, ms, Path(t))
                print(f"PyFlink thread mode, {label}: TaskManager peak RSS {peak:,.0f} MB ({info})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
