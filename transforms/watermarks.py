"""Event-time watermarks: max event time seen minus allowed lateness, per source partition, idle ones skipped."""
from __future__ import annotations

NO_WATERMARK = -(2**63)
END_OF_TIME = 2**62  # the watermark at the end of input: every buffered event applies, every session closes


class Watermarks:
    """Tracks the watermark over a source's partitions; a partition idle for `idleness_ms` stops holding it back."""

    def __init__(self, allowed_lateness_ms: int, idleness_ms: int = 30_000):
        self.lateness = allowed_lateness_ms
        self.idleness = idleness_ms
        self._max: dict[object, int] = {}
        self._seen_at: dict[object, float] = {}
        self.current = NO_WATERMARK

    def observe(self, ts: int, partition: object = 0, now: float | None = None) -> int:
        """Note an event's time; returns the (never decreasing) watermark after it."""
        m = self._max.get(partition)
        if m is None or ts > m:
            self._max[partition] = ts
        if now is not None:
            self._seen_at[partition] = now
        if len(self._max) == 1:
            wm = self._max[partition] - self.lateness
        else:
            wm = self._combined(now)
        if wm > self.current:
            self.current = wm
        return self.current

    def _combined(self, now: float | None) -> int:
        active = [m for p, m in self._max.items()
                  if now is None or now - self._seen_at.get(p, now) < self.idleness / 1000]
        return (min(active) if active else max(self._max.values())) - self.lateness

    def high(self) -> int:
        """The latest event time seen on any partition."""
        return max(self._max.values()) if self._max else NO_WATERMARK

    def idle_check(self, now: float) -> int:
        """Re-evaluate with the processing clock, so idle partitions release the watermark."""
        if self._max:
            wm = self._combined(now)
            if wm > self.current:
                self.current = wm
        return self.current
