"""State per user, and the deployed job's checkpoints for many users (issue 6/6).

    python -m bench.flink_state [--users 100000] [--events-per-user 3] [--skip-flink]

1. Engine-free: every user's live state after the stream, as the PyFlink job keeps it in keyed state (the settled
   form as a compact record, plus one pickled entry per buffered event), measured on the reference runner's states
   (the same core, the same states), and against the pickled dicts the job stored before the record.
2. The deployed form (`shiftstream deploy`, one TaskManager of one slot, thread mode, hashmap state backend, full
   checkpoints every 5 s): the stream read from a local broker; once every message is committed, the next completed
   checkpoint's size and end-to-end duration, from Flink's REST API.
"""
from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.flink import _produce
from shiftstream.jobs.kafka import committed_total
from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import MemorySink
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms import staterecord
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser


def state_bytes(msgs: list[bytes]) -> dict:
    """Per user: bytes of the keyed state the Flink job writes for it (ValueState + MapState values)."""
    job = ReferenceJob(load_config(), MemorySink(), Pseudonymiser(DEV_KEY))
    for i, m in enumerate(msgs):
        job.on_message(m, 0, i)
    sizes, dicts = [], 0
    for key, st in job.states.items():
        if st is None or st.is_empty():
            continue
        d = st.to_dict(pending=False)
        n = len(staterecord.pack(d))  # the ValueState's record (transforms/staterecord.py)
        dicts += len(pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)) - n
        n += sum(len(pickle.dumps(tuple(e), protocol=pickle.HIGHEST_PROTOCOL)) + len(e.event_id) for e in st.pending)
        sizes.append(n + len(key))
    sizes.sort()
    total = sum(sizes)
    return {"users": len(sizes), "mean": statistics.fmean(sizes), "median": sizes[len(sizes) // 2],
            "p99": sizes[int(len(sizes) * 0.99)], "total_mb": total / 1e6,
            "vs_pickled_dicts": total / (total + dicts)}


def flink_checkpoint(msgs, keys, work: Path) -> dict:
    from shiftstream.runners.deploy import Cluster
    from shiftstream.runners.local import LocalKafka, LocalRedis

    with LocalRedis() as r, LocalKafka() as k:
        _produce(k.bootstrap, "state-events", list(zip(keys, msgs)))
        cfg_path = work / "state.yaml"
        cfg_path.write_text("engine:\n  checkpoint_interval: 5s\n")
        cluster = Cluster(work / "cluster")
        cluster.start(load_config(str(cfg_path)), slots=1, mode="thread")
        try:
            job = cluster.submit(["--config", str(cfg_path), "--kafka-bootstrap", k.bootstrap, "--topic",
                                  "state-events", "--group-id", "state", "--redis-url", r.url, "--models", "none",
                                  "--privacy-topic", "state-privacy"])
            cluster.wait_state(job, "RUNNING")
            t0 = time.monotonic()
            while committed_total(k.bootstrap, "state", "state-events") < len(msgs):
                if time.monotonic() - t0 > 1800:
                    raise SystemExit("bench.flink_state: the job did not get through the stream in 30 min")
                time.sleep(1)
            took = time.monotonic() - t0
            done = cluster.rest(f"/jobs/{job}/checkpoints")["counts"]["completed"]
            while cluster.rest(f"/jobs/{job}/checkpoints")["counts"]["completed"] < done + 2:
                time.sleep(0.5)  # one that began after the last message: all its state is there
            latest = cluster.rest(f"/jobs/{job}/checkpoints")["latest"]["completed"]
            cluster._bin("flink", "cancel", job)
        finally:
            cluster.shutdown()
    return {"read_s": took, "checkpoint_id": latest["id"], "state_size_mb": latest["state_size"] / 1e6,
            "checkpointed_size_mb": latest["checkpointed_size"] / 1e6,
            "end_to_end_duration_ms": latest["end_to_end_duration"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink_state")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events-per-user", type=float, default=3.0)
    ap.add_argument("--skip-flink", action="store_true", help="the engine-free part only")
    a = ap.parse_args(argv)
    n = int(a.users * a.events_per_user)
    print(f"bench.flink_state: simulating {a.users:,} users, {n:,} events ...", file=sys.stderr, flush=True)
    sim = simulate(SimConfig(users=a.users, events=n, seed=29, privacy_rate=0, malformed=0, days=1.0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    msgs = [wire.encode(e) for e in sim.events]
    keys = [e["user_id"].encode() for e in sim.events]
    out = {"state": state_bytes(msgs)}
    s = out["state"]
    print(f"\nkeyed state per user ({s['users']:,} users with state): mean {s['mean']:,.0f} B, median "
          f"{s['median']:,} B, p99 {s['p99']:,} B; all users {s['total_mb']:.1f} MB "
          f"({s['vs_pickled_dicts']:.2f}x of pickled dicts)")
    if not a.skip_flink:
        with tempfile.TemporaryDirectory() as tmp:
            c = out["checkpoint"] = flink_checkpoint(msgs, keys, Path(tmp))
        print(f"deployed job, 1 slot: {n:,} events read in {c['read_s']:.0f}s; checkpoint {c['checkpoint_id']} after "
              f"them: {c['checkpointed_size_mb']:.1f} MB written ({c['state_size_mb']:.1f} MB state) in "
              f"{c['end_to_end_duration_ms']:,} ms end to end")
    print(json.dumps(out), file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
