"""Live traffic: events stamped with the wall clock, through a real broker, reach their users' decisions in a real
Redis long before the allowed lateness (2 min) could pass, provisional, with the actions their triggers fired."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from shiftstream.jobs.redis_sink import decision_from_hash
from shiftstream.jobs.testing import create_topic
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]
LATENESS_S = load_config().event_time.allowed_lateness / 1000
PREFIX = load_config().redis.key_prefix


def _event(user, i, kind="page_view", **kw):
    return {"event_id": f"{user}-{i}", "user_id": user, "session_hint": None, "ts": int(time.time() * 1000),
            "event_type": kind, "item_id": None, "category": "books", "price": None, "dwell_ms": None,
            "scroll_depth": None, "hover_ms": None, "page_url": None, "query": None, "variant": None,
            "device": "desktop", **kw}


@pytest.mark.parametrize("runner", ["reference", pytest.param("flink", marks=[pytest.mark.flink, pytest.mark.slow])])
def test_wall_clock_events_are_decided_within_seconds_while_the_lateness_is_minutes(runner, kafka_broker,
                                                                                   redis_url, tmp_path):
    from confluent_kafka import Producer

    assert LATENESS_S >= 120  # the default: a settled-only decision would take this long
    topic = f"live-{runner}"
    create_topic(kafka_broker.bootstrap, topic)
    cfg = tmp_path / "live.yaml"
    cfg.write_text(yaml.safe_dump({
        "kafka": {"decisions_topic": f"{topic}-decisions", "dead_letter_topic": f"{topic}-dead",
                  "late_topic": f"{topic}-late", "group_id": f"{topic}-group"},
        "engine": {"checkpoint_dir": str(tmp_path / "checkpoints")}}))
    job = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", runner,
                            "--kafka-bootstrap", kafka_broker.bootstrap, "--topic", topic, "--redis-url", redis_url,
                            "--models", "none", "--config", str(cfg), "--out-dir", str(tmp_path / "out"), "--quiet"],
                           cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "job.log", "w"))
    wire = WireCodec(MemoryRegistry(), "interaction")
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 1})
    client = redis.Redis.from_url(redis_url)
    pseudo = Pseudonymiser(DEV_KEY)

    def decision(user):
        h = client.hgetall(PREFIX + pseudo(user))
        return decision_from_hash(pseudo(user), {k.decode(): v.decode() for k, v in h.items()}) if h else None

    def wait_for(user, ts, limit):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit:
            d = decision(user)
            if d is not None and d["event_time"] >= ts:
                return d, time.perf_counter() - t0
            assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
            time.sleep(0.005)
        return None, limit

    try:
        # the job is up once a warm-up event is decided (a Flink mini-cluster takes a while to start)
        deadline = time.monotonic() + 240
        i = 0
        while True:
            ev = _event("warm-up", i)
            producer.produce(topic, wire.encode(ev))
            producer.flush(5)
            i += 1
            if wait_for("warm-up", ev["ts"], 1.0)[0] is not None:
                break
            assert time.monotonic() < deadline, (tmp_path / "job.log").read_text()[-3000:]
        waits = []
        for n in range(20):  # one event at a time, each decided before the next is sent
            user = f"live-{n % 5}"
            ev = _event(user, n)
            producer.produce(topic, wire.encode(ev))
            producer.flush(5)
            d, took = wait_for(user, ev["ts"], 5.0)
            assert d is not None, f"event {n} not in its decision within 5 s"
            assert d["provisional"] > 0  # the watermark cannot have passed it: a provisional decision
            assert d["settled_through"] is None or d["settled_through"] < ev["ts"]
            waits.append(took)
        hover = _event("hoverer", 0, "hover", hover_ms=3500)
        short = _event("glancer", 0, "hover", hover_ms=800)
        scroll = _event("reader", 0, "scroll", scroll_depth=0.9)
        for ev in (hover, short, scroll):
            producer.produce(topic, wire.encode(ev))
        producer.flush(5)
        got = {ev["user_id"]: wait_for(ev["user_id"], ev["ts"], 5.0)[0] for ev in (hover, short, scroll)}
        assert got["hoverer"]["actions"] == [{"name": "show_reviews", "at": hover["ts"]}]
        assert got["glancer"]["actions"] == []  # 800 ms: the rule did not hold
        assert got["reader"]["actions"] == [{"name": "show_next_article", "at": scroll["ts"]}]
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        client.close()
    assert max(waits) < 5.0 < LATENESS_S
