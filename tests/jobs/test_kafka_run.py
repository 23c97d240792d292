"""`shiftstream run` reading a real Kafka-protocol broker: same decisions as a file run, offsets committed."""
import re
import subprocess
import sys

import pytest

from shiftstream.jobs.testing import redis_decisions, run_reference
from shiftstream.runners.simulate import produce
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec

pytestmark = pytest.mark.kafka


def test_kafka_run_matches_a_file_run_and_commits_offsets(kafka_broker, redis_url, tmp_path):
    from confluent_kafka import Consumer, TopicPartition

    sim = simulate(SimConfig(users=40, events=4000, seed=31, privacy_rate=0))
    sent = produce(sim, kafka_broker.bootstrap, "kr-events", "kr-privacy", rate=None, progress=False)
    cmd = [sys.executable, "-m", "shiftstream.runners.cli", "run", "--kafka-bootstrap", kafka_broker.bootstrap,
           "--topic", "kr-events", "--privacy-topic", "kr-privacy", "--idle-exit", "3", "--redis-url", redis_url, "--models", "none",
           "--out-dir", str(tmp_path), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"{len(sim.events):,} events" in r.stdout
    assert f"dead_letters {len(sim.malformed)}" in r.stdout
    from_kafka = redis_decisions(redis_url)

    wire = WireCodec(MemoryRegistry(), "interaction")
    _, mem, _ = run_reference(list(wire_messages(sim, wire)), messages=True)
    assert from_kafka == mem.stable()

    c = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "shiftstream"})
    committed = c.committed([TopicPartition("kr-events", 0)], timeout=10)
    c.close()
    assert committed[0].offset == sent
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and re.search(r": 0 events", again.stdout), again.stdout
