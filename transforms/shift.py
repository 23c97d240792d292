"""Preference-shift detection: short-term interest against the long-term profile, one category event at a time.

Two exponentially weighted category distributions (short and long half-lives, in events) are kept with a
shared growth factor, so an update costs O(1). A shift from the long-term top category A to B is flagged when
B's short-term share exceeds its long-term share by `threshold`, B leads A in the short term, and B has led
for at least a few events; the long-term view then adopts the short-term one and a cooldown starts.
"""
from __future__ import annotations

from typing import NamedTuple

_FIELDS = ("s", "gs", "stot", "l", "gl", "ltot", "n", "top", "cooldown", "lead", "last", "cand")


class Detection(NamedTuple):
    ts: int
    from_category: str
    to_category: str
    score: float


class ShiftDetector:
    """Per-user detector state; `update` returns a Detection when interest has moved."""

    __slots__ = _FIELDS

    def __init__(self):
        self.s: dict[str, float] = {}
        self.gs = 1.0
        self.stot = 0.0
        self.l: dict[str, float] = {}
        self.gl = 1.0
        self.ltot = 0.0
        self.n = 0
        self.top: str | None = None
        self.cooldown = 0
        self.lead = 0
        self.last: tuple | None = None  # the latest detection, as a plain tuple
        self.cand: list | None = None   # [category, session it first led in]

    def update(self, cat: str, ts: int, a_short: float, a_long: float, min_events: int, threshold: float,
               cooldown: int, persist: int = 2, session: int | None = None,
               max_categories: int = 64) -> Detection | None:
        """Take one interest event. With `session` given (the session's start time), a candidate must still lead
        in a later session than the one it first led in: one-session excursions are not shifts."""
        self.n += 1
        # p <- (1-a) p + a e_cat, kept as p = u * g with g shrinking by (1-a) per step
        if cat not in self.s and len(self.s) >= max_categories:
            self._drop_weakest(cat)
        self.gs *= 1.0 - a_short
        self.s[cat] = self.s.get(cat, 0.0) + a_short / self.gs
        self.stot = self.stot * (1.0 - a_short) + a_short
        self.gl *= 1.0 - a_long
        self.l[cat] = self.l.get(cat, 0.0) + a_long / self.gl
        self.ltot = self.ltot * (1.0 - a_long) + a_long
        if self.gs < 1e-150:
            self.s = {c: v * self.gs for c, v in self.s.items() if v * self.gs > 1e-9}
            self.gs = 1.0
        if self.gl < 1e-150:
            self.l = {c: v * self.gl for c, v in self.l.items() if v * self.gl > 1e-9}
            self.gl = 1.0
        top = self.top
        if top is None or (cat != top and self.l[cat] > self.l.get(top, 0.0)):
            self.top = top = cat
        if self.cooldown:
            self.cooldown -= 1
        if cat == top or self.n < min_events:
            self.lead = 0
            return None
        sc = self.s[cat] * self.gs / self.stot
        lc = self.l[cat] * self.gl / self.ltot
        st = self.s.get(top, 0.0) * self.gs / self.stot
        score = sc - lc
        if score >= threshold and sc > st:
            self.lead += 1
            if self.cand is None or self.cand[0] != cat:
                self.cand = [cat, session]
        else:
            self.lead = 0
            return None
        if self.lead < persist or self.cooldown:
            return None
        if session is not None and self.cand[1] == session:
            return None
        # adopt the short-term view as the new long-term baseline
        self.l = {c: v * self.gs / self.stot for c, v in self.s.items()}
        self.gl, self.ltot = 1.0, 1.0
        self.top = cat
        self.cooldown = cooldown
        self.lead = 0
        self.cand = None
        det = Detection(ts, top, cat, round(score, 6))
        self.last = tuple(det)
        return det

    def _drop_weakest(self, keep: str) -> None:
        """Make room for a new category: drop the one with the least long-term (then short-term) interest."""
        l, sh = self.l, self.s
        weakest = min((c for c in sh if c != keep and c != self.top), key=lambda c: (l.get(c, 0.0), sh[c]))
        sh.pop(weakest, None)
        l.pop(weakest, None)

    def score_now(self) -> float:
        """The largest short-over-long excess of any category right now (0 when none)."""
        if not self.stot or not self.ltot:
            return 0.0
        best = 0.0
        for c, v in self.s.items():
            d = v * self.gs / self.stot - self.l.get(c, 0.0) * self.gl / self.ltot
            if d > best:
                best = d
        return best

    def to_list(self) -> list:
        return [dict(self.s), self.gs, self.stot, dict(self.l), self.gl, self.ltot, self.n, self.top, self.cooldown,
                self.lead, list(self.last) if self.last else None, list(self.cand) if self.cand else None]

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
