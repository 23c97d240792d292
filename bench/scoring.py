"""Model scoring cost per decision, unbatched vs micro-batched, and what it adds to the reference runner.

    python -m bench.scoring [--models DIR]

Without --models a small model set is trained first on a simulated log (about 15 s).
"""
from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import MemorySink
from shiftstream.models.scorer import ModelSet, Scorer
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config
from shiftstream.transforms.decisions import snapshot
from shiftstream.transforms.features import feature_names
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser
from shiftstream.transforms.watermarks import END_OF_TIME


def _per_row(fn, rows, batch: int, reps: int) -> float:
    gc.collect()
    t = time.perf_counter()
    for _ in range(reps):
        for i in range(0, len(rows), batch):
            fn(rows[i:i + batch])
    return (time.perf_counter() - t) / (reps * len(rows)) * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path)
    ap.add_argument("--events", type=int, default=200_000)
    a = ap.parse_args(argv)
    cfg = load_config()
    names = feature_names(cfg)
    tmp = None
    models = a.models
    if models is None:
        from shiftstream.models.train import train_all

        tmp = tempfile.TemporaryDirectory()
        models = Path(tmp.name)
        hist = simulate(SimConfig(users=1000, events=60_000, seed=11))
        train_all(hist.events, cfg, hist.truth["categories"], models, version="bench", log=lambda m: None)
    live = ModelSet.load(models / (models / "LIVE").read_text().strip(), names)
    sim = simulate(SimConfig(users=2000, events=a.events, seed=1, malformed=0))
    job = ReferenceJob(cfg, MemorySink(), Pseudonymiser(DEV_KEY))
    for r in sim.events:
        job.on_record(r)
    job.fire(END_OF_TIME)
    rows = [snapshot(st, k, cfg) for k, st in job.states.items() if st.profile.events][:1024]
    print(f"scoring {len(rows)} decision rows with model set {live.version} "
          f"({', '.join(sorted(live.models))}), one intra-op thread")
    print("| model | batch 1 (us/row) | batch 32 | batch 256 | 1 vs 256 |")
    print("|---|---|---|---|---|")
    for name in sorted(live.models) + ["all three"]:
        only = live if name == "all three" else ModelSet(live.version, {name: live.models[name]})
        t = {b: _per_row(only.score, rows, b, 1 if b == 1 else 5) for b in (1, 32, 256)}
        print(f"| {name} | {t[1]:.1f} | {t[32]:.1f} | {t[256]:.1f} | {t[1] / t[256]:.0f}x |")

    wire = WireCodec(MemoryRegistry(), "interaction")
    msgs = list(wire_messages(sim, wire))

    def run(scorer):
        j = ReferenceJob(cfg, MemorySink(), Pseudonymiser(DEV_KEY), scorer=scorer)
        gc.collect()
        t = time.perf_counter()
        for m in msgs:
            j.on_message(m)
        j.finish()
        return (time.perf_counter() - t) / len(msgs) * 1e6, j.stats["decisions_written"] / len(msgs)

    base, per = run(None)
    scored, _ = run(Scorer(models, names, log=lambda m: None))
    print(f"reference runner, {len(msgs):,} messages ({per:.2f} decisions per event): {base:.1f} us/event without "
          f"models, {scored:.1f} with (+{(scored / base - 1) * 100:.1f}%)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
