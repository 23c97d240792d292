"""Gap-based sessions: what one visit looks like, updated event by event."""
from __future__ import annotations

from .events import CART, PAGE_VIEW, PURCHASE, Ev

_FIELDS = ("start", "last", "n", "by_type", "dwell_sum", "dwell_n", "dwell_max", "scroll_max", "hover_total",
           "cats", "device", "revenue")


class Session:
    """An open session's running totals."""

    __slots__ = _FIELDS

    def __init__(self, ev: Ev):
        self.start = ev.ts
        self.last = ev.ts
        self.n = 0
        self.by_type = [0] * 8
        self.dwell_sum = 0
        self.dwell_n = 0
        self.dwell_max = 0
        self.scroll_max = 0.0
        self.hover_total = 0
        self.cats: dict[str, int] = {}
        self.device = ev.device
        self.revenue = 0.0

    def add(self, ev: Ev, max_categories: int = 64) -> None:
        self.last = ev.ts
        self.n += 1
        self.by_type[ev.code] += 1
        if ev.dwell_ms is not None:
            self.dwell_sum += ev.dwell_ms
            self.dwell_n += 1
            if ev.dwell_ms > self.dwell_max:
                self.dwell_max = ev.dwell_ms
        if ev.scroll_depth is not None and ev.scroll_depth > self.scroll_max:
            self.scroll_max = ev.scroll_depth
        if ev.hover_ms is not None:
            self.hover_total += ev.hover_ms
        cat = ev.category
        if cat is not None:
            n = self.cats.get(cat)
            if n is not None:
                self.cats[cat] = n + 1
            elif len(self.cats) < max_categories:  # distinct categories saturate at the cap
                self.cats[cat] = 1
        if ev.code == PURCHASE and ev.price:
            self.revenue += ev.price
        if ev.device is not None:
            self.device = ev.device

    def ends_before(self, ts: int, gap_ms: int, max_length_ms: int) -> bool:
        """Whether an event at `ts` starts a new session rather than joining this one."""
        return ts - self.last >= gap_ms or ts - self.start >= max_length_ms

    def duration_ms(self) -> int:
        return self.last - self.start

    def summary(self) -> dict:
        """The closed session as a plain record (the session output)."""
        return {"start": self.start, "end": self.last, "duration_s": (self.last - self.start) / 1000,
                "events": self.n, "page_views": self.by_type[PAGE_VIEW], "cart_adds": self.by_type[CART],
                "purchases": self.by_type[PURCHASE], "categories": len(self.cats), "device": self.device,
                "revenue": round(self.revenue, 2)}

    def copy(self) -> "Session":
        c = Session.__new__(Session)
        for f in _FIELDS:
            setattr(c, f, getattr(self, f))
        c.by_type = list(self.by_type)
        c.cats = dict(self.cats)
        return c

    def to_list(self) -> list:
        return [getattr(self, f) if f not in ("by_type", "cats") else
                (list(self.by_type) if f == "by_type" else dict(self.cats)) for f in _FIELDS]

    @classmethod
    def from_list(cls, data: list) -> "Session":
        s = cls.__new__(cls)
        for f, v in zip(_FIELDS, data):
            setattr(s, f, v)
        return s
