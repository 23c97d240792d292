"""No learning: always the first arm (a slot's fallback, an experiment's control). Counts are kept for reports."""
from __future__ import annotations

from .ucb1 import decay, means, new, update

__all__ = ["new", "update", "decay", "means", "prepare", "choose"]


def prepare(stats, seed, p):
    return None


def choose(prepared, x, u: float) -> tuple[int, float]:
    return 0, 1.0
