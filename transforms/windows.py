"""Sliding event-time windows (e.g. 5 min, 1 h, 24 h) over a user's events: counts by type and category."""
from __future__ import annotations

from .events import CLICK, IMPRESSION, PAGE_VIEW


class Windows:
    """Running counts for each window width, evicting events as they slide out; at most `max_events` kept."""

    __slots__ = ("widths", "buf", "base", "starts", "counts", "cats", "max_events")

    def __init__(self, widths: tuple[int, ...], max_events: int):
        self.widths = tuple(widths)
        self.max_events = max_events
        self.buf: list[tuple[int, int, str | None]] = []
        self.base = 0  # absolute index of buf[0]
        self.starts = [0] * len(widths)
        self.counts = [[0] * 8 for _ in widths]
        self.cats: list[dict[str, int]] = [{} for _ in widths]

    def add(self, ts: int, code: int, cat: str | None) -> None:
        buf = self.buf
        buf.append((ts, code, cat))
        base = self.base
        starts, counts, cats = self.starts, self.counts, self.cats
        for w, width in enumerate(self.widths):
            c = counts[w]
            c[code] += 1
            d = cats[w]
            if cat is not None:
                d[cat] = d.get(cat, 0) + 1
            cutoff = ts - width
            i = starts[w]
            while True:  # evict what slid out; the event just added (ts > cutoff) stops the loop
                ets, ecode, ecat = buf[i - base]
                if ets > cutoff:
                    break
                c[ecode] -= 1
                if ecat is not None:
                    left = d[ecat] - 1
                    if left:
                        d[ecat] = left
                    else:
                        del d[ecat]
                i += 1
            starts[w] = i
        widest = len(self.widths) - 1
        while base + len(buf) - starts[widest] > self.max_events:
            oldest = starts[widest]  # the widest window starts earliest; the cap evicts from all that hold it
            for w in range(widest + 1):
                if starts[w] == oldest:
                    self._evict(w)
        drop = starts[widest] - base
        if drop > 64 and drop * 2 > len(buf):
            del buf[:drop]
            self.base = base + drop

    def slide(self, now: int) -> None:
        """Evict what has slid out of each window by event time `now`."""
        buf, base = self.buf, self.base
        end = base + len(buf)
        for w, width in enumerate(self.widths):
            cutoff = now - width
            while self.starts[w] < end and buf[self.starts[w] - base][0] <= cutoff:
                self._evict(w)

    def _evict(self, w: int) -> None:
        ts, code, cat = self.buf[self.starts[w] - self.base]
        self.counts[w][code] -= 1
        if cat is not None:
            d = self.cats[w]
            left = d[cat] - 1
            if left:
                d[cat] = left
            else:
                del d[cat]
        self.starts[w] += 1

    def values(self, w: int) -> tuple[float, ...]:
        """events, page views, clicks, click-through (clicks per impression or page view), cart adds, purchases,
        distinct categories for window `w`."""
        c = self.counts[w]
        shown = c[IMPRESSION] or c[PAGE_VIEW]
        return (float(sum(c)), float(c[PAGE_VIEW]), float(c[CLICK]), c[CLICK] / shown if shown else 0.0,
                float(c[5]), float(c[6]), float(len(self.cats[w])))

    def copy(self) -> "Windows":
        w = Windows.__new__(Windows)
        w.widths, w.max_events, w.base = self.widths, self.max_events, self.base
        w.buf = list(self.buf)  # entries are tuples, shared
        w.starts = list(self.starts)
        w.counts = [list(c) for c in self.counts]
        w.cats = [dict(d) for d in self.cats]
        return w

    def to_list(self) -> list:
        return [list(self.widths), [list(e) for e in self.buf], self.base, list(self.starts),
                [list(c) for c in self.counts], [dict(d) for d in self.cats], self.max_events]

    @classmethod
    def from_list(cls, data: list) -> "Windows":
        w = cls.__new__(cls)
        w.widths = tuple(data[0])
        w.buf = [tuple(e) for e in data[1]]
        w.base, w.starts = data[2], list(data[3])
        w.counts = [list(c) for c in data[4]]
        w.cats = [dict(d) for d in data[5]]
        w.max_events = data[6]
        return w


def window_label(width_ms: int) -> str:
    """'5m', '1h', '24h', '30s' for a width in ms (used in feature names)."""
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if width_ms % ms == 0 and not (unit == "d" and width_ms // ms == 1):
            if unit == "d":
                return f"{width_ms // 3_600_000}h"
            return f"{width_ms // ms}{unit}"
    return f"{width_ms}ms"


WINDOW_FEATURES = ("events", "page_views", "clicks", "ctr", "cart_adds", "purchases", "categories")
