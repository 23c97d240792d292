"""Epsilon-greedy on discounted means: with probability epsilon a uniformly random arm, else the best mean (ties
split). The user's one uniform decides both, so the propensity is exact: (1 - epsilon) / ties + epsilon / arms.

stats: the counts of `_drift` per arm."""
from __future__ import annotations

from ._pick import best_set
from .ucb1 import decay, means, new, update

__all__ = ["new", "update", "decay", "means", "prepare", "choose"]


def prepare(stats, seed, p):
    return p.epsilon, best_set(means(stats)), stats


def choose(prepared, x, u: float, allowed=None) -> tuple[int, float]:
    eps, best, stats = prepared
    arms = list(range(len(stats)))
    if allowed is not None:  # explore and exploit among the allowed arms only
        arms = sorted(allowed)
        if not set(best) & allowed:
            m = means(stats)
            best = best_set([m[i] for i in arms])
            best = [arms[i] for i in best]
        else:
            best = [i for i in best if i in allowed]
    k = len(arms)
    if u < eps:  # explore: u / eps is uniform in [0, 1) again
        i = arms[min(int(u / eps * k), k - 1)]
    else:
        i = best[min(int((u - eps) / (1 - eps) * len(best)), len(best) - 1)]
    return i, (1 - eps) / len(best) * (i in best) + eps / k
