"""UCB1 (Auer et al. 2002) on discounted counts: the arm with the highest mean + alpha * sqrt(2 ln N / n); an arm
never shown goes first. Deterministic given the snapshot (ties split by the user's draw).

stats: the counts of `_drift` per arm (n and reward sum, long-run and recent)."""
from __future__ import annotations

import math

from . import _drift
from ._pick import argmax_ties


new, update, decay, means = _drift.new, _drift.update, _drift.decay, _drift.means


def prepare(stats, seed, p):
    alpha = p.alpha
    total = sum(s[0] for s in stats)
    if any(s[0] < 1e-9 for s in stats):
        return [math.inf if s[0] < 1e-9 else 0.0 for s in stats]
    log_n = math.log(max(total, 1.0))
    return [s[1] / s[0] + alpha * math.sqrt(2.0 * log_n / s[0]) for s in stats]


def choose(prepared, x, u: float, allowed=None) -> tuple[int, float]:
    return argmax_ties(prepared, u, allowed)
