"""Rule-segment quality against the simulator's behaviour types: a confusion table.

    python -m bench.segments [--users N --events M --seed S]

Each user's segment is taken from their decision after every event has been applied (end of input); the
table counts users by true behaviour type (rows) and assigned segment (columns)."""
from __future__ import annotations

import argparse
from collections import Counter

from shiftstream.jobs.testing import run_reference
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser


def confusion(users: int, events: int, seed: int, per_session: bool = False):
    """(rows, columns, counts) of behaviour type x segment. per_session: segment at each session's end."""
    sim = simulate(SimConfig(users=users, events=events, seed=seed, privacy_rate=0))
    cfg = load_config()
    job, sink, cap = run_reference(sim.events, cfg)
    ps = Pseudonymiser(DEV_KEY)
    back = {ps(u): d["type"] for u, d in sim.truth["users"].items()}
    counts = Counter((back[k], d["segment"]) for k, d in sink.decisions.items())
    rows = sorted({t for t, _ in counts})
    cols = [r.name for r in cfg.segments.rules] + [cfg.segments.default]
    return rows, cols, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    rows, cols, counts = confusion(a.users, a.events, a.seed)
    print(f"users by behaviour type (rows) and rule segment at end of input (columns); "
          f"{a.users} users, {a.events} events, seed {a.seed}")
    print("| type \\ segment | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        n = sum(counts[(r, c)] for c in cols)
        print(f"| {r} | " + " | ".join(f"{counts[(r, c)]} ({counts[(r, c)] / n:.0%})" if n else "0" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
