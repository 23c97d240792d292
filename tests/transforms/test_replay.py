"""The replay method on logged uniformly random impressions: a learning policy's estimate rises above the log's,
a fixed policy's estimate is its arm's true rate, and a log that was not uniform is flagged."""
import json
import random
import subprocess
import sys

from shiftstream.transforms.config import load_config
from shiftstream.transforms.content import parse_slots
from shiftstream.transforms.outputs import Outcome
from shiftstream.transforms.replay import replay

MIN = 60_000
TRUTH = [0.05, 0.05, 0.30, 0.05]


def content(policy_name, **kw):
    slots = parse_slots([{"name": "hero", "policy": policy_name, "context": "none", "variants": ["a", "b", "c", "d"],
                          **kw}])
    return load_config().replace(**{"content.slots": slots, "content.epoch": MIN, "content.delay_epochs": 1,
                                    "content.attribution_window": 10 * MIN}).content


def log(n, seed=1, shares=(1, 1, 1, 1)):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        arm = rng.choices(range(4), weights=shares)[0]
        t = i * 1000  # 60 exposures per epoch
        out.append(Outcome(f"u{i % 500}", "hero", "*", arm, "abcd"[arm], None, float(rng.random() < TRUTH[arm]),
                           t + 10 * MIN, f"e{i}", None, False))
    return out


def test_a_learning_policy_replays_above_the_uniform_log_and_a_fixed_one_at_its_arms_rate():
    logged = log(40_000)
    learned = replay(content("thompson"), logged, 1)["hero"]
    assert learned["uniform_logging_p"] > 0.001
    assert 0.2 * 40_000 < learned["matched"] < 0.35 * 40_000  # about a quarter of the log is used
    assert learned["replay_ctr"] > 1.8 * learned["logged_ctr"]  # it found arm c (30%) against a 11% log
    fixed = replay(content("fixed", fallback="c"), logged, 1)["hero"]
    lo, hi = fixed["ctr_ci95"]
    assert lo <= TRUTH[2] <= hi and fixed["matched"] < 0.3 * 40_000
    assert replay(content("thompson"), logged, 1) == replay(content("thompson"), list(reversed(logged)), 1)


def test_a_log_that_was_not_uniform_is_flagged():
    skewed = replay(content("thompson"), log(8_000, shares=(4, 1, 1, 1)), 1)["hero"]
    assert skewed["uniform_logging_p"] < 1e-6


def test_the_command_reads_any_engines_outcomes_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"content": {"epoch": "1m", "attribution_window": "10m", "delay_epochs": 1, "slots": [
        {"name": "hero", "policy": "thompson", "context": "none", "variants": ["a", "b", "c", "d"]}]}}))
    f = tmp_path / "outcomes.jsonl"
    f.write_text("".join(json.dumps(o._asdict()) + "\n" for o in log(4_000)))
    run = [sys.executable, "-m", "shiftstream.runners.cli", "experiments", "replay", "--config", str(cfg)]
    r = subprocess.run(run + ["--outcomes", str(f), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hero"]["logged"] == 4_000
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"slot": "hero"}\n')
    r = subprocess.run(run + ["--outcomes", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "not an outcomes file" in r.stderr and "Traceback" not in r.stderr
