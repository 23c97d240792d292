"""Crash and recovery of the PyFlink job on Kafka, measured: SIGKILL the job (client and mini-cluster) while events
arrive, restart from the latest checkpoint, read to the end, drain, and compare Redis with the reference runner.

    python -m bench.recovery [--users 300] [--events 20000] [--rate 1000] [--kill-after 8]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from shiftstream.jobs.testing import create_topic, redis_decisions, run_reference
from shiftstream.runners.local import LocalKafka, LocalRedis
from shiftstream.runners.simulate import produce
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.recovery")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=1000, help="messages/s produced while the first job runs")
    ap.add_argument("--kill-after", type=float, default=8, help="seconds of producing before the SIGKILL")
    a = ap.parse_args(argv)
    sim = simulate(SimConfig(users=a.users, events=a.events, seed=41, out_of_order=0.2, max_delay_s=90,
                             too_late=0.01, duplicates=0.05, malformed=0.01, privacy_rate=0))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    _, mem, _ = run_reference(msgs, messages=True)
    reference = mem.stable()
    with tempfile.TemporaryDirectory() as tmp, LocalKafka() as k, LocalRedis() as r:
        work = Path(tmp)
        conf = work / "job.yaml"
        conf.write_text(f"engine:\n  checkpoint_dir: {work / 'checkpoints'}\n  checkpoint_interval: 1s\n"
                        "kafka:\n  group_id: recovery\n")

        def job(*extra, **kw):
            return subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", "flink",
                                     "--kafka-bootstrap", k.bootstrap, "--topic", "events", "--redis-url", r.url,
                                     "--models", "none", "--config", str(conf), *extra], cwd=ROOT,
                                    start_new_session=True, text=True, **kw)

        create_topic(k.bootstrap, "events")
        client = redis.Redis.from_url(r.url)
        first = job(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not list((work / "checkpoints").glob("*/chk-*/_metadata")):
                if first.poll() is not None:
                    raise RuntimeError("the first job ended before its first checkpoint")
                time.sleep(0.2)
            producer = threading.Thread(target=produce, args=(sim, k.bootstrap, "events", "privacy", a.rate, False))
            t0 = time.monotonic()
            producer.start()
            time.sleep(a.kill_after)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        killed_at = time.monotonic() - t0
        done = sorted(int(m.parent.name[4:]) for m in (work / "checkpoints").glob("*/chk-*/_metadata"))
        partial = client.dbsize()
        client.close()
        producer.join()
        t1 = time.monotonic()
        second = job("--bounded", "--from-checkpoint", "latest", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = second.communicate(timeout=900)
        took = time.monotonic() - t1
        if second.returncode:
            raise RuntimeError(err[-3000:])
        final = redis_decisions(r.url)
    same = final == reference
    print(f"killed {killed_at:.1f}s into producing {len(msgs):,} messages at {a.rate:,.0f}/s "
          f"(about {min(len(msgs), int(killed_at * a.rate)):,} sent); completed checkpoints then: {done[-1] if done else 0}; "
          f"{partial} of {len(reference)} users had a decision in Redis")
    print(f"restarted from the latest checkpoint, read to the end and drained in {took:.1f}s (start-up included)")
    print(f"final Redis equals the reference runner's, key by key: {same} ({len(final)} users)")
    return {"partial": partial, "restart_s": took, "same": same}


if __name__ == "__main__":
    sys.exit(0 if main()["same"] else 1)
