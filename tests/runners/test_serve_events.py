"""POST /v1/events over real HTTP into a real Kafka-protocol broker: good events reach the topic in the wire
format (what the job reads), bad ones come back with their index and the field that is wrong, and the write
endpoint refuses a caller without the API key."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shiftstream.jobs.testing import create_topic, kafka_messages
from shiftstream.runners.local import free_port, wait_port
from shiftstream.schemas import MemoryRegistry, WireCodec
from tests.runners.test_serve import _get

pytestmark = [pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[2]
KEY = "test-api-key-0123456789"


def _post(port, body, key=KEY, raw=False, path="/v1/events"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        c.request("POST", path, body=body if raw else json.dumps(body), headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.fixture
def server(kafka_broker, redis_url, tmp_path):
    topic = f"api-events-{free_port()}"
    create_topic(kafka_broker.bootstrap, topic)
    create_topic(kafka_broker.bootstrap, topic + "-privacy")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"kafka": {"events_topic": topic, "privacy_topic": topic + "-privacy"},
                               "redis": {"url": redis_url},
                               "serve": {"max_events": 50}}))
    port = free_port()
    env = {**os.environ, "SHIFTSTREAM_API_KEY": KEY}
    p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "serve", "--config", str(cfg), "--port",
                          str(port), "--kafka-bootstrap", kafka_broker.bootstrap], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port(port, p, "shiftstream serve", 30)
        yield port, topic
    finally:
        os.killpg(p.pid, signal.SIGTERM)  # (it flushes its producer on the way out)
        p.wait(15)


def _event(i, **kw):
    return {"event_id": f"api-{i}", "user_id": f"u{i % 3}", "event_type": "page_view", "ts": 1_767_000_000_000 + i,
            "category": "books", "device": "mobile", **kw}


def test_good_events_reach_the_topic_in_the_wire_format_and_bad_ones_are_named(server, kafka_broker):
    port, topic = server
    no_id = _event(6)
    del no_id["event_id"]
    batch = [_event(0), _event(1), {**_event(2), "ts": "yesterday"}, _event(3), {**_event(4), "colour": "red"},
             "not an event", no_id]
    status, body = _post(port, {"events": batch})
    assert status == 202 and body["accepted"] == 3 and body["rejected"] == 4
    errors = {e["index"]: e["error"] for e in body["errors"]}
    assert errors == {2: "ts: expected long, got str 'yesterday'", 4: "colour: not a field of the Interaction schema",
                      5: "expected a JSON object (interaction), got str", 6: "event_id: required (expected string)"}
    wire = WireCodec(MemoryRegistry(), "interaction")
    deadline = time.monotonic() + 20
    got = []
    while len(got) < 3 and time.monotonic() < deadline:
        got = [wire.decode(m) for m in kafka_messages(kafka_broker.bootstrap, topic)]
        time.sleep(0.2)
    assert sorted(e["event_id"] for e in got) == ["api-0", "api-1", "api-3"]
    assert got[0]["category"] == "books"


def test_writes_need_the_key_and_bad_bodies_are_400_or_413(server):
    port, _ = server
    assert _post(port, {"events": [_event(0)]}, key=None)[0] == 401
    assert _post(port, {"events": [_event(0)]}, key="wrong")[0] == 401
    status, body = _post(port, b"{not json", raw=True)
    assert status == 400 and "not JSON" in body["error"]
    status, body = _post(port, {"events": "nope"})
    assert status == 400 and "events" in body["error"]
    status, body = _post(port, {"events": [_event(i) for i in range(51)]})
    assert status == 413 and "events" in body["error"]


def test_privacy_requests_reach_the_privacy_topic_with_an_id_and_a_time_filled_in(server, kafka_broker):
    port, topic = server
    reqs = [{"request_id": "r1", "user_id": "u1", "kind": "consent_revoked", "ts": 1_767_000_000_000},
            {"user_id": "u2", "kind": "erasure"}, {"user_id": "u3", "kind": "forget_everything"}]
    status, body = _post(port, {"requests": reqs}, path="/v1/privacy")
    assert status == 202 and body["accepted"] == 2 and body["errors"][0]["index"] == 2
    assert body["errors"][0]["error"].startswith("kind: expected one of consent_granted, consent_revoked, erasure")
    assert _post(port, {"user_id": "u4", "kind": "consent_granted"}, path="/v1/privacy")[1]["accepted"] == 1
    assert _post(port, {"user_id": "u4", "kind": "erasure"}, key=None, path="/v1/privacy")[0] == 401
    wire = WireCodec(MemoryRegistry(), "privacy_request")
    deadline = time.monotonic() + 20
    got = []
    while len(got) < 3 and time.monotonic() < deadline:
        got = [wire.decode(m) for m in kafka_messages(kafka_broker.bootstrap, topic + "-privacy")]
        time.sleep(0.2)
    assert [(r["user_id"], r["kind"]) for r in got] == [("u1", "consent_revoked"), ("u2", "erasure"),
                                                         ("u4", "consent_granted")]
    assert got[1]["request_id"] and got[1]["ts"] > 1_767_000_000_000 and got[1]["source"] == "api"


def _put(port, user, body, key=KEY):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        c.request("PUT", f"/v1/users/{user}/personalization", body=json.dumps(body), headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()



def test_a_personalization_level_goes_through_the_topic_and_the_job_and_the_api_honours_it(
        server, kafka_broker, redis_url):
    """PUT a level -> the privacy topic -> the reference job (which refuses an "off" user's events and writes the
    fallback) -> Redis -> GET: "off" answers the fallback flagged personalization_off, "basic" the segment
    without the individual signals, an untouched user everything."""
    from shiftstream.jobs.redis_sink import RedisSink
    from shiftstream.jobs.testing import run_reference
    from shiftstream.runners.simulator import SimConfig, simulate
    from shiftstream.transforms.config import load_config

    port, topic = server
    sim = simulate(SimConfig(users=6, events=600, seed=3, privacy_rate=0, malformed=0, too_late=0))
    u_off, u_basic, u_full = sorted(sim.truth["users"])[:3]
    assert _put(port, u_off, {"level": "off"}) == (202, {"accepted": 1, "rejected": 0, "errors": []})
    assert _put(port, u_basic, {"level": "basic"})[0] == 202
    status, body = _put(port, u_full, {"level": "most"})
    assert status == 400 and body["error"].startswith("level: expected one of off, basic, full")
    assert _put(port, u_full, {"level": "off"}, key=None)[0] == 401
    wire = WireCodec(MemoryRegistry(), "privacy_request")
    deadline, got = time.monotonic() + 20, []
    while len(got) < 2 and time.monotonic() < deadline:
        got = [wire.decode(m) for m in kafka_messages(kafka_broker.bootstrap, topic + "-privacy")]
        time.sleep(0.2)
    assert [(r["user_id"], r["kind"], r["level"]) for r in got] == [(u_off, "personalization", "off"),
                                                                   (u_basic, "personalization", "basic")]
    cfg = load_config()
    sink = RedisSink.from_config(cfg.replace(**{"redis.url": redis_url}))
    mid = len(sim.events) // 2
    job, _, _ = run_reference(sim.events, cfg, sink=sink, privacy=[(mid, r) for r in got])
    sink.close()
    assert job.stats["blocked.personalization_off"] == sum(1 for e in sim.events[mid:] if e["user_id"] == u_off)
    status, d = _get(port, f"/v1/decisions/{u_off}")
    assert status == 200 and d["fallback"] == "personalization_off" and d["personalization"] == "off"
    assert d["freshness"]["age_ms"] >= 0
    status, d = _get(port, f"/v1/decisions/{u_basic}")
    assert status == 200 and d["fallback"] is None and d["personalization"] == "basic"
    assert d["features"] == {} and d["top_categories"] == [] and d["segment"]
    status, d = _get(port, f"/v1/decisions/{u_full}")
    assert d["personalization"] == "full" and d["features"]["events_total"] > 0
