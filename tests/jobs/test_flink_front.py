"""The Java front (jobs/flink/java/Front.java, built by `make setup`): the pseudonym, event time and own watermark it takes from
the wire bytes are Python's, for every message of a simulated stream with broken ones among them; on a real broker
and a Flink mini-cluster it keys a stream for one Python operator, typed rows in, the record timestamp as event
time."""
import pytest

from shiftstream.jobs.flink import front
from shiftstream.jobs.flink.connectors import jars_dir
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.schemas.errors import DecodeError
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

pytestmark = [pytest.mark.slow, pytest.mark.flink]


def _messages():
    sim = simulate(SimConfig(users=200, events=4000, seed=23, days=1.0, malformed=0.01, privacy_rate=0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    out = [(wire.encode(e), e) for e in sim.events]
    for pos, bad in reversed(sim.malformed):
        out.insert(min(pos, len(out)), (bad, None))
    return out, wire


def test_the_front_builds_and_takes_pythons_pseudonym_and_time_from_the_bytes():
    from shiftstream.jobs.flink.environment import environment
    from shiftstream.transforms.config import load_config

    jar = front.build(jars_dir())
    stamp = (jar.parent / (jar.name + ".sha256")).stat().st_mtime_ns
    assert front.build(jars_dir()) == jar and (jar.parent / (jar.name + ".sha256")).stat().st_mtime_ns == stamp
    from shiftstream.jobs.flink.connectors import add_jars

    env = environment(load_config(), "thread", 1, checkpoints=False)
    add_jars(env)  # the Kafka connector's, which the deserializer implements an interface of
    env.add_jars(jar.as_uri())  # (also puts it on the client's class loader, where py4j finds the classes)
    d = front.deserializer(DEV_KEY)
    ps = Pseudonymiser(DEV_KEY)
    for uid in ("user-000001", "ünïcødé", "😀 emoji", "x" * 300, " "):
        assert d.pseudonymOf(uid) == ps(uid)
    msgs, wire = _messages()
    placeholders = good = 0
    for value, ev in msgs:
        row = d.rowOf(bytearray(value))
        key, event = row.getField(0), row.getField(1)
        try:
            rec = wire.decode(value)
        except DecodeError:
            rec = None
        if key.startswith("!"):
            placeholders += 1
            assert rec is None, "a message Python decodes got no key"
        else:
            assert event.getField(4) is not None
            if rec is not None:  # (a cut past the prefix still gets its key: Python dead-letters it)
                assert key == ps(rec["user_id"]) and event.getField(5) == rec["ts"]
                good += 1
    assert good > 3900 and placeholders > 0
    assert d.rowOf(bytearray(b"")).getField(0) == "!0:0" and d.rowOf(bytearray(b"\x00" * 5)).getField(0) == "!0:0"
    _the_own_watermarks_are_the_reference_runners(msgs, wire)


def _the_own_watermarks_are_the_reference_runners(msgs, wire):
    """Each event row's own watermark (Front.Frontier) is what the core's Ingest makes of the same messages on the
    same partitions: the frontier rule of transforms/watermarks.py over the envelopes of transforms/envelope.py,
    dead letters with a readable envelope included (here: events with a bad value past it, and cut ones)."""
    import random

    from shiftstream.jobs.ingest import ingest_for
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.ingest import Arrival
    from shiftstream.transforms.watermarks import NO_WATERMARK

    cfg = load_config().replace(**{"event_time.outlier_tolerance": 2, "event_time.outlier_window": 16})
    d = front.deserializer(DEV_KEY, cfg)
    ing = ingest_for(cfg, Pseudonymiser(DEV_KEY))
    rng = random.Random(5)
    stream = []
    for value, ev in msgs:
        if ev is not None and rng.random() < 0.03:  # invalid past the envelope, dated ahead: a dead letter that counts
            value = wire.encode({**ev, "ts": ev["ts"] + 3_600_000, "scroll_depth": 9.0})
        elif ev is not None and rng.random() < 0.02:
            value = value[:-3]
        stream.append(value)
    packed = front.deserializer(DEV_KEY, cfg, packed=True)
    dead = counted = 0
    for i, value in enumerate(stream):
        part = i % 3
        row = d.rowOf(bytearray(value), part, i)
        got = row.getField(1).getField(6)
        # the job's form: the same fields, packed into bytes (no per-field conversion into Python)
        key, source, p, offset, _, event_ts, own, payload = front.unpack(bytes(packed.rowOf(bytearray(value), part, i)
                                                                              .getField(1)))
        assert (key, source, p, offset, payload) == (row.getField(0), front.EVENTS, part, i, value)
        assert (None if event_ts == front.NULL else event_ts, None if own == front.NULL else own) == \
            (row.getField(1).getField(5), got)
        a = ing.message(value, part, i)
        want = ing.watermarks.own(part)
        assert got == (None if want == NO_WATERMARK else want), f"message {i} on partition {part}"
        if type(a) is Arrival:
            assert a.own == want
        else:
            dead += 1
            counted += got is not None
    assert dead > 150 and counted > 100


@pytest.mark.kafka
def test_the_front_keys_a_kafka_stream_for_one_python_operator(kafka_broker, tmp_path):
    from confluent_kafka import Producer
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

    from shiftstream.jobs.flink.connectors import add_jars
    from shiftstream.jobs.flink.environment import environment
    from shiftstream.jobs.testing import create_topic
    from shiftstream.transforms.config import load_config

    import time

    msgs, wire = _messages()
    create_topic(kafka_broker.bootstrap, "front-events", 2)
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    # record timestamps follow the events' times, moved to end now (a broker deletes records past its retention
    # by their timestamps: a year-old simulated stream would be gone before it is read)
    shift = int(time.time() * 1000) - max(ev["ts"] for _, ev in msgs if ev)
    for i, (value, ev) in enumerate(msgs):
        p.produce("front-events", value, key=str(i % 7).encode(), timestamp=(ev["ts"] if ev else 0) + shift)
    assert p.flush(30) == 0
    from shiftstream.jobs.kafka import topic_ends

    assert topic_ends(kafka_broker.bootstrap, ["front-events"]) == {"front-events": len(msgs)}
    env = environment(load_config(), "thread", 2, checkpoints=False)
    add_jars(env)
    env.add_jars(front.build(jars_dir()).as_uri())
    builder = KafkaSource.builder().set_bootstrap_servers(kafka_broker.bootstrap).set_topics("front-events") \
        .set_group_id("front-test").set_bounded(KafkaOffsetsInitializer.latest())
    keyed = front.keyed_stream(env, builder, DEV_KEY, "kafka", WatermarkStrategy.for_monotonous_timestamps())
    out = keyed.process(Echo(), output_type=Types.TUPLE([Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG()]))
    with out.execute_and_collect() as results:
        got = list(results)
    assert len(got) == len(msgs)
    assert all(current == key for current, key, _, _ in got)  # the Java key is the operator's current key
    ps = Pseudonymiser(DEV_KEY)
    want = {}
    for value, ev in msgs:
        if ev is not None:
            want.setdefault(ps(ev["user_id"]), set()).add(ev["ts"] + shift)
    seen = {}
    for _, key, ts, event_ts in got:
        if not key.startswith("!") and ts != shift:  # (a broken message was sent with timestamp 0 + shift)
            seen.setdefault(key, set()).add(ts)
            assert ts == event_ts + shift  # event time: the record's timestamp, and the Avro ts read in Java
    assert {k: v for k, v in seen.items() if k in want} == want


from pyflink.datastream import KeyedProcessFunction  # noqa: E402


class Echo(KeyedProcessFunction):
    """What the one Python operator sees: its current key, the row's key, the event time, the Avro ts (-1: none)."""

    def process_element(self, value, ctx):
        yield ctx.get_current_key(), value[0], ctx.timestamp(), -1 if value[5] is None else value[5]


def test_a_front_that_cannot_be_built_says_what_to_do_in_one_line(tmp_path):
    with pytest.raises(front.FrontBuildError, match="run `make setup`") as e:
        front.build(tmp_path)  # no connector jars to compile against
    assert "\n" not in str(e.value)
