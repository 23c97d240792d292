"""Counts that forget, shared by the count-based policies (Thompson, UCB1, epsilon-greedy).

Per arm: [n, s, rn, rs]: exposures and reward sum, long-run (discounted by the slot's `discount` per epoch, 1: kept)
and recent (discounted by `drift_discount` per epoch: a memory of a few epochs). At every epoch, when an arm's
recent mean has moved from its long-run mean by more than `drift_z` standard errors (with at least `drift_min`
recent exposures), every arm of the context drops its long-run history for the recent one (the arms that were
left alone must be explored again: they may be the ones that got better): the policy forgets at once when a
preference shifts, and keeps everything while nothing does (a fixed discount has to choose between the two). Pure arithmetic on the
snapshot: the same in every engine."""
from __future__ import annotations

import math


def new(k: int, p):
    return [[0.0, 0.0, 0.0, 0.0] for _ in range(k)]


def update(stats, arm: int, reward: float, x=None) -> None:
    s = stats[arm]
    s[0] += 1.0
    s[1] += reward
    s[2] += 1.0
    s[3] += reward


def decay(stats, epochs: int, p) -> None:
    if epochs <= 0:
        return
    f = p.discount ** epochs if p.discount != 1.0 else 1.0
    g = p.drift_discount ** epochs
    shifted = False
    for s in stats:
        if f != 1.0:
            s[0] *= f
            s[1] *= f
        s[2] *= g
        s[3] *= g
        old_n = s[0] - s[2]  # the long run without (about) the recent part
        if p.drift and not shifted and s[2] >= p.drift_min and old_n >= p.drift_min:
            m_old, m_recent = max(s[1] - s[3], 0.0) / old_n, s[3] / s[2]
            m = min(max(s[1] / s[0], 1e-3), 1 - 1e-3) if m_old <= 1 and m_recent <= 1 else 0.25
            se = math.sqrt(m * (1 - m) * (1 / s[2] + 1 / old_n))
            shifted = abs(m_recent - m_old) > p.drift_z * se
    if shifted:  # the context's preferences moved: every arm's past goes, so the others are explored again
        for s in stats:
            s[0], s[1] = s[2], s[3]


def means(stats):
    return [s[1] / s[0] if s[0] > 0 else 0.0 for s in stats]
