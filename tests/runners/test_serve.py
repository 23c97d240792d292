"""`shiftstream serve` over real HTTP on loopback, against a real redis-server: a decision as the job wrote it,
its freshness, the fallback for a missing user and for a Redis that is down (never a 500), readiness, and errors
as JSON. The server is started as a process and stopped by its pid."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import run_reference
from shiftstream.runners.local import LocalRedis, free_port, wait_port
from shiftstream.transforms.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.fixture
def served(tmp_path):
    """A redis-server of the test's own (so it can be stopped), the content example's decisions for a small
    simulated run in it, and `shiftstream serve` on a free port in front of it."""
    cfg_data = yaml.safe_load((ROOT / "config" / "content-example.yaml").read_text())
    with LocalRedis() as redis_server:
        cfg_data["redis"] = {"url": redis_server.url}
        cfg_data["serve"] = {"redis_timeout": "200ms"}
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg_data))
        cfg = load_config(path)
        from shiftstream.runners.simulator import SimConfig, simulate

        sim = simulate(SimConfig(users=30, events=1500, seed=5, malformed=0, privacy_rate=0))
        sink = RedisSink.from_config(cfg)
        run_reference(sim.events, cfg, sink=sink)
        sink.close()
        port = free_port()
        p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "serve", "--config", str(path),
                              "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            wait_port(port, p, "shiftstream serve", 30)
            assert _get(port, "/healthz")[0] == 200
            yield port, cfg, sim, redis_server
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)


def test_a_decision_as_the_job_wrote_it_with_its_freshness(served):
    port, cfg, sim, _ = served
    user = sim.events[0]["user_id"]
    status, d = _get(port, f"/v1/decisions/{user}")
    assert status == 200 and d["fallback"] is None
    assert set(d["content"]) == {s.name for s in cfg.content.slots} and d["segment"]
    assert d["freshness"]["age_ms"] >= 0 and d["freshness"]["settled"] is True  # a bounded run: all settled
    assert d["user_key"] != user  # the id was pseudonymised, never stored or returned raw


def test_a_missing_user_gets_each_slots_fallback_flagged_not_an_error(served):
    port, cfg, _, _ = served
    status, d = _get(port, "/v1/decisions/nobody-we-know")
    assert status == 200 and d["fallback"] == "no_decision"
    assert {k: v["variant"] for k, v in d["content"].items()} == \
        {s.name: s.variants[s.fallback_index].id for s in cfg.content.slots}


def test_redis_down_gives_the_fallback_and_not_ready(served):
    port, _, sim, redis_server = served
    assert _get(port, "/readyz") == (200, {"status": "ok", "redis": "ok"})
    redis_server.halt(save=False)
    t0 = time.monotonic()
    status, d = _get(port, f"/v1/decisions/{sim.events[0]['user_id']}")
    assert status == 200 and d["fallback"] in ("redis_unavailable", "redis_timeout")
    assert time.monotonic() - t0 < 2  # within the timeout budget, not a hang
    status, body = _get(port, "/readyz")
    assert status == 503 and body["status"] == "unavailable"


def test_errors_are_json(served):
    port = served[0]
    status, body = _get(port, "/nothing/here")
    assert status == 404 and "no such resource" in body["error"]
    status, body = _get(port, "/v1/decisions/" + "x" * 300)
    assert status == 400 and "user_id" in body["error"]


def test_a_taken_port_is_one_line_and_a_non_zero_exit(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "serve", "--port", str(port)],
                           cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "cannot listen" in r.stderr and "Traceback" not in r.stderr


def test_metrics_in_prometheus_text(served):
    port, _, sim, _ = served
    _get(port, f"/v1/decisions/{sim.events[0]['user_id']}")
    _get(port, "/v1/decisions/nobody-at-all")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    assert r.status == 200 and r.getheader("content-type").startswith("text/plain")
    assert 'shiftstream_api_requests_total{route="decisions",status="200"} 2.0' in text
    assert 'shiftstream_api_fallbacks_total{reason="no_decision"} 1.0' in text
    assert 'shiftstream_api_request_seconds_bucket{le="0.00025",route="decisions"}' in text


@pytest.mark.parametrize("argv,says", [(["--host", "999.1.1.1"], "not an address of this machine"),
                                       (["--redis-url", "foo://x"], "redis.url / --redis-url"),
                                       (["--port", "0"], "expected 1 to 65535")])
def test_a_bad_setting_is_one_line_and_a_non_zero_exit(argv, says):
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "serve", *argv], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr and "unexpected" not in r.stderr


def test_json_access_logs_one_object_a_line(tmp_path):
    """`--log-format json` with serve.access_log: a JSON object per request on stderr (route, status, ms)."""
    with LocalRedis() as redis_server:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"redis": {"url": redis_server.url}, "serve": {"access_log": True}}))
        port = free_port()
        p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "--log-format", "json", "serve",
                              "--config", str(path), "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, text=True)
        try:
            wait_port(port, p, "shiftstream serve", 30)
            assert _get(port, "/v1/decisions/someone")[0] == 200
            assert _get(port, "/nothing")[0] == 404
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            _, err = p.communicate(timeout=10)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON, or this fails
    access = [r for r in lines if r["msg"] == "request"]
    assert [(r["route"], r["status"]) for r in access] == [("decisions", 200)]
    assert access[0]["ms"] >= 0 and access[0]["level"] == "info" and access[0]["logger"] == "shiftstream.serve"
