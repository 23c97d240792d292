"""PyFlink job benchmark: events/s per task slot (thread and process mode) against the reference runner on the same
messages. Live-time latency (wall-clock events through Kafka to Redis) is `bench/live.py`.

    python -m bench.flink [--events 40000] [--modes thread,process] [--parallelism 1,2]

Throughput is taken from two runs of each mode (N and 3N messages, parallelism 1, local mini-cluster): the slope
(2N messages / the extra seconds) leaves the mini-cluster's start-up out. Figures are one run on this machine: read
the ratios.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import run_reference
from shiftstream.runners.local import LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec, write_frames
from shiftstream.transforms.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          **kw)


def throughput(msgs: list[bytes], redis_url: str, work: Path, modes=("thread", "process"),
               parallelisms=(1,)) -> dict[str, float]:
    """Messages/s of the reference runner and of the Flink job per mode and parallelism (slope of two sizes);
    keys `flink_<mode>` (parallelism 1) and `flink_<mode>_p<N>`."""
    n = len(msgs) // 3
    small, big = work / "small.frames", work / "big.frames"
    write_frames(small, msgs[:n])
    write_frames(big, msgs[:3 * n])
    cfg = load_config().replace(**{"redis.url": redis_url})
    t0 = time.perf_counter()
    run_reference(msgs[:3 * n], cfg, sink=RedisSink(redis_url), messages=True)
    out = {"reference": 3 * n / (time.perf_counter() - t0)}
    for mode in modes:
        for par in parallelisms:
            name = f"flink_{mode}" + (f"_p{par}" if par > 1 else "")
            conf = work / f"p{par}.yaml"
            conf.write_text(f"engine:\n  parallelism: {par}\n")
            took = []
            for path in (small, big):
                t0 = time.perf_counter()
                r = _cli("run", "--runner", "flink", "--input", str(path), "--flink-mode", mode, "--models", "none",
                         "--config", str(conf), "--redis-url", redis_url, "--out-dir", str(work / "out"),
                         timeout=1800)
                if r.returncode:
                    raise RuntimeError(r.stderr[-3000:])
                took.append(time.perf_counter() - t0)
                print(f"  flink {mode} p{par}: {path.name} in {took[-1]:.1f}s", file=sys.stderr, flush=True)
            out[name] = 2 * n / max(took[1] - took[0], 1e-9)
            out[f"{name}_startup_s"] = took[0] - n / out[name]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink")
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--modes", default="thread,process")
    ap.add_argument("--parallelism", default="1", help="comma-separated (thread mode's core subtasks share the "
                                                       "TaskManager's Python interpreter)")
    a = ap.parse_args(argv)
    pars = tuple(int(x) for x in a.parallelism.split(","))
    sim = simulate(SimConfig(users=1000, events=max(a.events, 60_000), seed=11, privacy_rate=0))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))[:a.events]
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r:
        work = Path(tmp)
        print(f"bench.flink: throughput over {len(msgs):,} messages (and a third of them) ...", file=sys.stderr)
        t = throughput(msgs, r.url, work, tuple(a.modes.split(",")), pars)
        ref = t["reference"]
        print(f"\n| engine | events/s | per slot vs reference | vs parallelism 1 |\n|---|---|---|---|\n"
              f"| reference | {ref:,.0f} | 1.00x | |")
        for m in a.modes.split(","):
            for par in pars:
                name = f"flink_{m}" + (f"_p{par}" if par > 1 else "")
                vs1 = f"{t[name] / t['flink_' + m]:.2f}x" if "flink_" + m in t else ""
                print(f"| flink {m} mode, parallelism {par} | {t[name]:,.0f} | {t[name] / par / ref:.3f}x | {vs1} |")
        print("\n" + "  ".join(f"start-up {k[6:-10]}: {v:.1f}s" for k, v in t.items() if k.endswith("_startup_s")))
    return {"throughput": t}


if __name__ == "__main__":
    main()
