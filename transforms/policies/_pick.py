"""Shared by the policies: pick by cumulative probabilities, split ties evenly."""
from __future__ import annotations


def by_probability(probs, u: float) -> tuple[int, float]:
    """The arm whose cumulative probability interval holds u, with its probability."""
    acc = 0.0
    last = 0
    for i, p in enumerate(probs):
        if p <= 0:
            continue
        last = i
        acc += p
        if u < acc:
            return i, p
    return last, probs[last]


def best_set(values, tol: float = 1e-12) -> list[int]:
    """Indices of the largest values (ties within tol)."""
    top = max(values)
    return [i for i, v in enumerate(values) if v >= top - tol]


def argmax_ties(values, u: float) -> tuple[int, float]:
    """The best arm, ties broken by u (each tied arm equally likely), with its propensity."""
    best = best_set(values)
    return best[min(int(u * len(best)), len(best) - 1)], 1.0 / len(best)
