"""`shiftstream deploy` on a real standalone Flink cluster (JobManager and TaskManager processes from the wheel's
distribution), a real Kafka-protocol broker and a real redis-server: submit, stop with a savepoint mid-stream,
resume from it, drain; the final Redis equals the reference runner's."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from shiftstream.jobs.testing import create_topic, redis_decisions, run_reference
from shiftstream.runners.deploy import Cluster
from shiftstream.jobs.kafka import wait_committed
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec

pytestmark = [pytest.mark.slow, pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[2]


def _deploy(home, *args):
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "deploy", "--dir", str(home), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


def _produce(bootstrap, topic, msgs):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for m in msgs:
        p.produce(topic, m)
    assert p.flush(30) == 0


def test_submit_stop_with_savepoint_resume_and_drain(kafka_broker, redis_url, tmp_path):
    sim = simulate(SimConfig(users=40, events=4000, seed=43, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                             duplicates=0.05, malformed=0.01, privacy_rate=0))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    half = len(msgs) // 2
    conf = tmp_path / "job.yaml"
    conf.write_text(yaml.safe_dump({"kafka": {"group_id": "dep-group", "decisions_topic": "dep-decisions",
                                              "dead_letter_topic": "dep-dead", "late_topic": "dep-late"},
                                    "engine": {"checkpoint_interval": "1s"}}))
    home = tmp_path / "cluster"
    create_topic(kafka_broker.bootstrap, "dep-events")
    _produce(kafka_broker.bootstrap, "dep-events", msgs[:half])
    submit = ["submit", "--kafka-bootstrap", kafka_broker.bootstrap, "--topic", "dep-events", "--redis-url",
              redis_url, "--models", "none", "--config", str(conf)]
    try:
        assert "cluster up" in _deploy(home, "start", "--config", str(conf))
        cluster = Cluster(home)
        pids = cluster.pids()
        assert len(pids) == 2  # a JobManager and a TaskManager process
        job = _deploy(home, *submit).split()[2]
        wait_committed(kafka_broker.bootstrap, "dep-group-flink", "dep-events", half, timeout_s=120)
        # the job's counters in Flink's metric system, read back through the cluster's REST API
        ref_half, _, _ = run_reference(msgs[:half], messages=True)
        deadline, got = time.monotonic() + 30, {}
        while time.monotonic() < deadline and got.get("events") != ref_half.stats["events"]:
            got = json.loads(_deploy(home, "metrics", job))
            time.sleep(0.5)
        assert got["events"] == ref_half.stats["events"] and got["decisions_written"] > 0, got
        out = _deploy(home, "stop", job)
        savepoint = out.rsplit("savepoint ", 1)[1].strip()
        assert cluster.state(job) == "FINISHED" and Path(savepoint.replace("file:", "")).exists()
        partial = redis_decisions(redis_url)
        assert partial

        _produce(kafka_broker.bootstrap, "dep-events", msgs[half:])
        out = _deploy(home, *submit, "--from-savepoint", savepoint)
        assert "restored from" in out
        job2 = out.split()[2]
        wait_committed(kafka_broker.bootstrap, "dep-group-flink", "dep-events", len(msgs), timeout_s=120)
        final = _deploy(home, "stop", job2, "--drain").rsplit("savepoint ", 1)[1].strip()
        # the input has ended: every session closed, the last decisions written; that state is not for resuming
        refused = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "deploy", "--dir", str(home), *submit,
                                  "--from-savepoint", final], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "drain" in refused.stderr
    finally:
        _deploy(home, "shutdown")
    assert not any(Path(f"/proc/{p}").exists() for p in pids)
    _, mem, _ = run_reference(msgs, messages=True)
    assert redis_decisions(redis_url) == mem.stable()
