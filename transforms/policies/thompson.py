"""Beta-Bernoulli Thompson sampling, by probability matching: each snapshot estimates every arm's probability of
being the best under its posterior (Monte Carlo, `DRAWS` seeded draws per snapshot), and a user's hashed uniform
picks an arm with those probabilities. So a choice costs O(arms), and its propensity is exact by construction.

stats: [[alpha, beta], ...] per arm (prior + discounted successes / failures). Rewards above 1 (a purchase worth
more than a click) count as that many successes and no failure."""
from __future__ import annotations

from ..draws import generator
from ._pick import by_probability

DRAWS = 2000  # posterior draws per snapshot: the Monte Carlo error of a propensity is about 0.01


def new(k: int, p):
    return [[float(p.prior[0]), float(p.prior[1])] for _ in range(k)]


def update(stats, arm: int, reward: float, x=None) -> None:
    s = stats[arm]
    s[0] += reward
    s[1] += max(0.0, 1.0 - reward)


def decay(stats, factor: float, p) -> None:
    """Discount the evidence, not the prior: alpha -> prior + factor * (alpha - prior)."""
    for s in stats:
        s[0] = p.prior[0] + factor * (s[0] - p.prior[0])
        s[1] = p.prior[1] + factor * (s[1] - p.prior[1])


def prepare(stats, seed, p):
    beta = generator("thompson", *seed).betavariate
    wins = [0] * len(stats)
    for _ in range(DRAWS):
        best, top = 0, -1.0
        for i, (a, b) in enumerate(stats):
            v = beta(a, b)
            if v > top:
                best, top = i, v
        wins[best] += 1
    return [w / DRAWS for w in wins]


def choose(prepared, x, u: float) -> tuple[int, float]:
    return by_probability(prepared, u)


def means(stats):
    return [a / (a + b) for a, b in stats]
