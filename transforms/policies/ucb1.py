"""UCB1 (Auer et al. 2002) on discounted counts: the arm with the highest mean + alpha * sqrt(2 ln N / n); an arm
never shown goes first. Deterministic given the snapshot (ties split by the user's draw). With `tuned` (UCB1-Tuned,
the same paper) the bonus is alpha * sqrt(ln N / n * min(1/4, V + sqrt(2 ln N / n))), V the arm's reward variance
(Bernoulli: m (1 - m)): far less exploration when rates are low, as click-through rates are.

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
    if p.tuned:
        out = []
        for s in stats:
            m = s[1] / s[0]
            c = min(max(m, 0.0), 1.0)
            v = min(0.25, c * (1 - c) + math.sqrt(2.0 * log_n / s[0]))
            out.append(m + alpha * math.sqrt(log_n / s[0] * v))
        return out
    return [s[1] / s[0] + alpha * math.sqrt(2.0 * log_n / s[0]) for s in stats]


def choose(prepared, x, u: float, allowed=None) -> tuple[int, float]:
    return argmax_ties(prepared, u, allowed)
