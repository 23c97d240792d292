"""Bytes of per-user state: typical users of each behaviour type, and a user far busier than any real one.

    python -m bench.state_size
"""
from __future__ import annotations

import json
import pickle
import statistics
from collections import defaultdict

from shiftstream.jobs.testing import run_reference
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.core import Core
from shiftstream.transforms.events import Ev
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser


def main(argv=None) -> int:
    cfg = load_config().replace(**{"state.ttl": 0})  # keep every profile to the end, to measure it
    sim = simulate(SimConfig(users=1000, events=150_000, seed=3, privacy_rate=0))
    job, _, _ = run_reference(sim.events, cfg)
    ps = Pseudonymiser(DEV_KEY)
    by_type = defaultdict(list)
    for u, d in sim.truth["users"].items():
        st = job.states.get(ps(u))
        if st is not None:
            by_type[d["type"]].append(len(pickle.dumps(st.to_dict(), protocol=5)))
    print("| user | state bytes (pickled to_dict), median | max |")
    print("|---|---|---|")
    for t, xs in sorted(by_type.items()):
        print(f"| {t} | {statistics.median(xs):,.0f} | {max(xs):,} |")
    core, s = Core(cfg), None
    for i in range(100_000):  # an event every second for 28 h, 60 categories: the caps hold
        t = 1_000_000 + i * 1000
        s, _ = core.accept(s, "k", Ev(t, f"e{i}", i % 8, f"c{i % 60}", 9.5, 800, 0.5, 300, "mobile", None),
                           t - cfg.event_time.allowed_lateness)
        s, _ = core.advance(s, "k", t - cfg.event_time.allowed_lateness)
    print(f"| synthetic: 100,000 events in 28 h, 60 categories | {len(pickle.dumps(s.to_dict(), protocol=5)):,} | "
          f"(json {len(json.dumps(s.to_dict())):,}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
