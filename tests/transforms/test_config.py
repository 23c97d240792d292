import subprocess
import sys

import pytest

from shiftstream.transforms.config import ConfigError, config_from_dict, load_config, parse_duration


def test_default_file_loads_with_typed_durations():
    cfg = load_config()
    assert cfg.sessions.gap == 30 * 60_000
    assert cfg.windows.sliding == (300_000, 3_600_000, 86_400_000)
    assert cfg.batching.flush_interval == 50
    assert [r.name for r in cfg.segments.rules][:2] == ["engaged_browser", "quick_visitor"]


@pytest.mark.parametrize("text, ms", [("200ms", 200), ("30s", 30_000), ("5m", 300_000), ("1.5h", 5_400_000), (2, 2000)])
def test_durations(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("data, words", [
    ({"sessions": {"gapp": "5m"}}, "sessions.gapp: unknown key"),
    ({"sesions": {}}, "sesions: unknown section"),
    ({"sessions": {"gap": "-5m"}}, "sessions.gap: expected a duration"),
    ({"sessions": {"gap": "5h"}}, "sessions.max_length: must be longer than sessions.gap"),
    ({"batching": {"micro_batch_size": 0}}, "batching.micro_batch_size: must be at least 1"),
    ({"engine": {"execution_mode": "fast"}}, "engine.execution_mode: must be one of thread, process"),
    ({"redis": {"url": "http://x"}}, "redis.url: must start with redis://"),
    ({"shift": {"threshold": 2}}, "shift.threshold: must be between 0.0 and 1.0"),
    ({"segments": {"rules": [{"name": "x"}]}}, "rule 0 must have exactly the keys name and when"),
])
def test_bad_values_name_the_key_and_why(data, words):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(data)
    assert any(words in p for p in exc.value.problems), exc.value.problems


def test_a_partial_file_keeps_the_other_defaults():
    cfg = config_from_dict({"sessions": {"gap": "10m"}})
    assert cfg.sessions.gap == 600_000 and cfg.sessions.max_length == 4 * 3_600_000
    assert len(cfg.segments.rules) == 4


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"sessions": {"gap": "x"}, "redis": {"ttl": "y"}})
    assert len(exc.value.problems) == 2


def test_config_check_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sessions:\n  gap: soon\n")
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "config", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "sessions.gap" in r.stderr
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "config", "check", "config/default.yaml"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout
