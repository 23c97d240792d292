"""Observability end to end, every part real and on loopback: a site's events posted to `shiftstream serve`, produced
to a Kafka-protocol broker, consumed by the running reference job (with --metrics-port), decisions and the job's
snapshot in a redis-server; a real `prometheus` scraping the API and the job and answering a query; the dashboard
loaded in a real headless Chromium, every panel drawn from that run's data, and a screenshot kept as an artifact
(test-artifacts/dashboard.png). Each process is started here and stopped by its pid."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from shiftstream.jobs.testing import create_topic
from shiftstream.runners.local import LocalRedis, free_port, wait_port
from shiftstream.runners.simulator import SimConfig, simulate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SHIFTSTREAM_ARTIFACTS", ROOT / "test-artifacts"))
KEY = "observability-test-key-0123"
PANELS = ("p-events", "p-latency", "p-segments", "p-shifts", "p-dead", "p-arms", "p-shares", "p-triggers", "p-api")
# series the dashboard names that this run has no cause to have (Prometheus keeps no series without samples)
NOT_IN_THIS_RUN = {"shiftstream_job_model_info"}  # no model set (--models none)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def _need(binary):
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run `make setup` (runners/setup.sh installs it)")
    return path


def _start(cmd, env=None, cwd=ROOT):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _job_events(port):
    m = re.search(r"^shiftstream_job_events_total (\S+)$", _get(f"http://127.0.0.1:{port}/metrics"), re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def live(kafka_broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observability")
    topic = f"obs-events-{free_port()}"
    create_topic(kafka_broker.bootstrap, topic)
    create_topic(kafka_broker.bootstrap, topic + "-privacy")
    procs = []
    with LocalRedis() as redis_server:
        cfg = yaml.safe_load((ROOT / "config" / "content-example.yaml").read_text())
        cfg.update(redis={"url": redis_server.url}, kafka={"events_topic": topic, "privacy_topic": topic + "-privacy"},
                   metrics={"publish_interval": "200ms"}, engine={"checkpoint_dir": str(tmp / "cp")},
                   # live traffic over a few seconds: facts and outcomes settle within the run
                   event_time={"allowed_lateness": "200ms"}, sessions={"gap": "1s"})
        cfg["content"]["attribution_window"] = "1s"
        path = tmp / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "SHIFTSTREAM_API_KEY": KEY}
        job_port, api_port = free_port(), free_port()
        try:
            job = _start([sys.executable, "-m", "shiftstream.runners.cli", "run", "--config", str(path),
                          "--kafka-bootstrap", kafka_broker.bootstrap, "--metrics-port", str(job_port),
                          "--models", "none", "--out-dir", str(tmp / "out"), "--quiet"], env)
            procs.append(job)
            api = _start([sys.executable, "-m", "shiftstream.runners.cli", "serve", "--config", str(path),
                          "--port", str(api_port), "--kafka-bootstrap", kafka_broker.bootstrap], env)
            procs.append(api)
            wait_port(job_port, job, "the job's metrics", 60)
            wait_port(api_port, api, "shiftstream serve", 30)
            # a short simulated run sent as a site's tag would, live: ~1,000 events/s for 4 s, each stamped with
            # the wall clock as it is sent (so the latencies measured are the real path's: API, broker, job, Redis)
            sim = simulate(SimConfig(users=60, events=4000, seed=21, malformed=0, privacy_rate=0))
            events = list(sim.events)
            accepted, batch = 0, 40
            c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
            for i in range(0, len(events), batch):
                now = int(time.time() * 1000)
                body = [{**e, "ts": now} for e in events[i:i + batch]]
                if i == 0:
                    body.append({"event_id": "broken", "user_id": "u", "event_type": "click", "ts": "soon"})
                c.request("POST", "/v1/events", body=json.dumps({"events": body}),
                          headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
                r = c.getresponse()
                assert r.status == 202
                accepted += json.loads(r.read())["accepted"]
                time.sleep(0.04)
            c.close()
            assert accepted == len(events)
            from confluent_kafka import Producer

            p = Producer({"bootstrap.servers": kafka_broker.bootstrap})
            p.produce(topic, b"\x00not avro")  # a message no tag would send: a dead letter, by its reason
            p.flush(10)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (_job_events(job_port) < accepted or "shiftstream_job_dead_letters_"
                                                   "total 1.0" not in _get(f"http://127.0.0.1:{job_port}/metrics")):
                assert job.poll() is None, job.stderr.read().decode()[-2000:]
                time.sleep(0.3)
            assert _job_events(job_port) == accepted
            time.sleep(0.6)  # a few more snapshots published: the dashboard's history has points to draw
            yield {"job_port": job_port, "api_port": api_port, "accepted": accepted, "tmp": tmp, "sim": sim}
        finally:
            for p in reversed(procs):
                _stop(p)


def test_prometheus_scrapes_the_api_and_the_job_and_answers_a_query(live):
    prometheus = _need("prometheus")
    tmp, port = live["tmp"], free_port()
    # the shipped scrape config and alerting rules, pointed at this run's ports and scraping every second
    shipped = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
    shipped["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    ports = {"shiftstream-api": live["api_port"], "shiftstream-job": live["job_port"]}
    for sc in shipped["scrape_configs"]:
        sc["static_configs"] = [{"targets": [f"127.0.0.1:{ports[sc['job_name']]}"]}]
    shutil.copy(ROOT / "config" / "prometheus-alerts.yml", tmp / "prometheus-alerts.yml")
    conf = tmp / "prometheus.yml"
    conf.write_text(yaml.safe_dump(shipped))
    promtool = _need("promtool")
    check = subprocess.run([promtool, "check", "config", str(conf)], capture_output=True, text=True, cwd=tmp)
    assert check.returncode == 0, check.stdout + check.stderr
    p = _start([prometheus, f"--config.file={conf}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], cwd=tmp)
    try:
        wait_port(port, p, "prometheus", 30)
        deadline = time.monotonic() + 30
        while True:  # the port opens before the storage is ready (503 until then)
            try:
                _get(f"http://127.0.0.1:{port}/-/ready")
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "prometheus never became ready"
                time.sleep(0.2)

        def query(q):
            body = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})))
            return {r["metric"].get("job"): float(r["value"][1]) for r in body["data"]["result"]}

        deadline, got, api = time.monotonic() + 40, {}, {}
        while time.monotonic() < deadline and not (got and api):
            got = query("shiftstream_job_events_total")
            api = query('shiftstream_api_records_total{endpoint="events",result="accepted"}')
            time.sleep(0.5)
        assert got == {"shiftstream-job": live["accepted"]}
        assert api == {"shiftstream-api": live["accepted"]}
        up = query("up")
        assert up == {"shiftstream-api": 1.0, "shiftstream-job": 1.0}
        assert query("shiftstream_job_decision_latency_seconds_count")["shiftstream-job"] > 0
        # every expression of the shipped Grafana dashboard is valid PromQL over these metrics, and the job's
        # and the API's series it names exist (a renamed metric would leave a panel empty)
        grafana = json.loads((ROOT / "config" / "grafana-dashboard.json").read_text())
        names = set(json.loads(_get(f"http://127.0.0.1:{port}/api/v1/label/__name__/values"))["data"])
        missing = set()
        for panel in grafana["panels"]:
            for target in panel["targets"]:
                body = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/query?" +
                                       urllib.parse.urlencode({"query": target["expr"]})))
                assert body["status"] == "success", (panel["title"], body)
                missing |= set(re.findall(r"shiftstream_[a-z_]+", target["expr"])) - names
        assert missing == NOT_IN_THIS_RUN, missing
        rules = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/rules"))["data"]["groups"]
        assert rules and all(r["health"] in ("ok", "unknown") for g in rules for r in g["rules"])
        assert {r["name"] for g in rules for r in g["rules"]} >= {"ShiftstreamDeadLettersHigh", "ShiftstreamApiSlow"}
    finally:
        _stop(p)


def test_the_dashboard_draws_every_panel_from_the_run_in_a_real_browser(live):
    chromium = _need("chromium")
    tmp, url = live["tmp"], f"http://127.0.0.1:{live['api_port']}/dashboard"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chrome-dom'}",
                          "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    ready = dict(re.findall(r'<section id="(p-[a-z]+)"[^>]*data-ready="(\d)"', dom.stdout))
    assert ready == {p: "1" for p in PANELS}, ready
    assert int(re.search(r'data-polls="(\d+)"', dom.stdout).group(1)) >= 2  # it polled, and drew again
    peak = re.search(r'id="events-now" data-peak="(\d+)"', dom.stdout)
    assert peak and int(peak.group(1)) > 0  # events/s from the run's history, drawn
    assert "<path" in dom.stdout.split('id="events-chart"')[1].split("</svg>")[0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    r = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chrome-shot'}", "--window-size=1400,1150",
                        "--virtual-time-budget=5000", "--hide-scrollbars", f"--screenshot={shot}", url],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0 and shot.stat().st_size > 20_000, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
