"""`shiftstream demo` end to end, as a new user runs it: it simulates, runs the job into its own redis-server,
prints decisions, then serves them; the curl line it prints works; Ctrl-C stops the API and its Redis."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_ends_serving_and_its_curl_line_works(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "demo", "--users", "200", "--events",
                          "12000", "--workdir", str(tmp_path / "demo")], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, url, dashboard = [], None, None
    try:
        deadline = time.monotonic() + 240
        while url is None or dashboard is None:
            assert time.monotonic() < deadline and p.poll() is None, "".join(lines)[-3000:]
            line = p.stdout.readline()
            lines.append(line)
            m = re.match(r"\s+curl -s (http://127\.0\.0\.1:\d+/v1/decisions/\S+)", line)
            if m:
                url = m.group(1)
            m = re.search(r"dashboard.*: http://127\.0\.0\.1:(\d+)/dashboard$", line.strip())
            if m:
                dashboard = int(m.group(1))
        host_port, path = url[len("http://"):].split("/", 1)
        c = http.client.HTTPConnection(*host_port.split(":"), timeout=10)
        c.request("GET", "/" + path)
        r = c.getresponse()
        d = json.loads(r.read())
        assert r.status == 200 and d["fallback"] is None and d["segment"], d
        c.request("GET", "/v1/dashboard")  # what the dashboard page draws: the demo run's snapshot
        snap = json.loads(c.getresponse().read())
        assert snap["job"]["counts"]["events"] > 10_000 and snap["job"]["segments"], snap
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0, out[-2000:]
        assert "Traceback" not in "".join(lines) + out
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
