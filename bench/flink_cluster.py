"""The deployed form on a standalone cluster (`shiftstream deploy`): steady-state events/s at parallelism 1..N, one
TaskManager of one slot per subtask, against the reference runner in the same run.

    python -m bench.flink_cluster [--events 150000] [--parallelism 1,2] [--mode thread]

Why TaskManagers and not slots: in thread mode a TaskManager runs the Python of all its slots in one interpreter,
so two slots of one TaskManager share one GIL (bench.flink's mini-cluster, one TaskManager, shows it); N TaskManagers
of one slot each have N interpreters.

The messages (simulated, 4 partitions keyed by user) are on a local broker before the job starts; the job reads them
as a fresh consumer group, checkpointing every second (each checkpoint commits the offsets it reached). The rate is
the slope of the committed offsets between 20% and 80% of the messages: start-up and the tail are left out. The
broker, Redis and the cluster share this machine's cores: read the ratios, and the core count printed with them.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.flink import PARTITIONS, _produce
from shiftstream.jobs.kafka import committed_total
from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import run_reference
from shiftstream.runners.deploy import Cluster
from shiftstream.runners.local import LocalKafka, LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config


def _cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def steady_rate(bootstrap: str, group: str, topic: str, total: int, timeout_s: float = 900) -> tuple[float, float]:
    """Messages/s of the committed offsets between 20% and 80% of `total`, and the machine's CPU use then (0..1:
    all cores busy is 1)."""
    start = end = None
    cpu0 = cpu1 = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = committed_total(bootstrap, group, topic)
        now = time.monotonic()
        if start is None and n >= 0.2 * total:
            start, cpu0 = (now, n), _cpu()
        if start is not None and n >= 0.8 * total:
            end, cpu1 = (now, n), _cpu()
            break
        time.sleep(0.2)
    if start is None or end is None or end[0] - start[0] < 1:
        raise SystemExit(f"bench.flink_cluster: the job did not get through {topic} in {timeout_s:.0f}s, or too fast "
                         "to measure (use more --events)")
    return (end[1] - start[1]) / (end[0] - start[0]), (cpu1[0] - cpu0[0]) / max(cpu1[1] - cpu0[1], 1)


def run(par: int, mode: str, bootstrap: str, topic: str, total: int, redis_url: str, work: Path) -> float:
    cfg_path = work / f"p{par}.yaml"
    cfg_path.write_text("engine:\n  checkpoint_interval: 1s\n")
    cluster = Cluster(work / f"cluster-p{par}")
    cluster.start(load_config(str(cfg_path)), slots=1, mode=mode, taskmanagers=par)
    try:
        group = f"bench-cluster-p{par}"
        job = cluster.submit(["--config", str(cfg_path), "--kafka-bootstrap", bootstrap, "--topic", topic,
                              "--group-id", group, "--redis-url", redis_url, "--models", "none",
                              "--privacy-topic", f"{topic}-privacy"], parallelism=par)
        cluster.wait_state(job, "RUNNING")
        rate, cpu = steady_rate(bootstrap, group, topic, total)
        cluster._bin("flink", "cancel", job)
        return rate, cpu
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink_cluster")
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--parallelism", default="1,2")
    ap.add_argument("--mode", choices=["thread", "process"], default="thread")
    a = ap.parse_args(argv)
    pars = [int(x) for x in a.parallelism.split(",")]
    sim = simulate(SimConfig(users=5000, events=a.events, seed=17, privacy_rate=0, malformed=0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    msgs = [wire.encode(e) for e in sim.events]
    keys = [e["user_id"].encode() for e in sim.events]
    out = {}
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r, LocalKafka() as k:
        work = Path(tmp)
        cfg = load_config().replace(**{"redis.url": r.url})
        t0 = time.perf_counter()
        run_reference(msgs, cfg, sink=RedisSink(r.url), messages=True)
        out["reference"] = len(msgs) / (time.perf_counter() - t0)
        print(f"  reference: {out['reference']:,.0f} events/s", file=sys.stderr, flush=True)
        _produce(k.bootstrap, "cluster-events", list(zip(keys, msgs)))
        for par in pars:
            out[par], out[f"cpu_p{par}"] = run(par, a.mode, k.bootstrap, "cluster-events", len(msgs), r.url, work)
            print(f"  cluster p{par} ({par} TaskManagers): {out[par]:,.0f} events/s", file=sys.stderr, flush=True)
    ref = out["reference"]
    print(f"\n{len(msgs):,} messages in {PARTITIONS} partitions, {a.mode} mode, {os.cpu_count()} cores\n"
          "| engine | events/s | per slot vs reference | vs parallelism 1 | machine CPU busy |\n|---|---|---|---|---|\n"
          f"| reference (in-process, no broker) | {ref:,.0f} | 1.00x | | |")
    for par in pars:
        vs1 = f"{out[par] / out[1]:.2f}x" if 1 in out else ""
        print(f"| cluster, parallelism {par} ({par} TaskManagers x 1 slot) | {out[par]:,.0f} | "
              f"{out[par] / par / ref:.3f}x | {vs1} | {out[f'cpu_p{par}']:.0%} |")
    return out


if __name__ == "__main__":
    main()
