"""Shared by the policies: pick by cumulative probabilities, split ties evenly."""
from __future__ import annotations


def by_probability(probs, u: float, allowed=None) -> tuple[int, float]:
    """The arm whose cumulative probability interval holds u, with its probability; `allowed` (arm indices, None:
    all) renormalises the probabilities over those arms (uniform among them if they all had none)."""
    if allowed is not None:
        total = sum(probs[i] for i in allowed)
        probs = [probs[i] / total if i in allowed else 0.0 for i in range(len(probs))] if total > 0 else \
            [1.0 / len(allowed) if i in allowed else 0.0 for i in range(len(probs))]
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


def argmax_ties(values, u: float, allowed=None) -> tuple[int, float]:
    """The best arm (among `allowed`, None: all), ties broken by u (each tied arm equally likely), with its
    propensity."""
    if allowed is not None:
        top = max(values[i] for i in allowed)
        best = [i for i in sorted(allowed) if values[i] >= top - 1e-12]
        return best[min(int(u * len(best)), len(best) - 1)], 1.0 / len(best)
    best = best_set(values)
    return best[min(int(u * len(best)), len(best) - 1)], 1.0 / len(best)
