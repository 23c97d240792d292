"""No learning: always the slot's fallback (its first variant unless `fallback` names another; the first allowed
one if a diversity cap rules the fallback out). Counts are kept for reports."""
from __future__ import annotations

from .ucb1 import decay, means, new, update

__all__ = ["new", "update", "decay", "means", "prepare", "choose"]


def prepare(stats, seed, p):
    return p.fallback_index


def choose(prepared, x, u: float, allowed=None) -> tuple[int, float]:
    if allowed is None or prepared in allowed:
        return prepared, 1.0
    return min(allowed), 1.0
