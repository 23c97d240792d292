"""The reference engine: the core in one Python process, user states in a dict, event-time timers in a heap.

It calls the core through the same contract as every engine: `Ingest` for messages, `Core.accept / advance /
privacy` per user, `Dispatch` for the outputs, `DecisionWriter` for micro-batches."""
from __future__ import annotations

import heapq
import pickle
import time
from typing import Callable

from shiftstream.transforms.config import Config
from shiftstream.transforms.core import Core
from shiftstream.transforms.decisions import snapshot
from shiftstream.transforms.dispatch import Counts, Dispatch, Outlets
from shiftstream.transforms.ingest import Arrival, DeadLetter
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import Changed
from shiftstream.transforms.outputs import CONTENT_ACTIONS, DEAD_LETTERS, DECISIONS, EVENTS, MARKED, PRIVACY
from shiftstream.transforms.pseudonyms import Pseudonymiser
from shiftstream.transforms.watermarks import END_OF_TIME, NO_WATERMARK

from .ingest import ingest_for, privacy_decoder
from .writer import DecisionWriter


class Outputs:
    """Where the job's side outputs go; each is a callable taking one record (None: counted only)."""

    def __init__(self, dead_letter: Callable | None = None, late: Callable | None = None,
                 shift: Callable | None = None, session: Callable | None = None, action: Callable | None = None,
                 outcome: Callable | None = None, content_action: Callable | None = None):
        self.dead_letter = dead_letter
        self.late = late
        self.shift = shift
        self.session = session
        self.action = action
        self.outcome = outcome
        self.content_action = content_action  # a threshold rule's action fired or cleared (thresholds.Action)


class ReferenceJob:
    """Runs the core over records or wire-format messages, writing decisions to a sink in micro-batches."""

    def __init__(self, cfg: Config, sink, pseudonymise: Pseudonymiser, outputs: Outputs | None = None,
                 scorer=None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.core = Core(cfg)
        self.writer = DecisionWriter(cfg, sink, scorer, clock)
        self.sink = sink
        self.pseudonymise = pseudonymise
        self.outputs = outputs = outputs or Outputs()
        self.clock = clock
        self.monotonic = monotonic
        self.ingest = ingest_for(cfg, pseudonymise, "events", clock, monotonic)
        self.watermarks = self.ingest.watermarks
        self._privacy_decode = None
        self.states: dict = {}
        self.timers: list[tuple[int, str]] = []
        self.dirty: dict = {}          # user key -> the state its due decision renders from
        self.marks: dict = {}          # user key -> its state, whose written decision became more settled
        self.erased: dict[str, None] = {}
        self.stats = Counts()
        content = cfg.content
        # the policies' statistics: one learner for the job, sealed as the watermark passes epoch starts
        self.learner = Learner(content, content.epoch) if content.slots else None
        self.chooser = self.writer.renderer.chooser
        self.dispatch = Dispatch(Outlets(decision=self._due, late=outputs.late, session=outputs.session,
                                         shift=outputs.shift, erased=self._erased, settled=self._settled,
                                         action=outputs.action, outcome=self._outcome), self.stats)
        self.profiles = 0  # profiles begun: a count, not a set of keys, so memory stays with the live states
        self._frozen: dict[str, bytes] = {}  # user key -> its state as of the last snapshot (pickled to_dict)
        self._touched: set[str] = set()      # users whose state may have changed since then
        self.applied_through = NO_WATERMARK  # every accepted event at or before this time has been applied
        self.batch_size = cfg.batching.micro_batch_size
        self.flush_interval_s = cfg.batching.flush_interval / 1000
        self._last_flush = monotonic()
        self.on_flush: Callable[[], None] | None = None
        self.metrics = None                              # its JobMetrics, when attached
        self.on_outcome: Callable | None = None          # each Outcome, as the learner gets it (jobs/metrics.py)
        self.observers: list[Callable[[bool], None]] = []  # ticked when caught up or idle (and at the end: True)

    # -- inputs ------------------------------------------------------------------------------------------------

    def on_message(self, data: bytes, partition: int = 0, offset: int | None = None) -> int | None:
        """One Kafka-style message value (Confluent wire format); bad bytes become a dead letter.
        Returns the event time, or None for a dead letter."""
        return self._arrive(self.ingest.message(data, partition, offset))

    def on_record(self, rec: dict, partition: int = 0, offset: int | None = None) -> int | None:
        """One decoded Interaction record; returns its event time, or None if it became a dead letter."""
        return self._arrive(self.ingest.record(rec, partition, offset))

    def _arrive(self, a) -> int | None:
        if type(a) is not Arrival:
            self._dead(a.record)
            return None
        self.stats.inc(EVENTS)
        key, ev, wm = a.key, a.event, a.watermark  # (late against its partition's own watermark: a.own)
        before = self.states.get(key)
        had_profile = before is not None and before.has_profile()  # (accept updates the state in place)
        st, outs = self.core.accept(before, key, ev, a.own)
        self._touched.add(key)
        if type(outs[0]) is Changed:  # applied, provisional until the watermark passes it
            self.states[key] = st
            if not had_profile:
                self.profiles += 1  # a profile begins (a new user, or one back after an erasure or expiry)
            # a timer only when this event is the user's earliest provisional one: the heap already holds an entry
            # at or before the user's next timer otherwise (pushed when that one arrived, or after an advance)
            if st.pending[st.settled] is ev:
                heapq.heappush(self.timers, (ev.ts, key))
        elif st.is_empty():  # nothing to keep for a user whose event was refused: no trace either
            self.states.pop(key, None)
            self.pseudonymise.forget(a.user_id)
        else:
            self.states[key] = st
        self.dispatch(outs, st)
        if wm > self.applied_through:
            self.fire(wm)
        if self.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()
        return ev.ts

    def on_privacy(self, rec: dict) -> None:
        """A PrivacyRequest record: consent change, erasure or personalization level, applied at once."""
        self.stats.inc(PRIVACY)
        key = self.pseudonymise(rec["user_id"])
        self.pseudonymise.forget(rec["user_id"])
        st, outs = self.core.privacy(self.states.get(key), key, rec["kind"], rec["ts"], rec.get("level"))
        self.states[key] = st
        self._touched.add(key)
        nt = self.core.next_timer(st)
        if nt is not None:
            heapq.heappush(self.timers, (nt, key))
        self.dispatch(outs, st)

    def on_privacy_message(self, data: bytes, partition: int = 0, offset: int | None = None) -> None:
        if self._privacy_decode is None:
            self._privacy_decode = privacy_decoder(self.cfg)
        rec = self.ingest.privacy_message(data, self._privacy_decode, partition, offset)
        if type(rec) is DeadLetter:
            self._dead(rec.record)
            return
        self.on_privacy(rec)

    def caught_up(self) -> None:
        """Call when the source has nothing more queued: what is due is written now, so a decision reflects its
        event within milliseconds of the arrival; under load, batches fill and flush as usual."""
        if self.dirty or self.erased or self.marks:
            self.flush()
        for tick in self.observers:
            tick(False)

    def idle(self, now: float | None = None) -> None:
        """Call when input is quiet: idle partitions release the watermark, and a due batch is flushed."""
        self.fire(self.watermarks.idle_check(now) if now is not None else self.ingest.idle())
        if self.dirty or self.erased or self.marks:
            self.flush()
        for tick in self.observers:
            tick(False)

    # -- time --------------------------------------------------------------------------------------------------

    def fire(self, wm: int) -> None:
        """Advance every user whose next timer is at or before the watermark."""
        timers, states, core, touched = self.timers, self.states, self.core, self._touched
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
            before = st
            st, outs = core.advance(st, key, wm)
            touched.add(key)
            if st is None:
                del states[key]
            else:
                states[key] = st
                nt = core.next_timer(st)
                if nt is not None and nt > wm:  # after advance nothing is due at or before wm
                    heapq.heappush(timers, (nt, key))
            if outs:
                self.dispatch(outs, before)  # a due decision renders from it, even if the state was dropped
        sealed_now = self.learner is not None and self.learner.seal(wm) is not None
        if sealed_now and self.learner.thresholds is not None:
            for a in self.learner.take_actions():
                self.stats.inc(CONTENT_ACTIONS)
                if self.outputs.content_action:
                    self.outputs.content_action(a)
        if sealed_now and self.chooser.stale:
            # decisions chosen from an older snapshot than they wanted: rendered again, now exactly
            sealed = self.learner.sealed
            stale = self.chooser.stale
            for key in [k for k, v in stale.items() if v <= sealed]:
                del stale[key]
                st = states.get(key)
                if st is not None and key not in self.dirty:
                    self.dirty[key] = st

    def finish(self) -> None:
        """End of input: the watermark goes to the end of time, every session closes, everything is written."""
        self.fire(END_OF_TIME)
        self.flush()
        for tick in self.observers:
            tick(True)
        self.sink.flush()

    # -- outputs -----------------------------------------------------------------------------------------------

    def _due(self, key: str, st) -> None:
        self.dirty[key] = st
        if len(self.dirty) >= self.batch_size:
            self.flush()

    def _outcome(self, o) -> None:
        self.learner.add(o)
        if self.on_outcome is not None:
            self.on_outcome(o)
        if self.outputs.outcome:
            self.outputs.outcome(o)

    def _settled(self, key: str, st) -> None:
        self.marks[key] = st

    def _erased(self, key: str) -> None:
        self.dirty.pop(key, None)
        self.marks.pop(key, None)
        self.erased[key] = None

    def _dead(self, record: dict) -> None:
        self.stats.reason(DEAD_LETTERS, record["reason"])
        if self.outputs.dead_letter:
            self.outputs.dead_letter(record)

    def flush(self) -> None:
        """Render and write the decisions of every user changed since the last flush (deletes first)."""
        if self.erased:
            self.sink.delete(list(self.erased))
            self.erased.clear()
        if self.dirty:
            cfg = self.cfg
            dirty = self.dirty
            rows = [snapshot(st, k, cfg) for k, st in dirty.items()]
            self.stats.inc(DECISIONS, self.writer.write(rows, self.learner))
            if self.learner is not None:
                self.learner.prune(self.applied_through, self.chooser.delay)
        if self.marks:
            self.stats.inc(MARKED, self.writer.mark(self.marks, rendered=self.dirty))
            self.marks.clear()
        self.dirty.clear()
        self._last_flush = self.monotonic()
        if self.on_flush is not None:
            self.on_flush()

    # -- snapshots ---------------------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """The job's state as plain data, taken right after a `flush` (nothing rendered is waiting): user states,
        timers, the source watermarks, counters. No raw id is in it (states are keyed by pseudonym).

        Incremental: each user's state is kept serialized from the last snapshot, and only the users touched since
        are serialized again, so a checkpoint costs the active users, not every live one."""
        if self.dirty or self.erased or self.marks:
            raise RuntimeError("snapshot() needs a flush() first: decisions are waiting to be written")
        frozen, states = self._frozen, self.states
        for k in self._touched:
            st = states.get(k)
            if st is None:
                frozen.pop(k, None)
            else:
                frozen[k] = pickle.dumps(st.to_dict(), protocol=pickle.HIGHEST_PROTOCOL)
        self._touched.clear()
        return {"states": frozen, "timers": self.timers, "watermarks": self.watermarks,
                "applied_through": self.applied_through, "stats": dict(self.stats), "profiles": self.profiles,
                "learner": self.learner.to_dict() if self.learner is not None else None,
                "stale": dict(self.chooser.stale) if self.chooser is not None else {}}

    def restore(self, snap: dict) -> None:
        """Continue from a `snapshot`: the same input after it then gives the same outputs as an unbroken run."""
        self._frozen = dict(snap["states"])
        restore = self.core.restore  # (the whole state, or one an older version wrote: migrated)
        self.states = {k: restore(pickle.loads(b), k) for k, b in self._frozen.items()}
        self._touched = set()
        self.timers = list(snap["timers"])
        heapq.heapify(self.timers)
        # the partitions' history under this run's settings; idleness was timed on the old process's clock
        self.watermarks.adopt(snap["watermarks"], self.monotonic())
        self.applied_through = snap["applied_through"]
        self.stats.clear()
        self.stats.update(snap["stats"])
        self.profiles = snap["profiles"]
        if self.learner is not None and snap.get("learner") is not None:
            self.learner.restore(snap["learner"])
            self.chooser.stale.update(snap.get("stale", {}))

    def summary(self) -> dict:
        s = self.stats
        # profiles begun: one erased or expired who comes back later gets (and counts) a new profile
        return {"events": s.get("events", 0), "profiles": self.profiles,
                **{k: s.get(k, 0) for k in ("sessions", "shifts", "late", "duplicates", "dead_letters", "blocked",
                                            "privacy_requests", "decisions_written")}}
