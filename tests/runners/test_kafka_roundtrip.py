import time

import pytest

from shiftstream.runners.simulate import produce
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.schemas.errors import DecodeError

pytestmark = pytest.mark.kafka


def test_simulated_events_round_trip_through_a_real_broker(kafka_broker):
    from confluent_kafka import Consumer

    sim = simulate(SimConfig(users=40, events=3000, seed=11))
    sent = produce(sim, kafka_broker.bootstrap, "rt-events", "rt-privacy", rate=None, progress=False)
    assert sent == len(sim.events) + len(sim.malformed)
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "rt", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe(["rt-events"])
    wire = WireCodec(MemoryRegistry(), "interaction")
    decoded, bad = [], 0
    deadline = time.monotonic() + 60
    try:
        while len(decoded) + bad < sent and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.5):
                if m.error():
                    continue
                try:
                    decoded.append(wire.decode(m.value()))
                except DecodeError:
                    bad += 1
    finally:
        consumer.close()
    assert bad == len(sim.malformed)
    expected = [wire.codec.decode(wire.codec.encode(e)) for e in sim.events]  # scroll_depth is a float32
    assert decoded == expected
