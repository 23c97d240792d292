"""The reference engine: the core in one Python process, user states in a dict, event-time timers in a heap."""
from __future__ import annotations

import heapq
import time
from collections import Counter
from typing import Callable, Iterable

from schemas import MemoryRegistry, WireCodec, registry_from_url
from schemas.errors import DecodeError
from transforms.config import Config
from transforms.core import Core
from transforms.deadletters import dead_letter
from transforms.decisions import snapshot
from transforms.events import check_record, from_record
from transforms.outputs import Blocked, Changed, Duplicate, Erased, Late, SessionClosed, ShiftDetected
from transforms.pseudonyms import Pseudonymiser
from transforms.watermarks import Watermarks

from .writer import DecisionWriter

END_OF_TIME = 2**62


class Outputs:
    """Where the job's side outputs go; each is a callable taking one record (None: counted only)."""

    def __init__(self, dead_letter: Callable | None = None, late: Callable | None = None,
                 shift: Callable | None = None, session: Callable | None = None):
        self.dead_letter = dead_letter
        self.late = late
        self.shift = shift
        self.session = session


class ReferenceJob:
    """Runs the core over records or wire-format messages, writing decisions to a sink in micro-batches."""

    def __init__(self, cfg: Config, sink, pseudonymise: Pseudonymiser, outputs: Outputs | None = None,
                 scorer=None, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.core = Core(cfg)
        self.writer = DecisionWriter(cfg, sink, scorer, clock)
        self.sink = sink
        self.pseudonymise = pseudonymise
        self.outputs = outputs or Outputs()
        self.clock = clock
        self.states: dict = {}
        self.timers: list[tuple[int, str]] = []
        self.watermarks = Watermarks(cfg.event_time.allowed_lateness, cfg.event_time.watermark_idleness)
        self.dirty: dict[str, None] = {}
        self.erased: dict[str, None] = {}
        self.stats: Counter = Counter()
        self.users_seen: set[str] = set()
        self.purged_users = 0
        self.applied_through = -(2**63)  # every accepted event at or before this time has been applied
        self.batch_size = cfg.batching.micro_batch_size
        self.max_future_ms = cfg.event_time.max_future_skew
        self.flush_interval_s = cfg.batching.flush_interval / 1000
        self._last_flush = time.monotonic()
        self._wire: WireCodec | None = None
        self._privacy_wire: WireCodec | None = None
        self.on_flush: Callable[[], None] | None = None

    # -- inputs ------------------------------------------------------------------------------------------------

    def wire(self) -> WireCodec:
        if self._wire is None:
            url = self.cfg.kafka.schema_registry_url
            self._wire = WireCodec(registry_from_url(url) if not url.startswith("memory") else MemoryRegistry(),
                                   "interaction")
        return self._wire

    def on_message(self, data: bytes, partition: int = 0, offset: int | None = None,
                   source: str = "events") -> int | None:
        """One Kafka-style message value (Confluent wire format); bad bytes become a dead letter.
        Returns the event time, or None for a dead letter."""
        try:
            rec = self.wire().decode(data)
        except DecodeError as exc:
            self._dead(exc, data, source, partition, offset)
            return None
        return self.on_record(rec, partition, offset, source, data)

    def on_record(self, rec: dict, partition: int = 0, offset: int | None = None, source: str = "events",
                  payload: bytes | None = None) -> int | None:
        """One decoded Interaction record; returns its event time, or None if it became a dead letter."""
        now = time.monotonic()
        problem = check_record(rec, int(self.clock() * 1000) + self.max_future_ms)
        if problem is not None:
            self._dead(problem, payload, source, partition, offset)
            return None
        self.stats["events"] += 1
        raw_id = rec["user_id"]
        key = self.pseudonymise(raw_id)
        ev = from_record(rec)
        wm = self.watermarks.observe(ev.ts, partition, now)
        st, outs = self.core.accept(self.states.get(key), key, ev, wm)
        timers = self.timers
        if outs:
            if st.is_empty():  # nothing to keep for a user whose event was refused: no trace either
                self.states.pop(key, None)
                self.pseudonymise.forget(raw_id)
            else:
                self.states[key] = st
            self._outputs(outs)
        else:
            self.states[key] = st
            self.users_seen.add(key)
            # a timer only when this event is the user's earliest pending one: the heap already holds an entry
            # at or before the user's next timer otherwise (pushed when that head arrived, or after an advance)
            if st.pending[0] is ev:
                heapq.heappush(timers, (ev.ts, key))
        if wm > self.applied_through:
            self.fire(wm)
        if now - self._last_flush >= self.flush_interval_s:
            self.flush()
        return ev.ts

    def on_privacy(self, rec: dict) -> None:
        """A PrivacyRequest record: consent change or erasure, applied at once."""
        self.stats["privacy_requests"] += 1
        key = self.pseudonymise(rec["user_id"])
        self.pseudonymise.forget(rec["user_id"])
        st, outs = self.core.privacy(self.states.get(key), key, rec["kind"], rec["ts"])
        self.states[key] = st
        nt = self.core.next_timer(st)
        if nt is not None:
            heapq.heappush(self.timers, (nt, key))
        self._outputs(outs)

    def on_privacy_message(self, data: bytes, partition: int = 0, offset: int | None = None) -> None:
        if self._privacy_wire is None:
            self._privacy_wire = WireCodec(MemoryRegistry(), "privacy_request")
        try:
            rec = self._privacy_wire.decode(data)
        except DecodeError as exc:
            self._dead(exc, data, "privacy", partition, offset)
            return
        self.on_privacy(rec)

    def idle(self, now: float | None = None) -> None:
        """Call when input is quiet: idle partitions release the watermark, and a due batch is flushed."""
        self.fire(self.watermarks.idle_check(now if now is not None else time.monotonic()))
        if self.dirty or self.erased:
            self.flush()

    # -- time --------------------------------------------------------------------------------------------------

    def fire(self, wm: int) -> None:
        """Advance every user whose next timer is at or before the watermark."""
        timers, states, core = self.timers, self.states, self.core
        if wm > self.applied_through:
            self.applied_through = wm
        while timers and timers[0][0] <= wm:
            _, key = heapq.heappop(timers)
            st = states.get(key)
            if st is None:
                continue
            due = core.next_timer(st)
            if due is None or due > wm:
                continue  # a stale entry: this user's work was done by an earlier one
            st, outs = core.advance(st, key, wm)
            if st is None:
                del states[key]
            else:
                nt = core.next_timer(st)
                if nt is not None and nt > wm:  # after advance nothing is due at or before wm
                    heapq.heappush(timers, (nt, key))
            if outs:
                self._outputs(outs)

    def finish(self) -> None:
        """End of input: the watermark goes to the end of time, every session closes, everything is written."""
        self.fire(END_OF_TIME)
        self.flush()
        self.sink.flush()

    # -- outputs -----------------------------------------------------------------------------------------------

    def _outputs(self, outs: Iterable) -> None:
        stats = self.stats
        for o in outs:
            t = type(o)
            if t is Changed:
                self.dirty[o.key] = None
                if len(self.dirty) >= self.batch_size:
                    self.flush()
            elif t is SessionClosed:
                stats["sessions"] += 1
                if self.outputs.session:
                    self.outputs.session(o)
            elif t is ShiftDetected:
                stats["shifts"] += 1
                if self.outputs.shift:
                    self.outputs.shift(o)
            elif t is Late:
                stats["late"] += 1
                if self.outputs.late:
                    self.outputs.late(o)
            elif t is Duplicate:
                stats["duplicates"] += 1
            elif t is Blocked:
                stats[f"blocked_{o.reason}"] += 1
            elif t is Erased:
                stats[f"purged_{o.reason}"] += 1
                self.dirty.pop(o.key, None)
                self.erased[o.key] = None
                if o.key in self.users_seen:
                    self.users_seen.discard(o.key)
                    self.purged_users += 1

    def _dead(self, exc: Exception, payload: bytes | None, source: str, partition, offset) -> None:
        self.stats["dead_letters"] += 1
        self.stats[f"dead_letter_{getattr(exc, 'reason', type(exc).__name__)}"] += 1
        if self.outputs.dead_letter:
            self.outputs.dead_letter(dead_letter(exc, payload, self.pseudonymise, source, partition, offset,
                                                 int(self.clock() * 1000)))

    def flush(self) -> None:
        """Render and write the decisions of every user changed since the last flush (deletes first)."""
        if self.erased:
            self.sink.delete(list(self.erased))
            self.erased.clear()
        if self.dirty:
            states, cfg = self.states, self.cfg
            rows = [snapshot(states[k], k, cfg) for k in self.dirty if k in states]
            self.dirty.clear()
            self.stats["decisions"] += self.writer.write(rows)
        self._last_flush = time.monotonic()
        if self.on_flush is not None:
            self.on_flush()

    def summary(self) -> dict:
        s = self.stats
        # profiles: users with an accepted event; one erased who comes back later gets (and counts) a new profile
        return {"events": s["events"], "profiles": len(self.users_seen) + self.purged_users, "sessions": s["sessions"], "shifts": s["shifts"],
                "late": s["late"], "duplicates": s["duplicates"], "dead_letters": s["dead_letters"],
                "blocked": sum(v for k, v in s.items() if k.startswith("blocked_")),
                "privacy_requests": s["privacy_requests"], "decisions_written": s["decisions"]}
