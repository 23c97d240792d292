"""Beam (FnApiRunner and BundleBasedDirectRunner) against the reference runner on the same file, one run.

    python -m bench.beam [--events N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from shiftstream.jobs import beam_pipeline
from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.reference import ReferenceJob
from shiftstream.runners.local import LocalRedis
from shiftstream.runners.simulate import write_outputs
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import read_frames
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=1000)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d, LocalRedis() as redis:
        sim = simulate(SimConfig(users=a.users, events=a.events, seed=5, privacy_rate=0))
        path = write_outputs(sim, Path(d) / "events.frames", 5)["events"]
        cfg = load_config().replace(**{"redis.url": redis.url})
        t = time.perf_counter()
        job = ReferenceJob(cfg, RedisSink(redis.url), Pseudonymiser(DEV_KEY))
        for m in read_frames(path):
            job.on_message(m)
        job.finish()
        ref = time.perf_counter() - t
        n = job.stats["events"]
        out = {"reference": n / ref}
        for runner in beam_pipeline.RUNNERS:
            t = time.perf_counter()
            beam_pipeline.run(cfg, [str(path)], DEV_KEY, d, runner=runner)
            out[f"beam {runner}"] = n / (time.perf_counter() - t)
    print(f"{n:,} events ({a.users} users) from a .frames file into a local Redis, no models; one run")
    print("| runner | events/s | vs reference |")
    print("|---|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:,.0f} | {v / out['reference']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
