"""The core as an Apache Beam pipeline (DirectRunner / FnApiRunner): for local testing and development.

    read files -> decode (dead letters out) -> pseudonymise, stamp event time and the source watermark at arrival
    -> key by user -> stateful DoFn with event-time timers running transforms.core (late events out)
    -> micro-batches per bundle: score, render, write to Redis (flushed in finish_bundle)

No business logic here: the DoFns map Beam's state, timers and bundles onto the core's functions.

Lateness: the file reader stamps each event with the watermark of its source at arrival (max event time read so far
minus the allowed lateness), exactly as the reference runner computes it, so both runners route the same events to
the late output whatever order Beam then processes them in. Elements without a stamp (a TestStream) are judged
against what the user's own timers have already applied.
"""
from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from shiftstream.transforms.config import Config
from shiftstream.transforms.core import Core
from shiftstream.transforms.decisions import Mark, Row, settled_mark, snapshot
from shiftstream.transforms.dispatch import Counts, Dispatch, Outlets
from shiftstream.transforms.events import Ev
from shiftstream.transforms.ingest import Arrival
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import CONTENT_ACTIONS, DEAD_LETTERS, DECISIONS, EVENTS, MARKED, Outcome
from shiftstream.transforms.pseudonyms import Pseudonymiser
from shiftstream.transforms.state import UserState
from shiftstream.transforms.watermarks import END_OF_TIME, NO_WATERMARK

from .ingest import ingest_for

DEAD, LATE, OUTCOMES = "dead_letters", "late", "outcomes"
RUNNERS = ("FnApiRunner", "BundleBasedDirectRunner")  # the first is the default: it reports timer metrics


def _ts(ms: int) -> Timestamp:
    return Timestamp(micros=ms * 1000)


class BeamCounts(Counts):
    """The contract's counters, mirrored into Beam metrics (namespace `shiftstream`)."""

    def inc(self, name: str, n: int = 1) -> None:
        c = self.get(name)
        if c is None:
            c = self[name] = Metrics.counter("shiftstream", name)
        c.inc(n)


class ReadEvents(beam.DoFn):
    """One element per file: its events in file order through the core's `Ingest` (pseudonymised, stamped with
    the source watermark at arrival); bad records to dead letters."""

    def __init__(self, cfg: Config, key: bytes):
        self.cfg, self.key = cfg, key

    def setup(self):
        self.pseudonymise = Pseudonymiser(self.key)
        self.counts = BeamCounts()

    def process(self, path: str):
        from shiftstream.schemas import read_container, read_frames

        ingest = ingest_for(self.cfg, self.pseudonymise)  # one source: one watermark per file
        p = Path(path)
        if p.suffix == ".frames":
            arrivals = (ingest.message(m, 0, i) for i, m in enumerate(read_frames(p)))
        else:
            arrivals = (ingest.record(r, 0, i) for i, r in enumerate(read_container(p, "interaction")))
        for a in arrivals:
            if type(a) is not Arrival:
                self.counts.reason(DEAD_LETTERS, a.reason)
                yield beam.pvalue.TaggedOutput(DEAD, a.record)
                continue
            yield TimestampedValue((a.key, (tuple(a.event), a.own)), a.event.ts / 1000)  # (one partition: own = source)


class RunCore(beam.DoFn):
    """Per user: keyed state holds the core's UserState, an event-time timer calls `advance`."""

    STATE = ReadModifyWriteStateSpec("user_state", PickleCoder())
    TIMER = TimerSpec("advance", TimeDomain.WATERMARK)

    def __init__(self, cfg: Config, bounded: bool = False):
        self.cfg = cfg
        self.bounded = bounded

    def setup(self):
        self.core = Core(self.cfg)
        self.out: list = []
        self.dispatch = Dispatch(Outlets(decision=self._due, late=self._late, settled=self._settled,
                                         outcome=self._outcome), BeamCounts())

    def _due(self, key: str, st) -> None:
        self.out.append((key, tuple(snapshot(st, key, self.cfg))))

    def _settled(self, key: str, st) -> None:
        self.out.append((key, settled_mark(st)))  # a `Mark`, not a row: the written decision's settled fields

    def _late(self, record: dict) -> None:
        self.out.append(beam.pvalue.TaggedOutput(LATE, record))

    def _outcome(self, o) -> None:
        self.out.append(beam.pvalue.TaggedOutput(OUTCOMES, tuple(o)))

    def _load(self, state) -> UserState | None:
        d = state.read()
        return UserState.from_dict(d) if d is not None else None

    def _store(self, st: UserState | None, state, timer) -> None:
        if st is None or st.is_empty():
            state.clear()
            return
        state.write(st.to_dict())
        nt = self.core.next_timer(st)
        if nt is not None:
            timer.set(_ts(nt))

    def _emit(self, st: UserState | None, outs: list):
        self.dispatch(outs, st)
        out, self.out = self.out, []
        return out

    def process(self, element, state=beam.DoFn.StateParam(STATE), timer=beam.DoFn.TimerParam(TIMER)):
        key, (ev, arrival_wm) = element
        self.dispatch.counts.inc(EVENTS)
        st, outs = self.core.accept(self._load(state), key, Ev(*ev),
                                    NO_WATERMARK if arrival_wm is None else arrival_wm)
        self._store(st, state, timer)
        yield from self._emit(st, outs)

    @on_timer(TIMER)
    def advance(self, key=beam.DoFn.KeyParam, ts=beam.DoFn.TimestampParam, state=beam.DoFn.StateParam(STATE),
                timer=beam.DoFn.TimerParam(TIMER)):
        st = self._load(state)
        if st is None:
            return
        # bounded input: the watermark only moves, to +inf, once every element is in, so go to the end at once
        before = st  # a due decision renders from it, even if the state is dropped (expired)
        st, outs = self.core.advance(st, key, END_OF_TIME if self.bounded else int(ts.micros // 1000))
        self._store(st, state, timer)
        yield from self._emit(before, outs)


class WriteDecisions(beam.DoFn):
    """Micro-batches per bundle: coalesce by user, score with the live models, render, write to Redis."""

    def __init__(self, cfg: Config, models_dir: str | None):
        self.cfg, self.models_dir = cfg, models_dir

    def setup(self):
        from .writer import DecisionWriter

        self.writer = DecisionWriter.for_config(self.cfg, self.models_dir)
        self.sink = self.writer.sink
        self.counts = BeamCounts()

    def start_bundle(self):
        self.rows = {}
        self.marks = {}

    def process(self, element, learner=None):
        # (the learner side input: built once, from every outcome, in the global window of a bounded run)
        self.learner = learner
        key, row = element
        if type(row) is Mark:  # a settled marker: for the row still to render, or for the decision written before
            pending = self.rows.get(key)
            if pending is not None:
                self.rows[key] = pending._replace(settled_through=row.settled_through, provisional=row.provisional)
            else:
                self.marks[key] = row
            return
        self.rows[key] = Row(*row)
        self.marks.pop(key, None)
        if len(self.rows) >= self.cfg.batching.micro_batch_size:
            self._flush()

    def _flush(self):
        if self.rows:
            rows = list(self.rows.values())
            self.rows = {}
            self.counts.inc(DECISIONS, self.writer.write(rows, self.learner))
        if self.marks:
            self.counts.inc(MARKED, self.writer.mark(self.marks))
            self.marks = {}

    def finish_bundle(self):
        self._flush()
        self.sink.flush()

    def teardown(self):
        self.sink.close()


def _content_actions(learner: Learner) -> list[dict]:
    """The threshold rules' actions of a bounded run, judged from its whole outcome set (counted as on every engine)."""
    out = [a.to_dict() for a in learner.actions]
    beam.metrics.Metrics.counter("shiftstream", CONTENT_ACTIONS).inc(len(out))
    return out


def learner_from(cfg: Config, outcomes) -> Learner:
    """The learner of a bounded run: every outcome folded (the chain is a function of the outcome set, so it is
    the one the reference runner built incrementally), every version sealed."""
    c = cfg.content
    learner = Learner(c, c.epoch)
    for o in outcomes:
        learner.add(Outcome(*o))
    learner.fold_all()
    learner.sealed = END_OF_TIME
    return learner


class ShiftstreamCore(beam.PTransform):
    """(user key, (event tuple, arrival watermark or None)) timestamped by event time -> decisions in Redis.

    Returns {"late": PCollection of late-event records}."""

    def __init__(self, cfg: Config, models_dir: str | None = None, bounded: bool = False):
        super().__init__()
        self.cfg, self.models_dir, self.bounded = cfg, models_dir, bounded

    def expand(self, keyed):
        outs = keyed | "RunCore" >> beam.ParDo(RunCore(self.cfg, self.bounded)).with_outputs(LATE, OUTCOMES,
                                                                                             main="rows")
        write = WriteDecisions(self.cfg, self.models_dir)
        if self.cfg.content.slots:
            # the policies' snapshots: built from every outcome, a side input complete before any decision
            # renders (bounded input, the global window), so no processing-time matching of side inputs
            if not self.bounded:
                raise ValueError("content slots on Beam need a bounded input (the snapshots are a side input "
                                 "built from every outcome); run an unbounded stream on the reference or Flink job")
            cfg = self.cfg
            learned = (outs[OUTCOMES] | "Outcomes" >> beam.combiners.ToList()
                       | "Learn" >> beam.Map(lambda outcomes: learner_from(cfg, outcomes)))  # folded once
            _ = outs.rows | "WriteDecisions" >> beam.ParDo(write, learner=beam.pvalue.AsSingleton(learned))
            # the threshold rules' actions: judged from the same outcome set, so the same records as the reference
            actions = learned | "ContentActions" >> beam.FlatMap(_content_actions)
        else:
            _ = outs.rows | "WriteDecisions" >> beam.ParDo(write)
            actions = None
        return {"late": outs[LATE], "rows": outs.rows, "content_actions": actions,
                "outcomes": outs[OUTCOMES] if self.cfg.content.slots else None}


def build(pipeline, cfg: Config, inputs: list[str], key: bytes, out_dir: str, models_dir: str | None = None):
    """The file pipeline; dead letters and late events go to JSON-lines files under out_dir."""
    read = (pipeline | "Files" >> beam.Create(inputs)
            | "ReadEvents" >> beam.ParDo(ReadEvents(cfg, key)).with_outputs(DEAD, main="events"))
    core = read.events | "Core" >> ShiftstreamCore(cfg, models_dir, bounded=True)
    sides = [("dead-letters", read[DEAD]), ("late-events", core["late"])]
    if cfg.content.slots:  # what `shiftstream experiments report` reads
        sides.append(("outcomes", core["outcomes"] | "OutcomeRecords" >> beam.Map(lambda o: Outcome(*o)._asdict())))
    if cfg.content.thresholds:
        sides.append(("content-actions", core["content_actions"]))
    for name, pcoll in sides:
        _ = (pcoll | f"{name}Json" >> beam.Map(lambda r: json.dumps(r, separators=(",", ":")))
             | f"{name}Write" >> beam.io.WriteToText(str(Path(out_dir) / name), file_name_suffix=".jsonl",
                                                    shard_name_template=""))
    return read, core


def run(cfg: Config, inputs: list[str], key: bytes, out_dir: str, models_dir: str | None = None,
        runner: str = "FnApiRunner", beam_args: list[str] | None = None) -> dict:
    """Run the file pipeline to completion; returns the counters."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner not in RUNNERS:
        raise ValueError(f"Beam runner {runner!r}: use one of {', '.join(RUNNERS)} (named, so Beam never picks Prism)")
    if runner == "FnApiRunner":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner as R
    else:
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner as R
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    p = beam.Pipeline(runner=R(), options=PipelineOptions(beam_args or []))
    build(p, cfg, inputs, key, out_dir, models_dir)
    result = p.run()
    result.wait_until_finish()
    counts = {}
    for c in result.metrics().query()["counters"]:
        if c.key.metric.namespace == "shiftstream":
            counts[c.key.metric.name] = counts.get(c.key.metric.name, 0) + c.committed
    return counts
