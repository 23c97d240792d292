"""A user's profile across sessions: recency, frequency, monetary value, decayed category affinity, diversity."""
from __future__ import annotations

import math

from .events import CART, INTEREST_WEIGHT, PURCHASE, Ev

_FIELDS = ("sessions", "events", "first_ts", "last_ts", "cat_last", "aff", "anchor", "durations", "purchases",
           "monetary", "last_cart_ts", "last_purchase_ts", "max_categories")


class Profile:
    """Long-term features. Affinity is stored relative to an anchor time so decaying costs O(1) per event."""

    __slots__ = _FIELDS

    def __init__(self, max_categories: int):
        self.sessions = 0
        self.events = 0
        self.first_ts = 0
        self.last_ts = 0
        self.cat_last: dict[str, int] = {}
        self.aff: dict[str, float] = {}
        self.anchor = 0
        self.durations: list[float] = []
        self.purchases = 0
        self.monetary = 0.0
        self.last_cart_ts = 0
        self.last_purchase_ts = 0
        self.max_categories = max_categories

    def add(self, ev: Ev, half_life_ms: int) -> None:
        if not self.events:
            self.first_ts = ev.ts
            self.anchor = ev.ts
        self.events += 1
        self.last_ts = ev.ts
        code = ev.code
        if code == PURCHASE:
            self.purchases += 1
            self.monetary += ev.price or 0.0
            self.last_purchase_ts = ev.ts
        elif code == CART:
            self.last_cart_ts = ev.ts
        cat = ev.category
        w = INTEREST_WEIGHT[code]
        if cat is not None and w:
            self.cat_last[cat] = ev.ts
            x = (ev.ts - self.anchor) / half_life_ms
            if x > 30:  # re-anchor before the growth factor overflows
                scale = 2.0 ** -x
                self.aff = {c: v * scale for c, v in self.aff.items() if v * scale > 1e-12}
                self.anchor = ev.ts
                x = 0.0
            self.aff[cat] = self.aff.get(cat, 0.0) + w * 2.0 ** x
            if len(self.aff) > self.max_categories:
                weakest = min(self.aff, key=self.aff.__getitem__)
                del self.aff[weakest]
                self.cat_last.pop(weakest, None)

    def session_closed(self, duration_s: float, keep: int) -> None:
        self.sessions += 1
        self.durations.append(duration_s)
        if len(self.durations) > keep:
            del self.durations[0]

    def affinity(self) -> dict[str, float]:
        """Category -> share of decayed interest (sums to 1)."""
        total = sum(self.aff.values())
        return {c: v / total for c, v in self.aff.items()} if total else {}

    def diversity(self) -> float:
        """Normalised entropy of the affinity distribution: 0 one category, 1 all alike."""
        total = sum(self.aff.values())
        if total <= 0 or len(self.aff) < 2:
            return 0.0
        h = 0.0
        for v in self.aff.values():
            p = v / total
            if p > 0:
                h -= p * math.log(p)
        return h / math.log(len(self.aff))

    def trend(self, current_s: float | None = None) -> float:
        """Least-squares slope of session duration (s) per visit over recent visits, current one included."""
        ys = self.durations + ([current_s] if current_s is not None else [])
        n = len(ys)
        if n < 3:
            return 0.0
        mx = (n - 1) / 2
        my = sum(ys) / n
        num = sum((i - mx) * (y - my) for i, y in enumerate(ys))
        den = sum((i - mx) ** 2 for i in range(n))
        return num / den

    def copy(self) -> "Profile":
        p = Profile.__new__(Profile)
        for f in _FIELDS:
            setattr(p, f, getattr(self, f))
        p.cat_last, p.aff, p.durations = dict(self.cat_last), dict(self.aff), list(self.durations)
        return p

    def to_list(self) -> list:
        return [dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
                for v in (getattr(self, f) for f in _FIELDS)]

    @classmethod
    def from_list(cls, data: list) -> "Profile":
        p = cls.__new__(cls)
        for f, v in zip(_FIELDS, data):
            setattr(p, f, v)
        return p
