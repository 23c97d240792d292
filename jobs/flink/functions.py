"""The Flink functions of the job: each maps Flink's state, timers and outputs onto the core's contract.

    FrontCore  the deployed Kafka job, per user (KeyedProcessFunction over the Java front's rows, jobs/flink/front.py:
               pseudonym, event time and the partition's own watermark taken in Java): decodes the message here
               (`Ingest.event`; bad bytes -> the dead-letter side output) or the privacy request, then as RunCore
    RunCore    per user: `Core.accept / advance`, `Dispatch` for the outputs, decisions scored and written in
               micro-batches, published on the main output
    Decode     a file run: .frames messages -> the core's `Ingest` -> (user key, (event tuple, source watermark at
               arrival, own watermark)); dead letters to their side output; one ordered decoder, parallelism 1

Two PyFlink facts shape RunCore (measured here; see the README's PyFlink section):
- Thread mode runs every Python operator of a TaskManager in one interpreter, one pemja thread state per operator.
  Two Python operators chained on one task thread give that thread two thread states, and onnxruntime's import
  (pybind11, PyGILState) then deadlocks in the second one. RunCore, the only operator that loads models, is
  therefore never chained (`disable_chaining`): it is the only Python operator on its thread.
- No Python code runs when a checkpoint barrier passes (thread mode calls nothing; process mode finishes the bundle
  but tells the function nothing). So a user whose decision is buffered also has a processing-time timer in keyed
  state: the timer flushes the batch within `batching.flush_interval`, and after a restore the restored timers
  re-render and write every decision a completed checkpoint covered but Redis may not have received.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import uuid
from pathlib import Path

from pyflink.common import Types
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import (KeyedCoProcessFunction, KeyedProcessFunction, OutputTag, ProcessFunction,
                                RuntimeContext, TimeDomain)
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from shiftstream.jobs.collector import Freezer
from shiftstream.schemas import read_frames, wire_codec
from shiftstream.transforms.core import Core
from shiftstream.transforms.decisions import Mark, snapshot, settled_mark
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import CONTENT_ACTIONS, Outcome
from shiftstream.transforms.dispatch import Counts, Dispatch, Outlets
from shiftstream.transforms.events import Ev
from shiftstream.transforms.ingest import Arrival, DeadLetter, PrivacySchedule
from shiftstream.transforms.outputs import DEAD_LETTERS, DECISIONS, EVENTS, MARKED, PRIVACY, Changed
from shiftstream.schemas.errors import BadValue
from shiftstream.transforms.pseudonyms import Pseudonymiser
from shiftstream.transforms.state import UserState
from shiftstream.transforms import staterecord
from shiftstream.transforms.watermarks import END_OF_TIME, NO_WATERMARK

from ..ingest import ingest_for
from ..writer import DecisionWriter
from .front import NULL, unpack
from .metrics import FlinkCounters

MAX_WATERMARK = 2**63 - 1  # Flink's watermark at the end of input (or of a stop with drain)
DEAD_TAG = OutputTag("dead-letters", Types.PRIMITIVE_ARRAY(Types.BYTE()))
LATE_TAG = OutputTag("late-events", Types.PRIMITIVE_ARRAY(Types.BYTE()))
OUTCOME_TAG = OutputTag("outcomes", Types.PICKLED_BYTE_ARRAY())          # content slots: exposures' results
PRIVACY_MARK = "privacy"  # first field of a privacy request on the decoded stream (an event's is its time)
ACTION_TAG = OutputTag("content-actions", Types.PRIMITIVE_ARRAY(Types.BYTE()))  # threshold rules' changes


PROFILE_ENV = "SHIFTSTREAM_PROFILE_DIR"  # set: each core subtask writes a cProfile of its calls there at close


def _profiler():
    """A running cProfile when $SHIFTSTREAM_PROFILE_DIR is set (thread mode calls a subtask's functions on one
    thread, the one that opened it), else None."""
    if not os.environ.get(PROFILE_ENV):
        return None
    import cProfile

    p = cProfile.Profile()
    p.enable()
    return p


def _json(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def write_counts(counts: dict, counts_dir: str | None, name: str) -> None:
    """A function's counters at close: to a JSON file in counts_dir (file runs add them up), and to stderr.
    (The embedded RuntimeContext's subtask index calls a Java method Flink 2.x no longer has, so files are
    named by a random id.)"""
    if counts_dir:
        Path(counts_dir, f"counts-{name}-{uuid.uuid4().hex}.json").write_text(json.dumps(counts))
    print(f"shiftstream-flink-counts {name} " + json.dumps(counts), file=sys.stderr, flush=True)


class EventTime(TimestampAssigner):
    """The record's timestamp for Flink's watermark is the source watermark `Ingest` stamped at its arrival, not
    the event's own time: Flink's watermark then follows the core's rule (the bulk of each partition, see
    transforms/watermarks.py), so an event dated far ahead cannot fire every user's timers early."""

    def extract_timestamp(self, value, record_timestamp):
        wm = value[1][1]  # (key, (event tuple or privacy request, arrival watermark))
        return wm if wm > 0 else 0


class Decode(ProcessFunction):
    """A file run: a .frames index -> (user key, (event tuple, source watermark at arrival, own watermark)), keyed by
    the pseudonym; bad bytes -> the dead-letter output. Privacy requests (sorted by time) go in as event time reaches
    them, as the reference runner's file runs apply them (`PrivacySchedule`): before a message, those at or before
    the latest event time seen, as (user key, (("privacy", kind, ts, level), the watermark then)); the rest at the
    index past the last message. (The Kafka job decodes in FrontCore instead.)"""

    def __init__(self, cfg, key: bytes, frames: str, source: str, counts_dir: str | None = None,
                 privacy: list | None = None):
        self.cfg, self.key, self.frames, self.source, self.counts_dir = cfg, key, frames, source, counts_dir
        self.privacy = list(privacy or ())

    def open(self, ctx: RuntimeContext):
        self.messages = list(read_frames(self.frames))
        self.pseudonymise = Pseudonymiser(self.key)
        self.ingest = ingest_for(self.cfg, self.pseudonymise, self.source)
        self.counts = Counts()
        self.metrics = FlinkCounters(ctx.get_metrics_group(), self.counts)
        self.schedule = PrivacySchedule(self.privacy)

    def process_element(self, value, ctx):
        if self.schedule:
            last = value >= len(self.messages)  # the index past the last message: the rest
            for rec in self.schedule.rest() if last else self.schedule.due(self.ingest.watermarks.high()):
                raw = rec["user_id"]
                key = self.pseudonymise(raw)
                self.pseudonymise.forget(raw)
                yield key, ((PRIVACY_MARK, rec["kind"], rec["ts"], rec.get("level")),
                            self.ingest.watermarks.current)
        if value < len(self.messages):
            a = self.ingest.message(self.messages[value], 0, value)
            if type(a) is not Arrival:
                self.counts.reason(DEAD_LETTERS, a.reason)
                yield DEAD_TAG, _json(a.record)
                return
            yield a.key, (tuple(a.event), a.watermark, a.own)

    def close(self):
        if hasattr(self, "counts"):
            self.metrics.sync()
            write_counts(self.counts, self.counts_dir, "decode")


class RunCore(KeyedProcessFunction):
    """Per user, in keyed state: the UserState without its buffered events (written when the core advances)
    and the buffered events by id (an accepted event is put, an applied one removed: no rewrite of the
    buffer per event). Live states are cached between events.
    Event-time timers advance the core; processing-time timers flush buffered decisions (and rewrite them
    after a restore)."""

    def __init__(self, cfg, models_dir: str | None, publish: bool, counts_dir: str | None = None):
        self.cfg, self.models_dir, self.publish, self.counts_dir = cfg, models_dir, publish, counts_dir

    def open(self, ctx: RuntimeContext):
        # the settled form as a compact record (transforms/staterecord.py). Still a pickled type: PyFlink 2.3's
        # converter for a PRIMITIVE_ARRAY state fails on an empty state (it iterates the None); pickling bytes is
        # cheap, and a state written as a pickled dict before the record reads as it is
        self.state = ctx.get_state(ValueStateDescriptor("user_state", Types.PICKLED_BYTE_ARRAY()))
        self.pending = ctx.get_map_state(MapStateDescriptor("pending_events", Types.STRING(),
                                                            Types.PICKLED_BYTE_ARRAY()))
        self.core = Core(self.cfg)
        # with content slots the choice needs every user's outcomes: rows go on to `Decide`, which writes
        self.content = bool(self.cfg.content.slots)
        self.writer = None if self.content else DecisionWriter.for_config(self.cfg, self.models_dir)
        self.sink = self.writer.sink if self.writer is not None else None
        self.wire = wire_codec(self.cfg.kafka.schema_registry_url, "decision") \
            if self.publish and not self.content else None
        self.rows: dict = {}          # user key -> its live state, to be rendered in the next micro-batch
        self.armed: dict = {}         # user key -> the flush timer this instance registered for it
        self.timer_at: dict = {}      # user key -> the event-time timer this instance registered last
        self.cache: dict = {}         # user key -> live UserState (the keyed state holds the same)
        self.cache_cap = self.cfg.engine.state_cache_users
        self.interval = self.cfg.batching.flush_interval
        self.batch = self.cfg.batching.micro_batch_size
        self.counts = Counts()
        self.metrics = FlinkCounters(ctx.get_metrics_group(), self.counts)
        if self.writer is not None:
            self.writer.on_written = self.metrics.written
        self.marks: dict = {}         # user key -> its state, whose written decision became more settled
        self.erased: dict = {}        # user keys whose decision is to be deleted (an erasure, a revoke)
        self.dispatch = Dispatch(Outlets(decision=self._due, late=self._late, settled=self._settled,
                                         erased=self._erased, outcome=self._outcome if self.content else None),
                                 self.counts)
        self._out: list = []          # what the outlets produced during one dispatch, yielded after it
        self._ctx = None
        self.freezer = Freezer(self.cfg.engine.gc_freeze_interval)  # no collector pause over the cached states
        self.profile = _profiler()

    # -- state -------------------------------------------------------------------------------------------------

    def _load(self, key):
        st = self.cache.get(key)
        if st is not None:
            return st
        raw = self.state.value()
        d = staterecord.unpack(raw) if type(raw) is bytes else raw
        pending = [Ev(*e) for e in self.pending.values()]
        if d is None and not pending:
            return None
        # the settled form plus the pending events, replayed (the live state is cached, so this is rare)
        st = self.core.restore(d if d is not None else self.core.new_state().to_dict(pending=False), key, pending)
        self._cache(key, st)
        if type(self.rows.get(key)) is UserState:  # a row still to render follows the state reloaded
            self.rows[key] = st
        if key in self.marks:
            self.marks[key] = st
        return st

    def _cache(self, key, st):
        if self.cache_cap:
            cache = self.cache
            if key not in cache and len(cache) >= self.cache_cap:
                del cache[next(iter(cache))]
            cache[key] = st

    def _timer(self, key, st, ctx):
        nt = self.core.next_timer(st)
        if nt is not None and self.timer_at.get(key) != nt:
            ctx.timer_service().register_event_time_timer(nt)
            self.timer_at[key] = nt

    def _store(self, key, st, ctx, applied=()):
        """After the core advanced: the state without its buffer, and the applied events out of the buffer
        (None or empty: drop it all)."""
        if st is None or st.is_empty():
            self.state.clear()
            self.pending.clear()
            self.cache.pop(key, None)
            self.timer_at.pop(key, None)
            return
        self.state.update(staterecord.pack(st.to_dict(pending=False)))
        if st.pending:
            for event_id in applied:
                self.pending.remove(event_id)
        else:
            self.pending.clear()
        self._cache(key, st)
        self._timer(key, st, ctx)

    # -- outlets -----------------------------------------------------------------------------------------------

    def _due(self, key, st):
        self.rows[key] = st  # rendered at flush time: one decision per user per micro-batch
        self._arm(key)

    def _settled(self, key, st):
        self.marks[key] = st  # the decision written before is exact further: its settled fields, at flush time
        self._arm(key)

    def _arm(self, key):
        if self.content:  # nothing waits here: rows go on to Decide in the same call
            return
        if key not in self.armed:  # the timer is checkpointed with the state: see the module doc
            # a decision waits at most the flush interval (on a 10 ms grid, so timers coalesce)
            ts = self._ctx.timer_service()
            due = ts.current_processing_time() + self.interval
            due += -due % 10
            ts.register_processing_time_timer(due)
            self.armed[key] = due

    def _late(self, record):
        self._out.append((LATE_TAG, _json(record)))

    def _erased(self, key):
        """A privacy request purged the user: nothing of theirs is written, their decision is deleted first."""
        self.rows.pop(key, None)
        self.marks.pop(key, None)
        self.erased[key] = None
        self._arm(key)

    def _outcome(self, o):
        self._out.append((OUTCOME_TAG, tuple(o)))

    def _emit(self, st, outs, ctx):
        self._ctx = ctx
        self.dispatch(outs, st)
        if self._out:
            yield from self._out
            self._out = []
        if self.content:
            # rows go on at once, in the call that changed the state: every row then reaches Decide before the
            # watermark after it does, so Decide's watermark bounds what it can still be asked (see Decide)
            if self.rows or self.marks or self.erased:
                yield from self._pass_on()
        elif len(self.rows) >= self.batch:
            yield from self._flush()

    # -- Flink's calls -----------------------------------------------------------------------------------------

    def process_element(self, value, ctx):
        key, payload = value  # the key rides in the record: no call into Java for it
        ev = payload[0]
        if type(ev[0]) is str:  # (PRIVACY_MARK, kind, ts, level): an event tuple starts with its time
            yield from self._privacy(key, ev, payload[1], ctx)
            return
        yield from self._accept(key, Ev(*ev), payload[2], ctx)

    def _accept(self, key, ev: Ev, own, ctx):
        """An event in: late against `own`, its partition's own watermark at arrival (transforms/watermarks.py)."""
        self.counts.inc(EVENTS)
        before = self._load(key)
        st, outs = self.core.accept(before, key, ev, NO_WATERMARK if own is None else own)
        if type(outs[0]) is Changed:  # applied, provisional: keyed state keeps the settled form plus this event
            self.pending.put(ev.event_id, tuple(ev))
            if before is None:
                self._cache(key, st)
            self._timer(key, st, ctx)
        yield from self._emit(st, outs, ctx)

    def _privacy(self, key, request, arrival_wm, ctx):
        """A consent change, an erasure or a personalization level, applied on arrival (as the reference runner
        does): the state purged or changed, its buffered events dropped with it, the decision deleted or due.
        First the user's state goes to the source watermark at the request's arrival, as the reference runner's
        has by then (it fires every timer the watermark passes at each arrival; Flink's timers follow later): the
        facts settled before the request are released, not purged with it, on every engine alike."""
        _, kind, ts, level = request
        self.counts.inc(PRIVACY)
        before = self._load(key)
        if before is not None and arrival_wm is not None:
            due = self.core.next_timer(before)
            if due is not None and due <= arrival_wm:
                ids = before.pending_ids.copy()
                st, outs = self.core.advance(before, key, arrival_wm)
                self._store(key, st, ctx, ids - st.pending_ids if st is not None else ())
                yield from self._emit(before, outs, ctx)
                if st is not before and key in self.rows:  # expired: its last decision renders from it now
                    self.rows[key] = snapshot(before, key, self.cfg)
                before = st
        st, outs = self.core.privacy(before, key, kind, ts, level)
        if st is not before and key in self.rows:  # a purged state: a row to render is the old one's, gone
            self.rows.pop(key)
        self._store(key, st, ctx)
        yield from self._emit(st, outs, ctx)

    def on_timer(self, timestamp, ctx):
        key = ctx.get_current_key()
        # time_domain() costs a call into Java (about 40 us here): skip it when the timer is the event-time
        # one this instance registered for the key and no flush timer of the same time is registered
        ours = self.timer_at.get(key) == timestamp and self.armed.get(key) != timestamp
        if not ours and ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            if self.armed.get(key) == timestamp:
                del self.armed[key]
            elif key not in self.rows:  # a timer restored from a checkpoint: write what that state decides
                st = self._load(key)
                if st is not None and st.profile.events:
                    self.rows[key] = st
                    self.counts.inc("rewritten_after_restore")
            if self.rows or self.marks or self.erased:  # (the users of one batch share a due time: the first
                yield from self._flush()                # timer to fire writes them all, the rest find nothing)
            return
        if self.timer_at.get(key) == timestamp:
            del self.timer_at[key]
        st = self._load(key)
        if st is None:
            return
        wm = ctx.timer_service().current_watermark()
        final = wm >= MAX_WATERMARK  # the end of event time: a bounded input ended, or a stop with drain
        ids = st.pending_ids.copy()
        # to the watermark, not just this timer's time: every buffered event it has passed goes in one call
        before = st  # a due decision renders from it, even if the state is dropped (expired)
        st, outs = self.core.advance(st, key, END_OF_TIME if final else max(wm, timestamp))
        self._store(key, st, ctx, ids - st.pending_ids if st is not None else ())
        yield from self._emit(before, outs, ctx)
        if st is not before and key in self.rows:  # the profile expired: render its last decision now, from it
            self.rows[key] = snapshot(before, key, self.cfg)
        if final and (self.rows or self.marks):  # no processing-time timer fires after the end of input
            yield from self._flush()

    def _pass_on(self):
        """Content mode: the due rows and settled marks, as one record for Decide."""
        cfg = self.cfg
        rows = [snapshot(st, key, cfg) if type(st) is UserState else st for key, st in self.rows.items()]
        marks = {key: (m if type(m) is Mark else settled_mark(m)) for key, m in self.marks.items()
                 if key not in self.rows}
        erased = list(self.erased)
        self.rows, self.marks, self.erased = {}, {}, {}
        yield pickle.dumps((rows, marks, erased), protocol=pickle.HIGHEST_PROTOCOL)

    def _flush(self):
        if self.content:
            if self.rows or self.marks or self.erased:
                yield from self._pass_on()
            return
        if self.erased:  # deletes first: a decision due after the erasure (a later event) is written after them
            self.sink.delete(list(self.erased))
            self.erased = {}
        rendered = self.rows
        if self.rows:
            cfg = self.cfg
            rows = [snapshot(st, key, cfg) if type(st) is UserState else st for key, st in self.rows.items()]
            self.rows = {}
            decisions = self.writer.write_rendered(rows)
            self.counts.inc(DECISIONS, len(decisions))
            if self.wire is not None:
                encode = self.wire.encode
                for d in decisions:
                    yield encode(d)
        if self.marks:  # (the decisions just rendered carry their settled fields)
            self.counts.inc(MARKED, self.writer.mark(self.marks, rendered=rendered))
            self.marks = {}
        self.sink.flush()  # every reply read: what is flushed is in Redis
        self.metrics.sync()
        self.freezer.tick()

    def close(self):
        if not hasattr(self, "rows"):  # open() failed: let its error be the one reported
            return
        # Rows still buffered here had no final timer to publish them: they reach Redis, not the topic
        # (the outputs are closed by now). A drain or the end of input publishes through on_timer first.
        if self.sink is not None:
            for _ in self._flush():
                pass
            self.sink.close()
        self.freezer.close()
        self.metrics.sync()
        write_counts(self.counts, self.counts_dir, "core")
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(Path(os.environ[PROFILE_ENV], f"core-{uuid.uuid4().hex}.prof"))


class FrontCore(RunCore):
    """The deployed Kafka job's one keyed Python operator: the Java front's rows (jobs/flink/front.py: key = the
    user's pseudonym, the Avro ts, the partition's own watermark, the raw value) from both topics, in the order
    they arrive. An event is decoded and checked here (`Ingest.event`: bad bytes -> a dead letter with the reason)
    and accepted against the own watermark the front stamped; a privacy request (`Ingest.privacy_message`) applies
    at once, as RunCore's, from Flink's watermark now. The rest is RunCore's."""

    def __init__(self, cfg, key: bytes, models_dir: str | None, publish: bool, counts_dir: str | None = None,
                 source: str = "events"):
        super().__init__(cfg, models_dir, publish, counts_dir)
        self.key, self.source = key, source

    def open(self, ctx: RuntimeContext):
        super().open(ctx)
        self.ingest = ingest_for(self.cfg, Pseudonymiser(self.key), self.source)
        self.privacy_decode = None
        self.lateness = self.cfg.event_time.allowed_lateness

    def _dead(self, d: DeadLetter):
        self.counts.reason(DEAD_LETTERS, d.reason)
        yield DEAD_TAG, _json(d.record)

    def process_element(self, packed, ctx):
        key, source, partition, offset, ts, event_ts, own, payload = unpack(packed)  # (no call into Java)
        if source:  # Front.PRIVACY
            yield from self._request(key, payload, partition, offset, ctx)
            return
        ev = self.ingest.event(payload, partition, offset)
        if type(ev) is DeadLetter:
            yield from self._dead(ev)
            return
        if key[0] == "!":  # decoded here, not there: an envelope the front cannot read (a writer schema's order)
            yield from self._dead(self.ingest.dead(BadValue(_UNKEYED), payload, partition, offset))
            return
        if abs(ts - event_ts) > self.lateness:  # produced far from the event's time: a skewed clock, a replay
            self.counts.inc(RECORD_TS_DIFFERS)
        yield from self._accept(key, ev, None if own == NULL else own, ctx)

    def _request(self, key, raw: bytes, partition, offset, ctx):
        from ..ingest import privacy_decoder

        if self.privacy_decode is None:
            self.privacy_decode = privacy_decoder(self.cfg)
        rec = self.ingest.privacy_message(raw, self.privacy_decode, partition, offset)
        if type(rec) is DeadLetter:
            yield from self._dead(rec)
            return
        if key[0] == "!":
            yield from self._dead(self.ingest.dead(BadValue(_UNKEYED), raw, partition, offset, source="privacy"))
            return
        request = (PRIVACY_MARK, rec["kind"], rec["ts"], rec.get("level"))
        yield from self._privacy(key, request, ctx.timer_service().current_watermark(), ctx)


# counted: events whose Kafka record timestamp is more than the allowed lateness from their ts (event time is the
# Avro ts, read in Java; the record timestamp is the producer's clock)
RECORD_TS_DIFFERS = "record_ts_differs"
_UNKEYED = ("its envelope (id, user_id, type, ts: the first four fields) could not be read where the job keys it: "
            "every writer schema must start with them (transforms/envelope.py)")


class Decide(KeyedCoProcessFunction):
    """Content mode (slots configured): renders, chooses and writes every decision, with a replica of the learner.

    Input 1: RunCore's rows and settled marks (one record per RunCore call that made any). Input 2: every
    outcome, from every RunCore subtask. One instance (keyed by a constant), so the learner is one. Why it is
    exact: a RunCore subtask emits an outcome closing at `at` from the timer the watermark `at` fired, before it
    forwards that watermark; so when this operator's watermark (the least of its inputs') passes `v * epoch - 1`,
    every outcome before version v is here, and the replica seals v as the reference runner's learner does. A row
    comes from the call that changed its state, so its `decided_at` is after the watermark RunCore had forwarded:
    once this operator's watermark passed a time, no row as of an earlier time can still come (the chain is pruned
    below that).

    Rows are coalesced per user into micro-batches (`batching`: a full batch or a processing-time timer after
    `flush_interval` writes them; the end of input writes the rest). A row whose version is not sealed when it is
    written is written from the latest sealed snapshot, kept, and written again from its own when an event-time
    timer at that version's start fires. In keyed state, so a restore loses nothing: the replica (as of its last
    seal) and the outcomes since, the rows and marks buffered, and the rows waiting for a version."""

    def __init__(self, cfg, models_dir: str | None, publish: bool, counts_dir: str | None = None):
        self.cfg, self.models_dir, self.publish, self.counts_dir = cfg, models_dir, publish, counts_dir

    def open(self, ctx: RuntimeContext):
        def mapping(name):
            return ctx.get_map_state(MapStateDescriptor(name, Types.STRING(), Types.PICKLED_BYTE_ARRAY()))

        self.learned = ctx.get_state(ValueStateDescriptor("learner", Types.PICKLED_BYTE_ARRAY()))
        self.unfolded = mapping("outcomes_since")
        self.waiting_state = mapping("waiting_rows")
        self.buffered_state = mapping("buffered_rows")
        self.marks_state = mapping("buffered_marks")
        c = self.cfg.content
        self.learner = Learner(c, c.epoch)
        self.epoch = c.epoch
        self.writer = DecisionWriter.for_config(self.cfg, self.models_dir)
        self.chooser = self.writer.renderer.chooser
        self.delay = self.chooser.delay
        self.sink = self.writer.sink
        self.wire = wire_codec(self.cfg.kafka.schema_registry_url, "decision") if self.publish else None
        self.waiting: dict = {}       # user key -> its latest row, written from an older snapshot than it wants
        self.buffer: dict = {}        # user key -> its latest row, to be written in the next micro-batch
        self.marks: dict = {}         # user key -> the settled fields its written decision now has
        self.timers: set = set()
        self.armed = None             # the flush timer registered (processing time)
        self.interval = self.cfg.batching.flush_interval
        self.batch = self.cfg.batching.micro_batch_size
        self.counts = Counts()
        self.metrics = FlinkCounters(ctx.get_metrics_group(), self.counts)
        self.writer.on_written = self.metrics.written
        self.restored = False

    def _restore(self, ctx):
        """Once, in the first call (keyed state is readable only there): what the last checkpoint held."""
        self.restored = True
        d = self.learned.value()
        if d is not None:
            self.learner.restore(d)
        for raw in self.unfolded.values():
            self.learner.add(Outcome(*raw))
        self.waiting.update(self.waiting_state.items())
        self.buffer.update(self.buffered_state.items())
        self.marks.update(self.marks_state.items())
        # the end of input (or a drain) writes what is buffered: no processing-time timer fires after it
        ctx.timer_service().register_event_time_timer(MAX_WATERMARK - 1)

    def _seal(self, ctx):
        wm = ctx.timer_service().current_watermark()
        final = wm >= MAX_WATERMARK
        if self.learner.seal(END_OF_TIME if final else wm) is None:
            return
        self.learned.update(self.learner.to_dict())
        self.unfolded.clear()
        for a in self.learner.take_actions():
            self.counts.inc(CONTENT_ACTIONS)
            yield ACTION_TAG, _json(a.to_dict())
        # what any row can still ask for: no row as of before wm can still come, and those here are as of when
        oldest = min((r.decided_at for d in (self.buffer, self.waiting) for r in d.values()), default=wm)
        self.learner.prune(min(wm, oldest), self.delay)

    def _write(self, rows):
        chooser = self.chooser
        decisions = self.writer.write_rendered(rows, self.learner)
        self.counts.inc(DECISIONS, len(decisions))
        for r in rows:
            if r.key in chooser.stale:
                self.waiting[r.key] = r
                self.waiting_state.put(r.key, r)
            elif r.key in self.waiting:
                del self.waiting[r.key]
                self.waiting_state.remove(r.key)
        if self.wire is not None:
            encode = self.wire.encode
            for d in decisions:
                yield encode(d)

    def _flush(self, ctx):
        yield from self._seal(ctx)  # (once per micro-batch: a row written from an older snapshot is written again)
        rows = list(self.buffer.values())
        if rows:
            self.buffer = {}
            self.buffered_state.clear()
            yield from self._write(rows)
        if self.marks:  # (the decisions just written carry their settled fields)
            self.counts.inc(MARKED, self.writer.mark(self.marks, rendered={r.key for r in rows}))
            self.marks = {}
            self.marks_state.clear()
        self.sink.flush()
        self.metrics.sync()
        self._await(ctx)

    def _await(self, ctx):
        """An event-time timer at the start of every version a waiting row wants."""
        for key, want in self.chooser.stale.items():
            at = want * self.epoch - 1
            if at not in self.timers:
                ctx.timer_service().register_event_time_timer(at)
                self.timers.add(at)

    def process_element1(self, value, ctx):
        if not self.restored:
            self._restore(ctx)
        rows, marks, erased = pickle.loads(value)
        if erased:  # purged users: nothing buffered or waiting of theirs is written, their decision goes now
            for key in erased:
                for d, st in ((self.buffer, self.buffered_state), (self.waiting, self.waiting_state),
                              (self.marks, self.marks_state)):
                    if d.pop(key, None) is not None:
                        st.remove(key)
                self.chooser.stale.pop(key, None)
            self.sink.delete(erased)
        for r in rows:
            self.buffer[r.key] = r
            self.buffered_state.put(r.key, r)
        for key, m in marks.items():
            row = self.buffer.get(key)
            if row is not None:  # not written yet: it goes out with these settled fields
                row = row._replace(settled_through=m.settled_through, provisional=m.provisional)
                self.buffer[key] = row
                self.buffered_state.put(key, row)
                continue
            w = self.waiting.get(key)
            if w is not None:  # written again later: with these settled fields
                w = w._replace(settled_through=m.settled_through, provisional=m.provisional)
                self.waiting[key] = w
                self.waiting_state.put(key, w)
            self.marks[key] = m
            self.marks_state.put(key, m)
        if len(self.buffer) >= self.batch:
            yield from self._flush(ctx)
        elif self.armed is None and (self.buffer or self.marks):
            ts = ctx.timer_service()
            due = ts.current_processing_time() + self.interval
            ts.register_processing_time_timer(due)
            self.armed = due

    def process_element2(self, value, ctx):
        if not self.restored:
            self._restore(ctx)
        o = Outcome(*value)
        self.learner.add(o)
        self.unfolded.put(f"{o.at}:{o.event_id}:{o.slot}", tuple(o))

    def on_timer(self, timestamp, ctx):
        if not self.restored:
            self._restore(ctx)
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            if timestamp == self.armed:
                self.armed = None
            yield from self._flush(ctx)  # (a timer restored from a checkpoint: what the checkpoint buffered)
            return
        self.timers.discard(timestamp)
        yield from self._flush(ctx)
        stale, sealed = self.chooser.stale, self.learner.sealed
        due = [self.waiting[k] for k, v in list(stale.items()) if v <= sealed and k in self.waiting]
        if due:
            yield from self._write(due)
            self.sink.flush()
        self._await(ctx)

    def close(self):
        if hasattr(self, "sink"):
            self.sink.close()
            self.metrics.sync()
            write_counts(self.counts, self.counts_dir, "decide")
