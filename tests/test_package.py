"""The installable distribution: a wheel built from the repo, installed into a fresh venv outside it, claims only
the `shiftstream` name, carries its config, schemas and jar pins, and runs the core, `config check` and `simulate`."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EMBED = '''
from shiftstream import load_config, run_events
events = [{"event_id": f"e{i}", "user_id": "u1", "event_type": "page_view", "ts": 1_767_571_200_000 + i * 1000,
           "session_hint": None, "item_id": None, "category": "books", "price": None, "dwell_ms": 1200,
           "scroll_depth": None, "hover_ms": None, "page_url": None, "query": None, "variant": None,
           "device": "mobile"} for i in range(5)]
decisions = run_events(events, load_config())
(d,) = decisions.values()
print(d["segment"], d["top_categories"], d["features"]["session_events"])
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, env): the wheel installed without its dependencies; those come from the test's own venv
    through PYTHONPATH (no .pth files there run, so the checkout's editable install stays out)."""
    d = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(d),
                    str(ROOT)], check=True, cwd=d, capture_output=True)
    (wheel,) = d.glob("shiftstream-*.whl")
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"],
           "SHIFTSTREAM_PSEUDONYM_KEY": "a-test-key-of-at-least-sixteen-bytes"}
    return wheel, py, env, d


def test_the_wheel_claims_one_top_level_name_and_carries_its_data(installed):
    wheel = installed[0]
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"shiftstream", wheel.name.split("-py3")[0] + ".dist-info"}
    for data in ("shiftstream/config/default.yaml", "shiftstream/schemas/interaction.avsc",
                 "shiftstream/jobs/flink/jars.json", "shiftstream/jobs/flink/main.py"):
        assert data in names


def test_installed_outside_the_repo_it_runs_the_core_config_check_and_simulate(installed):
    _, py, env, d = installed
    where = subprocess.run([str(py), "-c", "import shiftstream; print(shiftstream.__file__)"], capture_output=True,
                           text=True, env=env, cwd=d, check=True).stdout.strip()
    assert where.startswith(str(d / "venv"))  # the installed copy, not the checkout
    r = subprocess.run([str(py), "-c", EMBED], capture_output=True, text=True, env=env, cwd=d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "5.0"
    cli = [str(d / "venv" / "bin" / "shiftstream")]
    r = subprocess.run(cli + ["config", "check"], capture_output=True, text=True, env=env, cwd=d)
    assert r.returncode == 0 and "embedded default: ok" in r.stdout, r.stderr
    r = subprocess.run(cli + ["simulate", "--users", "5", "--events", "500", "--out", str(d / "s.frames"),
                              "--quiet"], capture_output=True, text=True, env=env, cwd=d)
    assert r.returncode == 0 and (d / "s.frames").stat().st_size > 0, r.stderr


def test_the_readme_embedding_example_runs():
    """The README's example, taken from the README itself."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\nfrom shiftstream import")
    code = text[start + len("```python\n"):text.index("```", start + 10)]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "SHIFTSTREAM_PSEUDONYM_KEY": "a-test-key-of-at-least-sixteen-bytes"})
    assert r.returncode == 0, r.stderr
    assert "books" in r.stdout
