"""The core as a PyFlink 2.3 DataStream job: from a .frames file or Kafka, checkpointed, decisions to Redis (and Kafka).

    source (KafkaSource of raw bytes | a .frames file) -> Decode (ordered, parallelism 1: bad bytes to the dead-letter
    output, pseudonymise, stamp the source watermark at arrival as the reference runner computes it)
    -> event-time timestamps, bounded out-of-orderness watermarks with idleness -> key by user
    -> RunCore (KeyedProcessFunction, alone in its task): UserState in keyed state, event-time timers call
       Core.advance, late events to their output; decision rows scored and written to Redis in micro-batches and
       published as Avro (wire format) on the main output
    -> Kafka topics for decisions, dead letters and late events (file runs collect the last two to JSON lines)

No business logic here: the functions map Flink state, timers and outputs onto transforms.core.

Two PyFlink facts shape this file (measured here; see the README's PyFlink section):
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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

END_OF_TIME = 2**62
MAX_WATERMARK = 2**63 - 1


@dataclass(frozen=True)
class FramesInput:
    """A bounded run over a .frames file (wire-format messages, in file order)."""
    path: str


@dataclass(frozen=True)
class KafkaInput:
    """Raw message values from a Kafka topic; bounded: stop at the end offsets seen at start."""
    bootstrap: str
    topic: str
    group_id: str
    bounded: bool = False


def _functions():
    """The Flink functions, defined on first use so importing this module needs no PyFlink."""
    from pyflink.common import Types
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext, TimeDomain
    from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

    dead_tag = OutputTag("dead-letters", Types.PRIMITIVE_ARRAY(Types.BYTE()))
    late_tag = OutputTag("late-events", Types.PRIMITIVE_ARRAY(Types.BYTE()))

    class EventTime(TimestampAssigner):
        def extract_timestamp(self, value, record_timestamp):
            return value[1][0][0]  # (key, (event tuple, arrival watermark)): the event time

    class Decode(ProcessFunction):
        """Message bytes (or a .frames index) -> (user key, (event tuple, source watermark at arrival)); bad bytes
        -> the dead-letter output with the reason."""

        def __init__(self, cfg, key: bytes, frames: str | None, source: str):
            self.cfg, self.key, self.frames, self.source = cfg, key, frames, source

        def open(self, ctx: RuntimeContext):
            from schemas import WireCodec, read_frames, registry_from_url
            from transforms.pseudonyms import Pseudonymiser
            from transforms.watermarks import Watermarks

            self.messages = list(read_frames(self.frames)) if self.frames else None
            self.wire = WireCodec(registry_from_url(self.cfg.kafka.schema_registry_url), "interaction")
            self.pseudonymise = Pseudonymiser(self.key)
            self.watermarks = Watermarks(self.cfg.event_time.allowed_lateness, self.cfg.event_time.watermark_idleness)
            self.seen = 0

        def process_element(self, value, ctx):
            from schemas.errors import DecodeError
            from transforms.deadletters import dead_letter
            from transforms.events import check_record, from_record

            if self.messages is not None:
                offset, raw = value, self.messages[value]
            else:  # Kafka: value-only records, so the position is this task's arrival count
                offset, raw = self.seen, bytes(value)
            self.seen += 1
            now_ms = int(time.time() * 1000)
            try:
                rec = self.wire.decode(raw)
                problem = check_record(rec, now_ms + self.cfg.event_time.max_future_skew)
            except DecodeError as exc:
                rec, problem = None, exc
            if problem is not None:
                d = dead_letter(problem, raw, self.pseudonymise, self.source, 0, offset, now_ms)
                yield dead_tag, json.dumps(d, separators=(",", ":")).encode()
                return
            ev = from_record(rec)
            yield self.pseudonymise(rec["user_id"]), (tuple(ev), self.watermarks.observe(ev.ts))

    class RunCore(KeyedProcessFunction):
        """Per user, in keyed state: the UserState without its buffered events (written when the core advances)
        and the buffered events by id (an accepted event is put, an applied one removed: no rewrite of the
        buffer per event). Live states are cached between events.
        Event-time timers advance the core; processing-time timers flush buffered decisions (and rewrite them
        after a restore)."""

        def __init__(self, cfg, models_dir: str | None, publish: bool):
            self.cfg, self.models_dir, self.publish = cfg, models_dir, publish

        def open(self, ctx: RuntimeContext):
            from jobs.writer import DecisionWriter
            from schemas import WireCodec, registry_from_url
            from transforms.core import Core

            self.state = ctx.get_state(ValueStateDescriptor("user_state", Types.PICKLED_BYTE_ARRAY()))
            self.pending = ctx.get_map_state(MapStateDescriptor("pending_events", Types.STRING(),
                                                                Types.PICKLED_BYTE_ARRAY()))
            self.core = Core(self.cfg)
            self.writer = DecisionWriter.for_config(self.cfg, self.models_dir)
            self.sink = self.writer.sink
            self.wire = WireCodec(registry_from_url(self.cfg.kafka.schema_registry_url), "decision") \
                if self.publish else None
            self.rows: dict = {}          # user key -> its live state, to be rendered in the next micro-batch
            self.armed: dict = {}         # user key -> the flush timer this instance registered for it
            self.timer_at: dict = {}      # user key -> the event-time timer this instance registered last
            self.cache: dict = {}         # user key -> live UserState (the keyed state holds the same)
            self.cache_cap = self.cfg.engine.state_cache_users
            self.interval = self.cfg.batching.flush_interval
            self.batch = self.cfg.batching.micro_batch_size
            self.counts: dict[str, int] = {}

        def _load(self, key):
            st = self.cache.get(key)
            if st is not None:
                return st
            from transforms.events import Ev
            from transforms.state import UserState

            d = self.state.value()
            pending = [Ev(*e) for e in self.pending.values()]
            if d is None and not pending:
                return None
            st = UserState.from_dict(d) if d is not None else self.core.new_state()
            if pending:
                st.set_pending(pending)
            self._cache(key, st)
            if key in self.rows:
                self.rows[key] = st
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
            self.state.update(st.to_dict(pending=False))
            if st.pending:
                for event_id in applied:
                    self.pending.remove(event_id)
            else:
                self.pending.clear()
            self._cache(key, st)
            self._timer(key, st, ctx)

        def _emit(self, key, st, outs, ctx):
            from transforms.outputs import Changed, Late

            counts = self.counts
            for o in outs:
                t = type(o)
                counts[t.__name__] = counts.get(t.__name__, 0) + 1
                if t is Changed:
                    self.rows[key] = st  # rendered at flush time: one decision per user per micro-batch
                    if key not in self.armed:  # the timer is checkpointed with the state: see the module doc
                        # a decision waits at most the flush interval (on a 10 ms grid, so timers coalesce)
                        due = ctx.timer_service().current_processing_time() + self.interval
                        due += -due % 10
                        ctx.timer_service().register_processing_time_timer(due)
                        self.armed[key] = due
                elif t is Late:
                    yield late_tag, json.dumps({"key": o.key, "event": o.event._asdict(), "watermark": o.watermark},
                                               separators=(",", ":")).encode()
            if len(self.rows) >= self.batch:
                yield from self._flush()

        def process_element(self, value, ctx):
            from transforms.events import Ev
            from transforms.watermarks import NO_WATERMARK

            key, (ev, arrival_wm) = value  # the key rides in the record: no call into Java for it
            before = self._load(key)
            st, outs = self.core.accept(before, key, Ev(*ev), NO_WATERMARK if arrival_wm is None else arrival_wm)
            if not outs:  # accepted: buffered until the watermark passes it; only the event list changed
                self.pending.put(ev[1], ev)
                if before is None:
                    self._cache(key, st)
                self._timer(key, st, ctx)
                return
            yield from self._emit(key, st, outs, ctx)

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
                        self.counts["rewritten_after_restore"] = self.counts.get("rewritten_after_restore", 0) + 1
                yield from self._flush()
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
            st, outs = self.core.advance(st, key, END_OF_TIME if final else max(wm, timestamp))
            self._store(key, st, ctx, ids - st.pending_ids if st is not None else ())
            yield from self._emit(key, st, outs, ctx)
            if final and self.rows:  # no processing-time timer fires after the end of input: publish now
                yield from self._flush()

        def _flush(self):
            if self.rows:
                from transforms.decisions import snapshot

                cfg = self.cfg
                rows = [snapshot(st, key, cfg) for key, st in self.rows.items()]
                self.rows = {}
                decisions = self.writer.write_rendered(rows)
                self.counts["decisions"] = self.counts.get("decisions", 0) + len(decisions)
                if self.wire is not None:
                    encode = self.wire.encode
                    for d in decisions:
                        yield encode(d)
            self.sink.flush()  # every reply read: what is flushed is in Redis

        def close(self):
            if not hasattr(self, "rows"):  # open() failed: let its error be the one reported
                return
            # Rows still buffered here had no final timer to publish them: they reach Redis, not the topic
            # (the outputs are closed by now). A drain or the end of input publishes through on_timer first.
            for _ in self._flush():
                pass
            self.sink.close()
            print("shiftstream-flink-counts " + json.dumps(self.counts), file=sys.stderr, flush=True)

    return Decode, RunCore, EventTime, dead_tag, late_tag


def prepare_process() -> str:
    """Before anything starts the Java gateway: the venv's bin on PATH (thread mode's embedded interpreter finds
    pemja there) and this project on PYTHONPATH (our functions are imported inside the Flink workers)."""
    root = str(Path(__file__).resolve().parent.parent)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    return root


def _uri(path: str) -> str:
    return path if "://" in path else Path(path).resolve().as_uri()


def flink_conf(cfg, mode: str = "thread", restore_from: str | None = None) -> dict[str, str]:
    """The Flink settings this job needs, from our config: execution mode, checkpoints, restore point."""
    e = cfg.engine
    conf = {
        "python.execution-mode": mode,
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "pipeline.auto-watermark-interval": f"{e.watermark_interval} ms",
        "execution.buffer-timeout.interval": f"{e.buffer_timeout} ms",
        "execution.checkpointing.interval": f"{e.checkpoint_interval} ms",
        "execution.checkpointing.mode": e.checkpoint_mode.upper(),
        "execution.checkpointing.dir": _uri(e.checkpoint_dir),
        "execution.checkpointing.num-retained": str(e.checkpoints_retained),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.savepoint-dir": _uri(savepoint_dir(e.checkpoint_dir)),
    }
    if restore_from:
        conf["execution.state-recovery.path"] = _uri(restore_from)
    return conf


def environment(cfg, mode: str = "thread", parallelism: int = 1, restore_from: str | None = None,
                checkpoints: bool = True):
    """A StreamExecutionEnvironment set up for our Python functions (mode: thread or process), with the jars."""
    root = prepare_process()
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    conf = Configuration()
    for k, v in flink_conf(cfg, mode, restore_from).items():
        if checkpoints or not k.startswith("execution.checkpointing."):
            conf.set_string(k, v)
    conf.set_string("python.pythonpath", root)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism)
    return env


DRAINED = "DRAINED"  # marker written into a savepoint taken with a drain: its states are at the end of time


def savepoint_dir(checkpoint_dir: str) -> str:
    """Where savepoints go by default: `savepoints` beside the checkpoint folder."""
    if "://" in checkpoint_dir:
        return checkpoint_dir.rstrip("/") + "-savepoints"
    return str(Path(checkpoint_dir).resolve().parent / "savepoints")


def local_path(path: str) -> Path:
    """A checkpoint location as a local folder (a plain path or file:); other schemes are refused."""
    if path.startswith("file:"):
        return Path("/" + path[len("file:"):].lstrip("/"))
    if "://" in path:
        raise ValueError(f"{path}: only local paths (or file:) can be searched for checkpoints here")
    return Path(path)


def mark_drained(savepoint: str) -> None:
    """Note in a savepoint taken with a drain that it must not be resumed from (see `resumable`)."""
    p = local_path(savepoint)
    if p.is_dir():
        (p / DRAINED).write_text("taken with --drain: the end of event time; do not resume from it\n")


def resumable(path: str) -> str | None:
    """Why a checkpoint or savepoint cannot be resumed from (None: it can)."""
    p = local_path(path)
    if not (p / "_metadata").exists():
        return f"{path} has no _metadata: not a completed checkpoint or savepoint"
    if (p / DRAINED).exists():
        return (f"{path} was taken with a drain: every state in it is at the end of event time, so each later "
                f"event would be late. Start afresh (a new consumer group) instead")
    return None


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest resumable state: a completed checkpoint (chk-N with its _metadata) under checkpoint_dir, or a
    savepoint in the savepoint folder beside it (a stop with a savepoint ends the job, and Flink then discards
    that job's checkpoints). Drained savepoints are skipped. None when there is none."""
    found = [m.parent for m in local_path(checkpoint_dir).glob("*/chk-*/_metadata")]
    found += [m.parent for m in local_path(savepoint_dir(checkpoint_dir)).glob("savepoint-*/_metadata")]
    found = [p for p in found if resumable(str(p)) is None]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def build(env, cfg, key: bytes, source, models_dir: str | None = None, publish: bool = True):
    """Wire the job onto env. Returns (decisions, dead letters, late events) as byte streams."""
    from pyflink.common import Duration, Types, WatermarkStrategy

    Decode, RunCore, EventTime, dead_tag, late_tag = _functions()
    if isinstance(source, FramesInput):
        from pyflink.datastream.connectors.number_seq import NumberSequenceSource

        from schemas import read_frames

        n = sum(1 for _ in read_frames(source.path))
        raw = env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "frames")
        decode = Decode(cfg, key, str(Path(source.path).resolve()), "events")
    else:
        raw = env.from_source(kafka_source(source), WatermarkStrategy.no_watermarks(), "kafka: " + source.topic)
        decode = Decode(cfg, key, None, source.topic)
    raw = raw.set_parallelism(1).uid("source")
    decoded = raw.process(decode, output_type=Types.PICKLED_BYTE_ARRAY()).set_parallelism(1).uid("decode")
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(cfg.event_time.allowed_lateness)) \
        .with_idleness(Duration.of_millis(cfg.event_time.watermark_idleness)).with_timestamp_assigner(EventTime())
    timed = decoded.assign_timestamps_and_watermarks(strategy).set_parallelism(1)
    core = timed.key_by(lambda kv: kv[0], key_type=Types.STRING()) \
        .process(RunCore(cfg, models_dir, publish), output_type=Types.PRIMITIVE_ARRAY(Types.BYTE())) \
        .uid("core").name("core").disable_chaining()
    return core, decoded.get_side_output(dead_tag), core.get_side_output(late_tag)


def kafka_source(src: KafkaInput):
    from pyflink.common.serialization import ByteArraySchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource
    from pyflink.java_gateway import get_gateway

    # committed offsets, else the earliest. PyFlink's own helper names the official connector's shaded Kafka
    # classes; the connector jar we load (jobs/flink_jars.json) uses the plain kafka-clients ones.
    jvm = get_gateway().jvm
    start = KafkaOffsetsInitializer(jvm.org.apache.flink.connector.kafka.source.enumerator.initializer
                                    .OffsetsInitializer.committedOffsets(
                                        jvm.org.apache.kafka.clients.consumer.OffsetResetStrategy.EARLIEST))
    b = KafkaSource.builder().set_bootstrap_servers(src.bootstrap).set_topics(src.topic) \
        .set_group_id(src.group_id).set_starting_offsets(start) \
        .set_value_only_deserializer(ByteArraySchema()) \
        .set_property("commit.offsets.on.checkpoint", "true") \
        .set_property("partition.discovery.interval.ms", "60000") \
        .set_property("fetch.max.wait.ms", "20")
    if src.bounded:
        b = b.set_bounded(KafkaOffsetsInitializer.latest())
    return b.build()


def kafka_sink(bootstrap: str, topic: str):
    """At-least-once byte sink: decisions are upserts; a replay after a restore may repeat a dead letter."""
    from pyflink.common.serialization import ByteArraySchema
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink

    return KafkaSink.builder().set_bootstrap_servers(bootstrap) \
        .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(topic)
                               .set_value_serialization_schema(ByteArraySchema()).build()) \
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE).build()


def add_jars(env) -> None:
    """The Kafka connector and client jars, hash-checked (`make setup` fetches them)."""
    from runners.jars import check

    root = Path(__file__).resolve().parent.parent
    env.add_jars(*(p.as_uri() for p in check(root / ".jars")))


def stop_with_savepoint(client, drain: bool = False, directory: str | None = None, timeout_s: float = 120) -> str:
    """Stop a running job with a savepoint; drain: first move the watermark to the end of time. Returns the
    savepoint's path. (PyFlink 2.3's JobClient.stop_with_savepoint calls a Java signature that no longer exists.)"""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    fmt = jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    path = client._j_job_client.stopWithSavepoint(drain, directory, fmt).get(
        int(timeout_s * 1000), jvm.java.util.concurrent.TimeUnit.MILLISECONDS)
    if drain:
        mark_drained(path)
    return path


def run_file(cfg, path: str, key: bytes, out_dir: str, models_dir: str | None = None, mode: str = "thread",
             parallelism: int = 1) -> dict:
    """A bounded run over a .frames file on the mini-cluster; dead letters and late events to JSON lines."""
    env = environment(cfg, mode, parallelism, checkpoints=False)
    _, dead, late = build(env, cfg, key, FramesInput(path), models_dir, publish=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"dead": [], "late": []}
    for tag, line in _collect(dead, late):
        lines[tag].append(line)
    (out / "dead-letters.jsonl").write_text("".join(x + "\n" for x in lines["dead"]))
    (out / "late-events.jsonl").write_text("".join(x + "\n" for x in lines["late"]))
    from schemas import read_frames

    return {"dead_letters": len(lines["dead"]), "late": len(lines["late"]),
            "messages": sum(1 for _ in read_frames(path)), "mode": mode}


def _collect(dead, late):
    """Both side outputs through one job: tagged, unioned and collected."""
    from pyflink.common import Types

    t = Types.TUPLE([Types.STRING(), Types.STRING()])
    a = dead.map(lambda x: ("dead", bytes(x).decode()), output_type=t)
    b = late.map(lambda x: ("late", bytes(x).decode()), output_type=t)
    with a.union(b).execute_and_collect() as results:
        for r in results:
            yield r[0], r[1]


def job(cfg, key: bytes, source: KafkaInput, models_dir: str | None = None, mode: str = "thread",
        parallelism: int = 1, restore_from: str | None = None, env=None):
    """The deployed form: Kafka in, Redis and the decisions / dead-letter / late topics out, checkpointed.
    Returns the environment, ready for `execute` (or `execute_async`)."""
    env = env or environment(cfg, mode, parallelism, restore_from)
    add_jars(env)
    decisions, dead, late = build(env, cfg, key, source, models_dir, publish=True)
    k = cfg.kafka
    decisions.sink_to(kafka_sink(source.bootstrap, k.decisions_topic)).uid("decisions-out").name("decisions")
    dead.sink_to(kafka_sink(source.bootstrap, k.dead_letter_topic)).uid("dead-letters-out").name("dead letters")
    late.sink_to(kafka_sink(source.bootstrap, k.late_topic)).uid("late-out").name("late events")
    return env


JOB_ARGUMENTS = ("config", "kafka_bootstrap", "topic", "redis_url", "models")


def add_job_arguments(p, bootstrap_required: bool = False) -> None:
    """The job's own arguments, the same for `flink run -py jobs/flink_job.py` and `shiftstream deploy submit`."""
    p.add_argument("--config", help="YAML config (default: the embedded one)")
    p.add_argument("--kafka-bootstrap", required=bootstrap_required, help="default: kafka.bootstrap")
    p.add_argument("--topic", help="events topic (default: kafka.events_topic)")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--models", help="models directory (LIVE/SHADOW pointers), or none")


def main(argv: list[str] | None = None) -> int:
    """Entry point for `flink run -py jobs/flink_job.py -- ...` on a Flink cluster (what `shiftstream deploy`
    submits): the cluster's configuration supplies mode, checkpoints and the restore point."""
    import argparse

    from transforms.config import load_config
    from transforms.pseudonyms import key_from_settings

    p = argparse.ArgumentParser(prog="flink_job")
    add_job_arguments(p)
    p.add_argument("--name", default="shiftstream")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.redis_url:
        cfg = cfg.replace(**{"redis.url": args.redis_url})
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    from pyflink.datastream import StreamExecutionEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    src = KafkaInput(args.kafka_bootstrap or cfg.kafka.bootstrap, args.topic or cfg.kafka.events_topic,
                     cfg.kafka.group_id)
    job(cfg, key, src, None if args.models in (None, "none") else args.models, env=env)
    env.execute(args.name)
    return 0


if __name__ == "__main__":  # `flink run -py jobs/flink_job.py`: run the importable module's main, not __main__'s
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from jobs.flink_job import main as _main

    sys.exit(_main())
