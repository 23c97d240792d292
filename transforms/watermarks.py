"""Event-time watermarks that follow the bulk of each source partition, not its single latest event.

The rule (the same on every engine, because every engine stamps arrivals with this class through `Ingest`):

- A partition's *frontier* is the (tolerance + 1)-th latest event time among its last `window` accepted events,
  and it never goes back. With the default tolerance of 3, up to 3 events dated far ahead (a client clock a day
  off, a flipped bit in a timestamp) among any `window` consecutive events of a partition cannot move it: they are
  buffered like any event and apply when the watermark really reaches their time. A genuine jump (a producer back
  after an outage) moves it after `tolerance + 1` events. Tolerance 0 is the classic rule: the latest event time.
- A partition's watermark starts once it has `tolerance + 1` events, so a first event that is an outlier cannot
  set it either.
- The source watermark is the slowest active partition's frontier minus `allowed_lateness`; a partition silent for
  `idleness` (processing time) stops holding it back. It never decreases. It drives the timers (what settles).
- An arriving event is late when it is at or before its *own partition's* watermark (that frontier minus
  `allowed_lateness`, `own(partition)`): a function of the partition's events alone, so with several partitions
  every engine calls the same events late, however it interleaves the partitions. (The source watermark is never
  above the slowest partition's, so an event its own partition accepts is never behind what settled for it.)

Everything depends on the order of events within a partition only, so a replay gives the same watermarks.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

NO_WATERMARK = -(2**63)
END_OF_TIME = 2**62  # the watermark at the end of input: every buffered event applies, every session closes


class _Partition:
    __slots__ = ("recent", "ranked", "frontier", "latest", "seen_at")

    def __init__(self):
        self.recent: deque[int] = deque()
        self.ranked: list[int] = []
        self.frontier = NO_WATERMARK
        self.latest = NO_WATERMARK
        self.seen_at: float | None = None


class Watermarks:
    """Tracks the watermark over a source's partitions (see the module doc for the rule)."""

    def __init__(self, allowed_lateness_ms: int, idleness_ms: int = 30_000, tolerance: int = 3,
                 window: int = 256):
        if tolerance < 0 or window <= tolerance:
            raise ValueError(f"watermark tolerance {tolerance} needs a window above it, got {window}")
        self.lateness = allowed_lateness_ms
        self.idleness = idleness_ms
        self.rank = tolerance + 1
        self.window = window
        self._parts: dict[object, _Partition] = {}
        self.current = NO_WATERMARK

    def observe(self, ts: int, partition: object = 0, now: float | None = None) -> int:
        """Note an accepted event's time; returns the (never decreasing) watermark after it."""
        p = self._parts.get(partition)
        if p is None:
            p = self._parts[partition] = _Partition()
        if ts > p.latest:
            p.latest = ts
        if self.rank == 1:
            if ts > p.frontier:
                p.frontier = ts
        else:
            recent, ranked = p.recent, p.ranked
            recent.append(ts)
            if not ranked or ts >= ranked[-1]:
                ranked.append(ts)
            else:
                insort(ranked, ts)
            if len(recent) > self.window:
                del ranked[bisect_left(ranked, recent.popleft())]
            if len(ranked) >= self.rank:
                f = ranked[-self.rank]
                if f > p.frontier:
                    p.frontier = f
        if now is not None:
            p.seen_at = now
        if len(self._parts) == 1:
            f = p.frontier
            wm = NO_WATERMARK if f == NO_WATERMARK else f - self.lateness
        else:
            wm = self._combined(now)
        if wm > self.current:
            self.current = wm
        return self.current

    def _combined(self, now: float | None) -> int:
        parts = self._parts.values()
        active = [p.frontier for p in parts
                  if now is None or p.seen_at is None or now - p.seen_at < self.idleness / 1000]
        f = min(active) if active else max(p.frontier for p in parts)
        return NO_WATERMARK if f == NO_WATERMARK else f - self.lateness

    def adopt(self, old: "Watermarks", now: float) -> None:
        """Continue from a restored tracker's partitions under this one's settings (a config changed between the
        checkpoint and the restart): recent windows cut to this window, every partition counted as just seen."""
        self.current = old.current
        self._parts = old._parts
        for p in self._parts.values():
            while len(p.recent) > self.window:
                del p.ranked[bisect_left(p.ranked, p.recent.popleft())]
        self.rebase(now)

    def rebase(self, now: float) -> None:
        """After a restore into another process (another monotonic clock): every partition counts as just seen."""
        for p in self._parts.values():
            p.seen_at = now

    def expect(self, partitions, now: float | None = None) -> None:
        """Partitions the source has, known before their first event: each holds the watermark back until it has
        a frontier or goes idle (counted from `now`), so the first partition read cannot carry the watermark past
        what the others still hold. Partitions already tracked are left as they are."""
        for part in partitions:
            if part not in self._parts:
                p = self._parts[part] = _Partition()
                p.seen_at = now

    def own(self, partition: object = 0) -> int:
        """The partition's own watermark: its frontier minus the allowed lateness (NO_WATERMARK before it has one)."""
        p = self._parts.get(partition)
        f = NO_WATERMARK if p is None else p.frontier
        return NO_WATERMARK if f == NO_WATERMARK else f - self.lateness

    def high(self) -> int:
        """The latest event time seen on any partition (outliers included)."""
        return max((p.latest for p in self._parts.values()), default=NO_WATERMARK)

    def idle_check(self, now: float) -> int:
        """Re-evaluate with the processing clock, so idle partitions release the watermark."""
        if self._parts:
            wm = self._combined(now)
            if wm > self.current:
                self.current = wm
        return self.current
