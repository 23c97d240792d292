"""The Java front (jobs/flink/front.py) against a Python front, for the step issue 6/6 asks: one Python hop per event.

    python -m bench.flink_front [--events 150000] [--parallelism 1]

Both read the same Kafka topic (record timestamps = event times, moved to end now) into a keyed Python function
that does nothing, then a discarding sink, on a local mini-cluster in thread mode:
  java:   KafkaSource with Front.Deserializer (pseudonym and time in Java) -> keyBy(Front.RowKey) -> keyed no-op
  python: KafkaSource of bytes -> a Python map (the pseudonym from a hand-read Avro prefix, lighter than the job's
          decoder) -> key_by -> keyed no-op
Events/s from the slope of two runs (N/3 and N messages), after a warm-up run, which leaves the start-up out. One run
each: read the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time

from pyflink.datastream import KeyedProcessFunction, MapFunction

from shiftstream.transforms.pseudonyms import DEV_KEY


class NoOp(KeyedProcessFunction):
    def process_element(self, value, ctx):
        return None


class PythonKey(MapFunction):
    """Row(pseudonym, payload) from the wire bytes, in Python (what a Python front costs at the least)."""

    def open(self, ctx):
        from shiftstream.transforms.pseudonyms import Pseudonymiser

        self.ps = Pseudonymiser(DEV_KEY)

    def map(self, v):
        from pyflink.common import Row

        from shiftstream.schemas.errors import DecodeError
        from shiftstream.schemas.varint import read_long

        try:
            n, pos = read_long(v, 5)      # event_id
            n, pos = read_long(v, pos + n)  # user_id
            return Row(self.ps(bytes(v[pos:pos + n]).decode()), v)
        except (DecodeError, UnicodeDecodeError):
            return Row("!", v)


def _run(kind: str, bootstrap: str, topic: str, parallelism: int) -> float:
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.common.serialization import ByteArraySchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource
    from pyflink.java_gateway import get_gateway

    from shiftstream.jobs.flink import front
    from shiftstream.jobs.flink.connectors import add_jars, jars_dir
    from shiftstream.jobs.flink.environment import environment
    from shiftstream.transforms.config import load_config

    env = environment(load_config(), "thread", parallelism, checkpoints=False)
    add_jars(env)
    env.add_jars(front.build(jars_dir()).as_uri())
    b = KafkaSource.builder().set_bootstrap_servers(bootstrap).set_topics(topic) \
        .set_group_id(f"bench-{kind}-{topic}-{time.monotonic_ns()}").set_bounded(KafkaOffsetsInitializer.latest())
    wm = WatermarkStrategy.for_monotonous_timestamps()
    if kind == "java":
        keyed = front.keyed_stream(env, b, DEV_KEY, "kafka", wm)
    else:
        b.set_value_only_deserializer(ByteArraySchema())
        rows = env.from_source(b.build(), wm, "kafka").map(
            PythonKey(), output_type=Types.ROW([Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE())]))
        keyed = rows.key_by(lambda r: r[0], key_type=Types.STRING())
    out = keyed.process(NoOp(), output_type=Types.LONG())
    out._j_data_stream.sinkTo(get_gateway().jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink())
    t0 = time.perf_counter()
    env.execute(f"bench-front-{kind}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink_front")
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--parallelism", type=int, default=1)
    a = ap.parse_args(argv)
    from confluent_kafka import Producer

    from shiftstream.jobs.testing import create_topic
    from shiftstream.runners.local import LocalKafka
    from shiftstream.runners.simulator import SimConfig, simulate
    from shiftstream.schemas import MemoryRegistry, WireCodec

    sim = simulate(SimConfig(users=2000, events=a.events, seed=31, days=1.0, malformed=0, privacy_rate=0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    shift = int(time.time() * 1000) - max(e["ts"] for e in sim.events)
    n = len(sim.events) // 3
    out = {}
    with LocalKafka() as k:
        for name, evs in (("small", sim.events[:n]), ("big", sim.events[:3 * n])):
            create_topic(k.bootstrap, f"front-{name}")
            p = Producer({"bootstrap.servers": k.bootstrap, "linger.ms": 20})
            for e in evs:
                p.produce(f"front-{name}", wire.encode(e), timestamp=e["ts"] + shift)
                p.poll(0)
            p.flush(60)
        for kind in ("java", "python"):
            _run(kind, k.bootstrap, "front-small", a.parallelism)  # warm-up: the first job pays class loading
            small = _run(kind, k.bootstrap, "front-small", a.parallelism)
            big = _run(kind, k.bootstrap, "front-big", a.parallelism)
            if big - small < 0.5:  # the extra messages took less than the runs' noise: no slope to read
                raise SystemExit(f"bench.flink_front: {2 * n:,} more messages took {big - small:.2f}s more: too few "
                                 "to measure, use --events 150000 or more")
            out[kind] = 2 * n / (big - small)
            print(f"  {kind} front: {n:,} in {small:.1f}s, {3 * n:,} in {big:.1f}s", file=sys.stderr, flush=True)
    print(f"\n| front (thread mode, parallelism {a.parallelism}) | events/s | us/event |\n|---|---|---|")
    for kind, rate in out.items():
        print(f"| {kind} | {rate:,.0f} | {1e6 / rate:.1f} |")
    print(f"\njava / python: {out['java'] / out['python']:.2f}x")
    return out


if __name__ == "__main__":
    main()
