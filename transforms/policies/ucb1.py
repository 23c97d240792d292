"""UCB1 (Auer et al. 2002) on discounted counts: the arm with the highest mean + alpha * sqrt(2 ln N / n); an arm
never shown goes first. Deterministic given the snapshot (ties split by the user's draw).

stats: [[n, reward sum], ...] per arm."""
from __future__ import annotations

import math

from ._pick import argmax_ties


def new(k: int, p):
    return [[0.0, 0.0] for _ in range(k)]


def update(stats, arm: int, reward: float, x=None) -> None:
    s = stats[arm]
    s[0] += 1.0
    s[1] += reward


def decay(stats, factor: float, p) -> None:
    for s in stats:
        s[0] *= factor
        s[1] *= factor


def prepare(stats, seed, p):
    alpha = p.alpha
    total = sum(s[0] for s in stats)
    if any(s[0] < 1e-9 for s in stats):
        return [math.inf if s[0] < 1e-9 else 0.0 for s in stats]
    log_n = math.log(max(total, 1.0))
    return [s[1] / s[0] + alpha * math.sqrt(2.0 * log_n / s[0]) for s in stats]


def choose(prepared, x, u: float) -> tuple[int, float]:
    return argmax_ties(prepared, u)


def means(stats):
    return [s[1] / s[0] if s[0] > 0 else 0.0 for s in stats]
