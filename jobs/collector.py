"""Python's garbage collector in a long-running job: no pause that grows with the users' states.

A full collection scans every tracked object, and a job holding thousands of users' states (their pending events,
windows and copies) has millions: measured on the reference Kafka loop at 4,000 events/s, pauses of about 200 ms
every few seconds, the whole p99. `Freezer.tick()`, called from the job's loop, moves the objects alive into the
permanent generation every `engine.gc_freeze_interval` (`gc.freeze()` splices lists: O(1)), after collecting the
young generations (what was allocated since the last tick); the automatic collector is off meanwhile, since even
with freezing its collections stalled a PyFlink worker for ~200 ms a few times a minute. Frozen objects are still freed by reference counting when dropped; garbage in reference
cycles frozen while alive (the states hold none, but client libraries may) waits for the full collection every
FULL_EVERY (10 min).
"""
from __future__ import annotations

import gc
import time


FULL_EVERY = 600.0  # s: one full collection (frozen objects included) this often, so garbage in reference
                    # cycles that was frozen while alive is freed (a pause, once in ten minutes)
_active = 0          # Freezers open in this interpreter (several RunCore instances share one in thread mode)
_enabled_before = True


class Freezer:
    def __init__(self, interval_ms: int, clock=time.monotonic):
        global _active, _enabled_before
        self.every = interval_ms / 1000
        self.clock = clock
        self.last = self.last_full = clock()
        if self.every:
            if _active == 0:
                _enabled_before = gc.isenabled()
                gc.freeze()  # what start-up built (modules, config, models) first
                gc.disable()  # collections happen in tick(), on the young objects only
            _active += 1

    def tick(self) -> None:
        if self.every:
            now = self.clock()
            if now - self.last >= self.every:
                if now - self.last_full >= FULL_EVERY:
                    gc.unfreeze()
                    gc.collect()
                    self.last_full = now
                else:
                    gc.collect(1)  # cyclic garbage of the last interval (short: only what was allocated since)
                gc.freeze()
                self.last = now

    def close(self) -> None:
        global _active
        if self.every:
            self.every = 0
            _active -= 1
            if _active == 0:
                gc.unfreeze()  # back to the collector's care (an embedding process goes on)
                if _enabled_before:
                    gc.enable()
