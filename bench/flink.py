"""PyFlink job benchmark: events/s per task slot (thread and process mode) against the reference runner on the same
messages. Live-time latency (wall-clock events through Kafka to Redis) is `bench/live.py`.

    python -m bench.flink [--events 40000] [--modes thread,process] [--parallelism 1,2] [--source kafka|file]

--source kafka (the default) measures the deployed form: the messages on a local broker, in 4 partitions keyed by
user, read by a bounded `shiftstream run --runner flink --kafka-bootstrap ...` (the Java front, one Python operator
per event, checkpoints on). --source file: a .frames file run (one ordered Python decoder in front). The reference
runner is timed in-process over the same messages (no broker), the yardstick the issues use.

Throughput is taken from two runs of each mode (N and 3N messages, local mini-cluster): the slope (2N messages /
the extra seconds) leaves the mini-cluster's start-up out. Figures are one run on this machine: read the ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import run_reference
from shiftstream.runners.local import LocalKafka, LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec, write_frames
from shiftstream.transforms.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          **kw)


PARTITIONS = 4


def _produce(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]]) -> None:
    """(user key, value) messages onto a new topic of PARTITIONS partitions, keyed (each user in one partition)."""
    from confluent_kafka import Producer

    from shiftstream.jobs.kafka import produce_waiting
    from shiftstream.jobs.testing import create_topic

    create_topic(bootstrap, topic, PARTITIONS)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    for key, value in msgs:
        produce_waiting(p, topic, value, key=key)
    if p.flush(120):
        raise RuntimeError(f"bench.flink: messages for {topic} not delivered")


def throughput(msgs: list[bytes], redis_url: str, work: Path, modes=("thread", "process"),
               parallelisms=(1,), bootstrap: str | None = None, keys: list[bytes] | None = None) -> dict[str, float]:
    """Messages/s of the reference runner and of the Flink job per mode and parallelism (slope of two sizes);
    keys `flink_<mode>` (parallelism 1) and `flink_<mode>_p<N>`. With `bootstrap` (and each message's user key),
    the Flink job reads Kafka, else a .frames file."""
    n = len(msgs) // 3
    if bootstrap:
        tag = time.monotonic_ns()
        small, big = f"bench-small-{tag}", f"bench-big-{tag}"
        _produce(bootstrap, small, list(zip(keys[:n], msgs[:n])))
        _produce(bootstrap, big, list(zip(keys[:3 * n], msgs[:3 * n])))
    else:
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
            if bootstrap:
                conf.write_text(f"engine:\n  parallelism: {par}\n  checkpoint_dir: {work / 'ck' / name}\n")
            took = []
            for path in (small, big):
                where = ("--kafka-bootstrap", bootstrap, "--topic", path, "--bounded", "--group-id",
                         f"bench-{name}-{path}") if bootstrap else ("--input", str(path))
                t0 = time.perf_counter()
                r = _cli("run", "--runner", "flink", *where, "--flink-mode", mode, "--models", "none",
                         "--config", str(conf), "--redis-url", redis_url, "--out-dir", str(work / "out"),
                         timeout=1800)
                if r.returncode:
                    raise RuntimeError(r.stderr[-3000:])
                took.append(time.perf_counter() - t0)
                print(f"  flink {mode} p{par}: {Path(path).name} in {took[-1]:.1f}s", file=sys.stderr, flush=True)
            out[name] = 2 * n / max(took[1] - took[0], 1e-9)
            out[f"{name}_startup_s"] = took[0] - n / out[name]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink")
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--modes", default="thread,process")
    ap.add_argument("--parallelism", default="1", help="comma-separated (thread mode's core subtasks share the "
                                                       "TaskManager's Python interpreter)")
    ap.add_argument("--source", choices=["kafka", "file"], default="kafka")
    a = ap.parse_args(argv)
    pars = tuple(int(x) for x in a.parallelism.split(","))
    sim = simulate(SimConfig(users=1000, events=max(a.events, 60_000), seed=11, privacy_rate=0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    # (the simulation's broken messages keep their place and go to partition 0's key)
    pairs = [(wire.encode(e), e["user_id"].encode()) for e in sim.events]
    for pos, bad in reversed(sim.malformed):
        pairs.insert(min(pos, len(pairs)), (bad, b"broken"))
    assert [m for m, _ in pairs] == list(wire_messages(sim, wire))
    msgs, keys = [m for m, _ in pairs][:a.events], [k for _, k in pairs][:a.events]
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r, \
            (LocalKafka() if a.source == "kafka" else contextlib.nullcontext()) as k:
        work = Path(tmp)
        print(f"bench.flink: throughput over {len(msgs):,} messages (and a third of them), "
              f"{'Kafka, %d partitions' % PARTITIONS if k else 'a .frames file'} ...", file=sys.stderr)
        t = throughput(msgs, r.url, work, tuple(a.modes.split(",")), pars, k.bootstrap if k else None, keys)
        ref = t["reference"]
        print(f"\nsource: {a.source}\n| engine | events/s | per slot vs reference | vs parallelism 1 |\n|---|---|---|---|\n"
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
