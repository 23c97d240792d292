"""How the PyFlink job is wired: the deployed Kafka job, or a bounded file run.

The Kafka job, one Python operator per event, everything at the job's parallelism:

    KafkaSource of the events topic, through the Java front (jobs/flink/front.py: the user's pseudonym, the Avro ts
    as event time and the partition's own watermark, taken from the wire bytes; each split's Flink watermark is
    that own watermark, with idleness: the reference runner's rule per partition, transforms/watermarks.py)
    [+ the privacy topic through the same front, parallelism 1, holding no watermark back: unioned]
    -> keyBy(Front.RowKey), in Java -> FrontCore (decodes, dead letters to a side output; privacy requests applied
    on arrival) -> decisions (Avro, wire format) on the main output, late events on a side output
    -> Kafka topics for decisions, dead letters and late events

A file run (.frames, the conformance suite's and the golden tests'): Decode (ordered, parallelism 1: the core's
Ingest stamps the source watermark at arrival; privacy requests as event time reaches them) -> Flink watermarks from
the arrival watermarks -> key by user -> RunCore; dead letters and late events collected to JSON lines.

With content slots, RunCore passes its rows on instead of writing them, and its outcomes go out on a side output;
both meet, keyed by a constant, in Decide (one learner, sealed by the watermark: see functions.Decide), which
chooses, writes and publishes; the threshold rules' actions are its side output.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from shiftstream.schemas import read_frames
from shiftstream.transforms.dispatch import Counts

from .connectors import KafkaInput, add_jars, kafka_sink, kafka_source
from .environment import environment


@dataclass(frozen=True)
class Streams:
    """What `build` wires: decisions (wire format) and the side outputs, each a byte stream (None: not in this job)."""
    decisions: object
    dead: object
    late: object
    actions: object = None    # threshold rules' actions, JSON (content.thresholds)
    outcomes: object = None   # exposures' results, pickled tuples (content.slots)


@dataclass(frozen=True)
class FramesInput:
    """A bounded run over a .frames file (wire-format messages, in file order), with privacy requests (records,
    sorted by time) applied as event time reaches them."""
    path: str
    privacy: tuple = ()


def build(env, cfg, key: bytes, source, models_dir: str | None = None, publish: bool = True,
          counts_dir: str | None = None):
    """Wire the job onto env; returns its `Streams`."""
    from pyflink.common import Duration, Types, WatermarkStrategy

    from .functions import (ACTION_TAG, DEAD_TAG, LATE_TAG, OUTCOME_TAG, Decide, Decode, EventTime, FrontCore,
                            RunCore)

    content = bool(cfg.content.slots)
    out_type = Types.PICKLED_BYTE_ARRAY() if content else Types.PRIMITIVE_ARRAY(Types.BYTE())
    if isinstance(source, FramesInput):
        from pyflink.datastream.connectors.number_seq import NumberSequenceSource

        n = sum(1 for _ in read_frames(source.path))
        # one index past the last message when there are privacy requests: those left apply there
        last = n if source.privacy else n - 1
        raw = env.from_source(NumberSequenceSource(0, last), WatermarkStrategy.no_watermarks(), "frames") \
            .set_parallelism(1).uid("source")
        decoded = raw.process(Decode(cfg, key, str(Path(source.path).resolve()), "events", counts_dir,
                                     list(source.privacy)), output_type=Types.PICKLED_BYTE_ARRAY()) \
            .set_parallelism(1).uid("decode")
        # the timestamps are the arrival watermarks (already minus the allowed lateness, never decreasing)
        strategy = WatermarkStrategy.for_monotonous_timestamps() \
            .with_idleness(Duration.of_millis(cfg.event_time.watermark_idleness)).with_timestamp_assigner(EventTime())
        timed = decoded.assign_timestamps_and_watermarks(strategy).set_parallelism(1)
        keyed = timed.key_by(lambda kv: kv[0], key_type=Types.STRING())
        _pin(keyed._j_data_stream.getTransformation().getInputs(), decoded)
        core = keyed.process(RunCore(cfg, models_dir, publish, counts_dir), output_type=out_type)
        dead = decoded
    else:
        from ..kafka_security import java_properties

        from . import front

        props = java_properties(cfg)
        rows = env.from_source(kafka_source(source, props, front.deserializer(key, cfg, packed=True)),
                               front.watermarks(cfg), "kafka: " + source.topic, type_info=front.keyed_type(True)) \
            .uid("source")
        if source.privacy_topic:  # keyed with the events: each user's requests meet their events in one order
            requests = env.from_source(
                kafka_source(replace(source, topic=source.privacy_topic), props,
                             front.deserializer(key, cfg, source=front.PRIVACY, packed=True)),
                front.watermarks(cfg, front.PRIVACY), "kafka: " + source.privacy_topic,
                type_info=front.keyed_type(True)) \
                .set_parallelism(1).uid("privacy-source")
            rows = rows.union(requests)
        core = front.key_by_user(rows, packed=True).process(FrontCore(cfg, key, models_dir, publish, counts_dir, source.topic),
                                               output_type=out_type)
        dead = core  # (FrontCore decodes: the dead letters are its side output)
    core = core.uid("core").name("core").disable_chaining()
    dead = dead.get_side_output(DEAD_TAG)
    late = core.get_side_output(LATE_TAG)
    if not content:
        return Streams(core, dead, late)
    outcomes = core.get_side_output(OUTCOME_TAG)
    decided = core.connect(outcomes).key_by(lambda r: 0, lambda o: 0, key_type=Types.INT()) \
        .process(Decide(cfg, models_dir, publish, counts_dir), output_type=Types.PRIMITIVE_ARRAY(Types.BYTE())) \
        .set_parallelism(1).uid("decide").name("decide").disable_chaining()
    return Streams(decided, dead, late,
                   decided.get_side_output(ACTION_TAG) if cfg.content.thresholds else None, outcomes)


def _pin(transformations, upstream, parallelism: int = 1) -> None:
    """Run the operators PyFlink adds of its own between `upstream` and these (the Python timestamp assigner's
    extract / assign / remove steps, the key selector's map) at the decoder's parallelism. Left at the job's, a
    parallel job reaches them by round robin, and two records of one user can overtake each other on the way to
    the core: harmless for events (the core takes any order within the lateness, each event carrying its arrival
    watermark), not for a privacy request, which purges the events before it. Pinned, they chain to the decoder,
    one hop less, and every user's records reach the core in arrival order."""
    stop = upstream._j_data_stream.getTransformation().getId()
    todo = list(transformations)
    while todo:
        t = todo.pop()
        if t.getId() != stop:
            t.setParallelism(parallelism)
            todo.extend(t.getInputs())


def run_file(cfg, path: str, key: bytes, out_dir: str, models_dir: str | None = None, mode: str = "thread",
             parallelism: int = 1, privacy: list | tuple = ()) -> dict:
    """A bounded run over a .frames file on the mini-cluster; dead letters and late events to JSON lines.
    Returns the functions' counters added up (the contract's vocabulary), with `messages` and `mode`."""
    env = environment(cfg, mode, parallelism, checkpoints=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shiftstream-counts-") as counts_dir:
        s = build(env, cfg, key, FramesInput(path, tuple(privacy)), models_dir, publish=False, counts_dir=counts_dir)
        lines: dict[str, list[str]] = {"dead": [], "late": [], "actions": [], "outcomes": []}
        for tag, line in _collect(s):
            lines[tag].append(line)
        counts = Counts()
        for f in Path(counts_dir).glob("counts-*.json"):
            counts.update(json.loads(f.read_text()))
    (out / "dead-letters.jsonl").write_text("".join(x + "\n" for x in lines["dead"]))
    (out / "late-events.jsonl").write_text("".join(x + "\n" for x in lines["late"]))
    if s.actions is not None:
        (out / "content-actions.jsonl").write_text("".join(x + "\n" for x in lines["actions"]))
    if s.outcomes is not None:
        (out / "outcomes.jsonl").write_text("".join(x + "\n" for x in lines["outcomes"]))
    return {**counts, "messages": sum(1 for _ in read_frames(path)), "mode": mode}


def _outcome_json(o) -> str:
    from shiftstream.transforms.outputs import Outcome

    return json.dumps(Outcome(*o)._asdict(), separators=(",", ":"))


def _collect(s: Streams):
    """The side outputs through one job: tagged, unioned and collected."""
    from pyflink.common import Types

    t = Types.TUPLE([Types.STRING(), Types.STRING()])
    both = s.dead.map(lambda x: ("dead", bytes(x).decode()), output_type=t) \
        .union(s.late.map(lambda x: ("late", bytes(x).decode()), output_type=t))
    if s.actions is not None:
        both = both.union(s.actions.map(lambda x: ("actions", bytes(x).decode()), output_type=t))
    if s.outcomes is not None:
        both = both.union(s.outcomes.map(lambda x: ("outcomes", _outcome_json(x)), output_type=t))
    with both.execute_and_collect() as results:
        for r in results:
            yield r[0], r[1]


def job(cfg, key: bytes, source: KafkaInput, models_dir: str | None = None, mode: str = "thread",
        parallelism: int = 1, restore_from: str | None = None, env=None):
    """The deployed form: Kafka in, Redis and the decisions / dead-letter / late topics out, checkpointed.
    Returns the environment, ready for `execute` (or `execute_async`)."""
    env = env or environment(cfg, mode, parallelism, restore_from)
    add_jars(env)
    from . import front
    from .connectors import jars_dir

    env.add_jars(front.build(jars_dir()).as_uri())  # (compiled by `make setup`: this only checks it)
    s = build(env, cfg, key, source, models_dir, publish=True)
    from ..kafka_security import java_properties

    k, props = cfg.kafka, java_properties(cfg)
    s.decisions.sink_to(kafka_sink(source.bootstrap, k.decisions_topic, props)).uid("decisions-out") \
        .name("decisions")
    s.dead.sink_to(kafka_sink(source.bootstrap, k.dead_letter_topic, props)).uid("dead-letters-out") \
        .name("dead letters")
    s.late.sink_to(kafka_sink(source.bootstrap, k.late_topic, props)).uid("late-out").name("late events")
    if s.actions is not None:
        s.actions.sink_to(kafka_sink(source.bootstrap, k.content_actions_topic, props)).uid("content-actions-out") \
            .name("content actions")
    return env
