"""Preference-shift detection: short-term interest against the long-term profile, one category event at a time.

Two exponentially weighted category distributions (short and long half-lives, in events) are kept with a
shared growth factor, so an update costs O(1). A shift from the long-term top category A to B is flagged when
B's short-term share exceeds its long-term share by `threshold`, B leads A in the short term, and B has led
for at least a few events; the long-term view then adopts the short-term one and a cooldown starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# the state, in the order `to_list` keeps it (checkpoints hold that list)
_FIELDS = ("short", "short_scale", "short_total", "long", "long_scale", "long_total", "events", "top", "cooldown",
           "lead", "last", "candidate")


@dataclass(frozen=True)
class ShiftParams:
    """The detector's settings (config `shift`), with the half-lives turned into smoothing factors."""
    a_short: float
    a_long: float
    min_events: int
    threshold: float
    cooldown: int
    persist: int = 2
    max_categories: int = 64

    @classmethod
    def from_config(cls, sh, max_categories: int = 64) -> "ShiftParams":
        return cls(alpha(sh.short_half_life_events), alpha(sh.long_half_life_events), sh.min_events, sh.threshold,
                   sh.cooldown_events, sh.persist_events, max_categories)


class Detection(NamedTuple):
    ts: int
    from_category: str
    to_category: str
    score: float


class ShiftDetector:
    """Per-user detector state; `update` returns a Detection when interest has moved."""

    __slots__ = _FIELDS

    def __init__(self):
        # short- and long-term interest per category, each kept as weight * scale (the scale shrinks by (1 - a)
        # per event, so an update touches one category) with the running total of weights
        self.short: dict[str, float] = {}
        self.short_scale = 1.0
        self.short_total = 0.0
        self.long: dict[str, float] = {}
        self.long_scale = 1.0
        self.long_total = 0.0
        self.events = 0
        self.top: str | None = None          # the long-term top category
        self.cooldown = 0                    # interest events left before another detection
        self.lead = 0                        # events in a row the candidate has led
        self.last: tuple | None = None       # the latest detection, as a plain tuple
        self.candidate: list | None = None   # [category, session it first led in]

    def update(self, cat: str, ts: int, p: ShiftParams, session: int | None = None) -> Detection | None:
        """Take one interest event. With `session` given (the session's start time), a candidate must still lead
        in a later session than the one it first led in: one-session excursions are not shifts."""
        self.events += 1
        a_short, a_long = p.a_short, p.a_long
        # p <- (1-a) p + a e_cat, kept as p = u * g with g shrinking by (1-a) per step
        if cat not in self.short and len(self.short) >= p.max_categories:
            self._drop_weakest(cat)
        self.short_scale *= 1.0 - a_short
        self.short[cat] = self.short.get(cat, 0.0) + a_short / self.short_scale
        self.short_total = self.short_total * (1.0 - a_short) + a_short
        self.long_scale *= 1.0 - a_long
        self.long[cat] = self.long.get(cat, 0.0) + a_long / self.long_scale
        self.long_total = self.long_total * (1.0 - a_long) + a_long
        if self.short_scale < 1e-150:
            self.short = {c: v * self.short_scale for c, v in self.short.items() if v * self.short_scale > 1e-9}
            self.short_scale = 1.0
        if self.long_scale < 1e-150:
            self.long = {c: v * self.long_scale for c, v in self.long.items() if v * self.long_scale > 1e-9}
            self.long_scale = 1.0
        top = self.top
        if top is None or (cat != top and self.long[cat] > self.long.get(top, 0.0)):
            self.top = top = cat
        if self.cooldown:
            self.cooldown -= 1
        if cat == top or self.events < p.min_events:
            self.lead = 0
            return None
        short_share = self.short[cat] * self.short_scale / self.short_total
        long_share = self.long[cat] * self.long_scale / self.long_total
        top_short_share = self.short.get(top, 0.0) * self.short_scale / self.short_total
        score = short_share - long_share
        if score >= p.threshold and short_share > top_short_share:
            self.lead += 1
            if self.candidate is None or self.candidate[0] != cat:
                self.candidate = [cat, session]
        else:
            self.lead = 0
            return None
        if self.lead < p.persist or self.cooldown:
            return None
        if session is not None and self.candidate[1] == session:
            return None
        # adopt the short-term view as the new long-term baseline
        self.long = {c: v * self.short_scale / self.short_total for c, v in self.short.items()}
        self.long_scale, self.long_total = 1.0, 1.0
        self.top = cat
        self.cooldown = p.cooldown
        self.lead = 0
        self.candidate = None
        det = Detection(ts, top, cat, round(score, 6))
        self.last = tuple(det)
        return det

    def _drop_weakest(self, keep: str) -> None:
        """Make room for a new category: drop the one with the least long-term (then short-term) interest."""
        long, short = self.long, self.short
        weakest = min((c for c in short if c != keep and c != self.top), key=lambda c: (long.get(c, 0.0), short[c]))
        short.pop(weakest, None)
        long.pop(weakest, None)

    def score_now(self) -> float:
        """The largest short-over-long excess of any category right now (0 when none)."""
        if not self.short_total or not self.long_total:
            return 0.0
        best = 0.0
        gs, st, gl, lt, long = self.short_scale, self.short_total, self.long_scale, self.long_total, self.long
        for c, v in self.short.items():
            d = v * gs / st - long.get(c, 0.0) * gl / lt
            if d > best:
                best = d
        return best

    def copy(self) -> "ShiftDetector":
        d = ShiftDetector.__new__(ShiftDetector)
        for f in _FIELDS:
            setattr(d, f, getattr(self, f))
        d.short, d.long = dict(self.short), dict(self.long)
        d.candidate = list(self.candidate) if self.candidate else None
        return d

    def to_list(self) -> list:
        return [dict(self.short), self.short_scale, self.short_total, dict(self.long), self.long_scale,
                self.long_total, self.events, self.top, self.cooldown, self.lead,
                list(self.last) if self.last else None, list(self.candidate) if self.candidate else None]

    @classmethod
    def from_list(cls, data: list) -> "ShiftDetector":
        d = cls.__new__(cls)
        for f, v in zip(_FIELDS, data):
            setattr(d, f, v)
        if d.last is not None:
            d.last = tuple(d.last)
        return d


def alpha(half_life_events: float) -> float:
    """The smoothing factor whose weight halves after `half_life_events` updates."""
    return 1.0 - 0.5 ** (1.0 / half_life_events)
