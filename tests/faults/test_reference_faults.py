"""The reference runner (and the PyFlink job under a Redis outage) under faults, with a real broker and a real
redis-server (bench/faults.py has the drivers): each run ends with Redis key by key equal to the same input run
without the fault, and no dead letter or late event of that run missing from (or doubled in) the side outputs."""
from __future__ import annotations

import time

import pytest

from bench import faults

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _no_loss(o: faults.Outcome) -> None:
    assert o.decisions > 0
    assert (o.differ, o.dead_lost, o.late_lost, o.duplicated) == (0, 0, 0, 0), o.row()


def test_kill_9_and_restart_loses_nothing(kafka_broker, redis_url, tmp_path):
    _no_loss(faults.kill9(kafka_broker.bootstrap, redis_url, tmp_path, events=4000, users=40))


def test_ctrl_c_checkpoints_between_messages_and_a_restart_resumes_exactly(kafka_broker, redis_url, tmp_path):
    import signal

    _no_loss(faults.kill9(kafka_broker.bootstrap, redis_url, tmp_path, events=4000, users=40, sig=signal.SIGINT))


def test_a_redis_outage_is_waited_out_and_loses_nothing(kafka_broker, tmp_path):
    from shiftstream.runners.local import LocalRedis

    with LocalRedis() as server:  # its own server: this test stops and restarts it
        o = faults.redis_outage(kafka_broker.bootstrap, server, tmp_path, outage_s=8, events=4000, users=40)
    assert o.notes["runner alive during the outage"]
    _no_loss(o)


def test_a_broker_restart_loses_nothing(redis_url, tmp_path):
    from shiftstream.runners.local import LocalKafka

    with LocalKafka() as broker:  # its own broker: this test stops and restarts it
        _no_loss(faults.broker_restart(broker, redis_url, tmp_path, events=4000, users=40))


def test_the_simulators_producer_survives_a_broker_restart(tmp_path):
    import threading

    from shiftstream.jobs.testing import kafka_messages
    from shiftstream.runners.local import LocalKafka
    from shiftstream.runners.simulate import produce
    from shiftstream.runners.simulator import SimConfig, simulate
    from shiftstream.schemas import MemoryRegistry, WireCodec

    sim = simulate(SimConfig(users=30, events=60000, seed=44, malformed=0, privacy_rate=0))
    with LocalKafka() as broker:
        done: dict = {}
        t = threading.Thread(target=lambda: done.update(sent=produce(sim, broker.bootstrap, "sim-restart",
                                                                     "sim-restart-privacy", 20000, False)))
        t.start()
        time.sleep(1.0)  # mid-production
        broker.halt()
        time.sleep(2.0)
        broker.start()
        t.join(180)
        assert done.get("sent") == len(sim.events)
        wire = WireCodec(MemoryRegistry(), "interaction")
        got = {wire.decode(m)["event_id"] for m in kafka_messages(broker.bootstrap, "sim-restart")}
    assert got == {e["event_id"] for e in sim.events}  # every event delivered (redeliveries are the job's to drop)


@pytest.mark.flink
def test_the_pyflink_job_waits_out_a_redis_outage_and_loses_nothing(tmp_path):
    from shiftstream.runners.local import LocalRedis

    with LocalRedis() as server:
        o = faults.flink_redis_outage(server, tmp_path, outage_s=8, events=30_000, users=300)
    assert o.notes["outage began mid-run"] and o.notes["job alive during the outage"], o.row()
    _no_loss(o)
