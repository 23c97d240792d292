"""`shiftstream train`, `models compare` and `run --models` as a user runs them."""
import json
import subprocess
import sys

import pytest

from shiftstream.runners.simulate import write_outputs
from shiftstream.runners.simulator import SimConfig, simulate


def cli(*args):
    return subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # trains two model sets through the CLI
def test_train_then_shadow_then_compare_then_run(tmp_path, redis_url):
    sim = simulate(SimConfig(users=120, events=12_000, seed=23))
    paths = write_outputs(sim, tmp_path / "events.avro", 23)
    models = tmp_path / "models"
    small = ["--max-rows", 3000, "--trees", 10, "--epochs", 1]
    r = cli("train", "--events", paths["events"], "--truth", paths["truth"], "--out", models, "--version", "v1", *small)
    assert r.returncode == 0, r.stderr
    assert (models / "LIVE").read_text().strip() == "v1" and (models / "v1" / "propensity.onnx").exists()
    r = cli("train", "--events", paths["events"], "--out", models, "--version", "v2", "--shadow", *small[:2],
            "--trees", 4, "--epochs", 1)
    assert r.returncode == 0, r.stderr
    assert (models / "SHADOW").read_text().strip() == "v2" and (models / "LIVE").read_text().strip() == "v1"
    r = cli("models", "compare", "--models", models, "--events", paths["events"], "--rows", 2000)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["live"].endswith("propensity:v1") and "propensity:v2" in report["shadow"]
    assert 0 < report["propensity"]["mean_abs_delta"] < 1 and 0 <= report["clusters"]["same_label"] <= 1
    r = cli("run", "--input", paths["events"], "--redis-url", redis_url, "--models", models, "--out-dir", tmp_path,
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert "models: live clusters:v1;next_interest:v1;propensity:v1, shadow" in r.stdout
    import redis

    c = redis.Redis.from_url(redis_url)
    assert c.keys("ss:shadow:*") and c.keys("ss:d:*")
    k = c.keys("ss:d:*")[0]
    assert c.hget(k, "model_version") == b"clusters:v1;next_interest:v1;propensity:v1"


def test_run_refuses_a_models_dir_without_a_usable_set(tmp_path, redis_url):
    (tmp_path / "LIVE").write_text("v9\n")
    sim = simulate(SimConfig(users=10, events=500, seed=1))
    paths = write_outputs(sim, tmp_path / "e.avro", 1)
    r = cli("run", "--input", paths["events"], "--redis-url", redis_url, "--models", tmp_path, "--quiet")
    assert r.returncode == 1 and "no usable live model set" in r.stderr and "v9" in r.stderr
