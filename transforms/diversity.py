"""Diversity against filter bubbles: what a decision shows is not only what a user already likes.

Two constraints, both in config (`content:`), both deterministic (hashed draws), so every engine agrees:

* `max_per_category`: across one decision's slots, at most this many chosen variants of one category
  (applied by `choosing.Chooser` as slots choose in config order).
* `explore_top`: the last `explore_top` of a decision's `top_categories` (5 long) go to catalogue categories that
  are not in the user's top five, drawn per user and epoch of the decision's event time (`explore`): a user whose
  interests are narrow still sees the rest of the catalogue named, and a shift into one of them can be noticed.

And the measures bench/diversity.py reports: intra-list diversity and catalogue coverage.
"""
from __future__ import annotations

from .draws import unit

TOP = 5  # top_categories' length (features.top_categories)


def catalogue_categories(slots) -> tuple[str, ...]:
    """The categories the content catalogue names, sorted."""
    return tuple(sorted({v.category for s in slots for v in s.variants if v.category}))


def explore(top: list[str], key: str, at: int, epoch: int, catalogue, n: int) -> list[str]:
    """`top` with its last `n` places given to catalogue categories not in it (drawn by hash of the user and the
    epoch of `at`, without replacement, in catalogue order); where too few are left, the user's own fill in."""
    if n <= 0:
        return top
    pool = [c for c in catalogue if c not in top]
    keep = top[:TOP - n]
    picks = []
    e = at // epoch
    for j in range(min(n, len(pool))):
        i = min(int(unit("explore_top", key, e, j) * len(pool)), len(pool) - 1)
        picks.append(pool.pop(i))
    rest = [c for c in top[len(keep):] if c not in picks]
    return keep + picks + rest[:max(0, min(len(top), TOP) - len(keep) - len(picks))]


def intra_list_diversity(categories) -> float:
    """The share of pairs of a list's items with different categories (1: all differ; 0: one category)."""
    cs = [c for c in categories if c is not None]
    n = len(cs)
    if n < 2:
        return 0.0
    same = sum(cs.count(c) * (cs.count(c) - 1) for c in set(cs))
    return 1.0 - same / (n * (n - 1))


def coverage(shown, catalogue) -> float:
    """The share of the catalogue's categories shown at least once."""
    cat = set(catalogue)
    return len(cat & set(shown)) / len(cat) if cat else 0.0
