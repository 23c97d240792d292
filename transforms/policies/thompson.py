"""Beta-Bernoulli Thompson sampling, by probability matching: each snapshot estimates every arm's probability of
being the best under its posterior (Monte Carlo, `DRAWS` seeded draws per snapshot), and a user's hashed uniform
picks an arm with those probabilities. So a choice costs O(arms), and its propensity is exact by construction.

stats: the counts of `_drift` per arm; the posterior is Beta(prior + successes, prior + failures), rewards above 1
(a purchase worth more than a click) counting as that many successes and no failure."""
from __future__ import annotations

from ..draws import generator
from . import _drift
from ._pick import by_probability

DRAWS = 2000  # posterior draws per snapshot: the Monte Carlo error of a propensity is about 0.01


def new(k: int, p):
    return _drift.new(k, p)


update, decay = _drift.update, _drift.decay


def _posterior(stats, p):
    """(alpha, beta) per arm: the prior plus the counts (a reward above 1 counts as that many successes)."""
    return [(p.prior[0] + s[1], p.prior[1] + max(0.0, s[0] - s[1])) for s in stats]


def prepare(stats, seed, p):
    beta = generator("thompson", *seed).betavariate
    post = _posterior(stats, p)
    wins = [0] * len(stats)
    for _ in range(DRAWS):
        best, top = 0, -1.0
        for i, (a, b) in enumerate(post):
            v = beta(a, b)
            if v > top:
                best, top = i, v
        wins[best] += 1
    return [w / DRAWS for w in wins]


def choose(prepared, x, u: float) -> tuple[int, float]:
    return by_probability(prepared, u)


means = _drift.means
