"""The core as a PyFlink 2.3 DataStream job on a local mini-cluster (bounded file runs for now).

    wire messages -> Decode (ordered, parallelism 1: dead letters to a side output; pseudonymise; stamp the
    source watermark at arrival, as the reference runner computes it) -> event-time timestamps and bounded
    out-of-orderness watermarks -> key by user -> RunCore (KeyedProcessFunction: UserState in keyed state,
    event-time timers call Core.advance, late events to a side output; decision rows scored and written to
    Redis in micro-batches inside the operator, flushed on size, on the flush interval and at close)

No business logic here: the functions map Flink state, timers and outputs onto transforms.core. Model scoring
lives in the keyed operator itself. In thread mode, importing onnxruntime in that operator hangs (it is the second
Python operator of the job, after the decoder; the keyBy between them stops PyFlink fusing them, and importing
onnxruntime in the first one as well did not help), so a run with models uses process mode: `mode_for`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

END_OF_TIME = 2**62


def _functions():
    """The Flink functions, defined on first use so importing this module needs no PyFlink."""
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext
    from pyflink.common import Types
    from pyflink.datastream.state import ValueStateDescriptor

    dead_tag = OutputTag("dead-letters", Types.STRING())
    late_tag = OutputTag("late-events", Types.STRING())

    class EventTime(TimestampAssigner):
        def extract_timestamp(self, value, record_timestamp):
            return value[1][0][0]  # (key, (event tuple, arrival watermark)): the event time

    class Decode(ProcessFunction):
        """Message index -> (user key, (event tuple, source watermark at arrival)); bad bytes -> dead-letter side
        output. The messages are read from the frames file in open(); a number-sequence source drives them in order."""

        def __init__(self, cfg, key: bytes, path: str):
            self.cfg, self.key, self.path = cfg, key, path

        def open(self, ctx: RuntimeContext):
            from schemas import MemoryRegistry, WireCodec, read_frames

            self.messages = list(read_frames(self.path))
            from transforms.pseudonyms import Pseudonymiser
            from transforms.watermarks import Watermarks

            self.wire = WireCodec(MemoryRegistry(), "interaction")
            self.pseudonymise = Pseudonymiser(self.key)
            self.watermarks = Watermarks(self.cfg.event_time.allowed_lateness, self.cfg.event_time.watermark_idleness)

        def process_element(self, value, ctx):
            from schemas.errors import DecodeError
            from transforms.deadletters import dead_letter
            from transforms.events import check_record, from_record

            offset = value
            raw = self.messages[offset]
            now_ms = int(time.time() * 1000)
            try:
                rec = self.wire.decode(raw)
                problem = check_record(rec, now_ms + self.cfg.event_time.max_future_skew)
            except DecodeError as exc:
                rec, problem = None, exc
            if problem is not None:
                yield dead_tag, json.dumps(dead_letter(problem, raw, self.pseudonymise, "events", 0, offset, now_ms))
                return
            ev = from_record(rec)
            yield self.pseudonymise(rec["user_id"]), (tuple(ev), self.watermarks.observe(ev.ts))

    class RunCore(KeyedProcessFunction):
        """Per user: UserState (as its dict form) in keyed state; an event-time timer calls Core.advance."""

        def __init__(self, cfg, models_dir: str | None, bounded: bool):
            self.cfg, self.models_dir, self.bounded = cfg, models_dir, bounded

        def open(self, ctx: RuntimeContext):
            from jobs.writer import DecisionWriter
            from transforms.core import Core

            self.state = ctx.get_state(ValueStateDescriptor("user_state", Types.PICKLED_BYTE_ARRAY()))
            self.core = Core(self.cfg)
            self.writer = DecisionWriter.for_config(self.cfg, self.models_dir)
            self.sink = self.writer.sink
            self.rows: dict = {}
            self.last_flush = time.monotonic()
            self.counts: dict[str, int] = {}

        def _load(self):
            from transforms.state import UserState

            d = self.state.value()
            return UserState.from_dict(d) if d is not None else None

        def _store(self, st, ctx):
            if st is None or st.is_empty():
                self.state.clear()
                return
            self.state.update(st.to_dict())
            nt = self.core.next_timer(st)
            if nt is not None:
                ctx.timer_service().register_event_time_timer(nt)

        def _emit(self, key, st, outs):
            from transforms.decisions import snapshot
            from transforms.outputs import Changed, Late

            for o in outs:
                name = type(o).__name__
                self.counts[name] = self.counts.get(name, 0) + 1
                if type(o) is Changed:
                    self.rows[key] = snapshot(st, key, self.cfg)
                elif type(o) is Late:
                    yield late_tag, json.dumps({"key": o.key, "event": o.event._asdict(), "watermark": o.watermark})
            if len(self.rows) >= self.cfg.batching.micro_batch_size or \
                    time.monotonic() - self.last_flush >= self.cfg.batching.flush_interval / 1000:
                self.flush()

        def process_element(self, value, ctx):
            from transforms.events import Ev
            from transforms.watermarks import NO_WATERMARK

            key = ctx.get_current_key()
            ev, arrival_wm = value[1]
            st, outs = self.core.accept(self._load(), key, Ev(*ev), NO_WATERMARK if arrival_wm is None else arrival_wm)
            self._store(st, ctx)
            yield from self._emit(key, st, outs)

        def on_timer(self, timestamp, ctx):
            st = self._load()
            if st is None:
                return
            key = ctx.get_current_key()
            wm = ctx.timer_service().current_watermark()
            # a bounded run's final watermark is Long.MAX: then everything is in, go to the end at once
            st, outs = self.core.advance(st, key, END_OF_TIME if self.bounded and wm >= 2**63 - 1 else timestamp)
            self._store(st, ctx)
            yield from self._emit(key, st, outs)

        def flush(self):
            if self.rows:
                rows = list(self.rows.values())
                self.rows = {}
                self.writer.write(rows)
            self.sink.flush()
            self.last_flush = time.monotonic()

        def close(self):
            self.flush()
            self.sink.close()
            print("shiftstream-flink-counts " + json.dumps(self.counts), file=sys.stderr, flush=True)

    return Decode, RunCore, EventTime, dead_tag, late_tag


def prepare_process() -> str:
    """Before anything starts the Java gateway: the venv's bin on PATH (thread mode's embedded interpreter finds
    pemja there) and this project on PYTHONPATH (our functions are imported inside the Flink workers)."""
    import os

    root = str(Path(__file__).resolve().parent.parent)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    return root


def environment(cfg, mode: str = "thread", parallelism: int = 1):
    """A local StreamExecutionEnvironment set up for our Python functions (mode: thread or process)."""
    root = prepare_process()
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    conf = Configuration()
    conf.set_string("python.execution-mode", mode)
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("python.pythonpath", root)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism)
    return env


def mode_for(requested: str, models_dir: str | None) -> tuple[str, str | None]:
    """The execution mode to use and, when it differs from the one asked for, why."""
    if requested == "thread" and models_dir:
        return "process", ("thread mode hangs importing onnxruntime in the keyed operator (see jobs/flink_job.py); "
                           "running in process mode")
    return requested, None


def run_file(cfg, path: str, key: bytes, out_dir: str, models_dir: str | None = None, mode: str = "thread",
             parallelism: int = 1) -> dict:
    """A bounded run over a .frames file on the mini-cluster; dead letters and late events to JSON lines."""
    mode, why = mode_for(mode, models_dir)
    if why:
        print(f"shiftstream: {why}", file=sys.stderr)
    prepare_process()
    from pyflink.common import Duration, Types, WatermarkStrategy

    from schemas import read_frames

    Decode, RunCore, EventTime, dead_tag, late_tag = _functions()
    env = environment(cfg, mode, parallelism)
    n = sum(1 for _ in read_frames(path))
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    src = env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "messages") \
        .set_parallelism(1)
    decoded = src.process(Decode(cfg, key, str(Path(path).resolve())), output_type=Types.PICKLED_BYTE_ARRAY()) \
        .set_parallelism(1)
    timed = decoded.assign_timestamps_and_watermarks(
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(cfg.event_time.allowed_lateness))
        .with_timestamp_assigner(EventTime()))
    core = timed.key_by(lambda kv: kv[0], key_type=Types.STRING()) \
        .process(RunCore(cfg, models_dir, bounded=True), output_type=Types.PICKLED_BYTE_ARRAY())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    dead_list, late_list = [], []
    for tag, line in _collect(decoded.get_side_output(dead_tag), core.get_side_output(late_tag)):
        (dead_list if tag == "dead" else late_list).append(line)
    (out / "dead-letters.jsonl").write_text("".join(x + "\n" for x in dead_list))
    (out / "late-events.jsonl").write_text("".join(x + "\n" for x in late_list))
    results["dead_letters"] = len(dead_list)
    results["late"] = len(late_list)
    results["messages"] = n
    results["mode"] = mode
    return results


def _collect(dead, late):
    """Both side outputs through one job: tagged and unioned, then collected. Each map starts a new chain, so no
    Python operator follows the one that imports onnxruntime in its chain (the thread-mode hang)."""
    from pyflink.common import Types

    t = Types.TUPLE([Types.STRING(), Types.STRING()])
    a = dead.map(lambda x: ("dead", x), output_type=t).start_new_chain()
    b = late.map(lambda x: ("late", x), output_type=t).start_new_chain()
    with a.union(b).execute_and_collect() as results:
        for r in results:
            yield r[0], r[1]
