"""The command line's one error path, case by case: a user's mistake is one line on stderr that says what is wrong
and what to do, with a non-zero exit code; never a traceback, never a silent exit 0."""
from __future__ import annotations

import json
import os
import atexit
import shutil
import subprocess
import sys
import tempfile

import pytest

from shiftstream.runners.local import free_port

ENV = {**os.environ, "SHIFTSTREAM_PSEUDONYM_KEY": "a-test-key-of-at-least-sixteen-bytes"}
DEAD = f"127.0.0.1:{free_port()}"  # nothing listens here


AWAY = tempfile.mkdtemp(prefix="shiftstream-cli-")  # not the checkout: a .demo/models there would load and log
atexit.register(shutil.rmtree, AWAY, True)


def cli(*args, env=ENV, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd or AWAY, timeout=timeout)


def one_line_error(r, *words, code=None):
    """The run failed with exactly one line on stderr holding every word, and no traceback."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    if code is not None:
        assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    r = cli("simulate", "--users", 10, "--events", 1000, "--out", d / "events.frames", "--quiet")
    assert r.returncode == 0, r.stderr
    return d / "events.frames"


# -- silent failures are refused ---------------------------------------------------------------------------------

def test_a_missing_privacy_file_is_an_error_not_zero_requests(frames):
    one_line_error(cli("run", "--input", frames, "--privacy", frames.parent / "missing.avro"), "--privacy",
                   "no such file", code=2)


@pytest.mark.slow  # waits out the broker timeout twice
def test_a_dead_broker_is_named_at_once(tmp_path):
    for args in (("run", "--kafka-bootstrap", DEAD, "--idle-exit", 1, "--out-dir", tmp_path),
                 ("simulate", "--users", 5, "--events", 100, "--kafka-bootstrap", DEAD)):
        one_line_error(cli(*args, timeout=60), "cannot reach Kafka at " + DEAD, code=1)


def test_the_flink_runner_has_a_consumer_group_of_its_own():
    from shiftstream.runners.demo import run_arguments
    from shiftstream.runners.run import group_id
    from shiftstream.transforms.config import load_config

    cfg = load_config()
    ref = group_id(run_arguments(["--kafka-bootstrap", "x"]), cfg)
    flink = group_id(run_arguments(["--runner", "flink", "--kafka-bootstrap", "x"]), cfg)
    assert ref == cfg.kafka.group_id and flink != ref
    assert group_id(run_arguments(["--kafka-bootstrap", "x", "--group-id", "mine"]), cfg) == "mine"


# -- one line, no traceback ----------------------------------------------------------------------------------------

def test_bad_inputs(frames, tmp_path):
    (tmp_path / "events.json").write_text("{}")
    one_line_error(cli("run", "--input", tmp_path / "nope.frames"), "no such file", code=2)
    one_line_error(cli("run", "--input", tmp_path), "is a directory", code=2)
    one_line_error(cli("run", "--input", tmp_path / "events.json"), ".avro or .frames", code=2)
    (tmp_path / "events.avro").write_bytes(frames.read_bytes())
    one_line_error(cli("run", "--runner", "flink", "--input", tmp_path / "events.avro"), ".frames", code=2)
    one_line_error(cli("run"), "give one source", code=2)


def test_a_bad_config_names_the_key(frames, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sessions:\n  gap: banana\n")
    one_line_error(cli("run", "--input", frames, "--config", bad), "sessions.gap", "banana")
    one_line_error(cli("run", "--input", frames, "--config", tmp_path / "none.yaml"), "no such file")
    r = cli("config", "check", tmp_path)
    assert r.returncode == 1 and "is a directory" in r.stderr and "Traceback" not in r.stderr


def test_lookup_errors(redis_url):
    one_line_error(cli("lookup", "u1", "--redis-url", "http://127.0.0.1:1"), "redis://")
    one_line_error(cli("lookup", "u1", "--redis-url", f"redis://{DEAD}/0"), "cannot read Redis", "redis-server")
    one_line_error(cli("lookup", "nobody", "--redis-url", redis_url), "no decision for 'nobody'")


def test_lookup_hints_at_another_pseudonym_key(frames, redis_url, tmp_path):
    r = cli("run", "--input", frames, "--redis-url", redis_url, "--models", "none", "--out-dir", tmp_path, "--quiet")
    assert r.returncode == 0, r.stderr
    other = {**ENV, "SHIFTSTREAM_PSEUDONYM_KEY": "another-key-that-is-long-enough"}
    line = one_line_error(cli("lookup", "user-000001", "--redis-url", redis_url, env=other), "another pseudonym key")
    assert "SHIFTSTREAM_PSEUDONYM_KEY" in line
    assert cli("lookup", "user-000001", "--redis-url", redis_url).returncode == 0


def test_pseudonym_key_problems(frames, tmp_path):
    short = {**ENV, "SHIFTSTREAM_PSEUDONYM_KEY": "short"}
    one_line_error(cli("run", "--input", frames, env=short), "at least 16")
    strict = tmp_path / "strict.yaml"
    strict.write_text("privacy:\n  require_key: true\n")
    env = {k: v for k, v in ENV.items() if k != "SHIFTSTREAM_PSEUDONYM_KEY"}
    one_line_error(cli("run", "--input", frames, "--config", strict, env=env), "no pseudonym key", "require_key")


def test_redis_down_is_one_line_for_every_runner(frames):
    for runner in ("reference", "beam", "flink"):
        one_line_error(cli("run", "--runner", runner, "--input", frames, "--redis-url", f"redis://{DEAD}/0"),
                       "cannot reach Redis")


@pytest.mark.kafka
def test_flink_refuses_a_bounded_run_on_a_topic_that_does_not_exist(kafka_broker, redis_url):
    r = cli("run", "--runner", "flink", "--kafka-bootstrap", kafka_broker.bootstrap, "--topic", "no-such-topic",
            "--bounded", "--redis-url", redis_url)
    one_line_error(r, "no-such-topic", "does not exist", "never finish")


@pytest.mark.slow
def test_flink_with_a_dead_broker(redis_url):
    one_line_error(cli("run", "--runner", "flink", "--kafka-bootstrap", DEAD, "--redis-url", redis_url),
                   "cannot reach Kafka")


def test_deploy_without_a_cluster(tmp_path):
    one_line_error(cli("deploy", "--dir", tmp_path, "submit"), "shiftstream deploy start")
    one_line_error(cli("deploy", "--dir", tmp_path, "list"), "shiftstream deploy start")
    one_line_error(cli("deploy", "--dir", tmp_path, "stop", "0" * 32), "shiftstream deploy start")
    one_line_error(cli("deploy", "--dir", tmp_path, "shutdown"), "nothing to stop")


def test_broken_files_are_named(frames, tmp_path, redis_url):
    from shiftstream.runners.simulate import write_outputs
    from shiftstream.runners.simulator import SimConfig, simulate

    paths = write_outputs(simulate(SimConfig(users=5, events=300, seed=1)), tmp_path / "e.avro", 1)
    cut = tmp_path / "cut.avro"
    cut.write_bytes(paths["events"].read_bytes()[:-40])
    one_line_error(cli("run", "--input", cut, "--redis-url", redis_url, "--out-dir", tmp_path, "--quiet"), "--input",
                   "cut.avro")
    bad = tmp_path / "bad.frames"
    bad.write_bytes(b"\x00\x00\x00\x03abc")
    one_line_error(cli("run", "--input", frames, "--privacy", bad, "--redis-url", redis_url), "--privacy")
    one_line_error(cli("train", "--events", tmp_path / "missing.avro", "--out", tmp_path / "m"), "no such file",
                   code=2)
    one_line_error(cli("models", "compare", "--models", tmp_path, "--events", frames), "LIVE pointer", code=2)
    (tmp_path / "models").mkdir()
    for runner in ("reference", "beam"):
        one_line_error(cli("run", "--runner", runner, "--input", frames, "--models", tmp_path / "models",
                           "--redis-url", redis_url, "--out-dir", tmp_path), "models:")


def test_a_closed_pipe_is_quiet(tmp_path):
    """The reader closes its end before the command writes anything: the write fails with EPIPE."""
    r = subprocess.run(f"set -o pipefail; {sys.executable} -m shiftstream.runners.cli config check "
                       f"| {{ exec 0<&-; sleep 3; }}", shell=True, executable="/bin/bash", capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 141 and r.stderr == "", (r.returncode, r.stderr)


def test_sources_a_runner_cannot_read_are_refused(frames):
    one_line_error(cli("run", "--runner", "beam", "--kafka-bootstrap", DEAD), "event files only", code=2)
    one_line_error(cli("run", "--kafka-bootstrap", DEAD, "--privacy", frames), "--privacy", "--privacy-topic",
                   code=2)
    one_line_error(cli("run", "--runner", "flink", "--kafka-bootstrap", DEAD, "--idle-exit", "0"), "--idle-exit",
                   code=2)


# -- options that do not apply are refused -------------------------------------------------------------------------

@pytest.mark.parametrize("args,flag", [
    (("--runner", "reference", "--bounded"), "--bounded"),
    (("--runner", "reference", "--from-checkpoint", "latest"), "--from-checkpoint"),
    (("--runner", "beam", "--flink-mode", "thread"), "--flink-mode"),
    (("--runner", "flink", "--beam-runner", "FnApiRunner"), "--beam-runner"),
    (("--runner", "beam", "--privacy", "x.avro"), "--privacy"),
    (("--topic", "t"), "--topic"),
    (("--group-id", "g"), "--group-id"),
    (("--idle-exit", "0"), "--idle-exit"),  # 0 is a value, not "not given"
])
def test_options_that_do_not_apply_are_refused(frames, args, flag):
    one_line_error(cli("run", "--input", frames, *args), flag, "does not apply", code=2)


def test_version_and_json_logs(frames, tmp_path):
    import shiftstream

    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"shiftstream {shiftstream.__version__}"
    env = {k: v for k, v in ENV.items() if k != "SHIFTSTREAM_PSEUDONYM_KEY"}
    r = cli("--log-format", "json", "run", "--input", frames, "--redis-url", f"redis://{DEAD}/0", env=env)
    records = [json.loads(x) for x in r.stderr.splitlines()]
    assert r.returncode == 1 and {x["level"] for x in records} == {"warning", "error"}
    assert any("cannot reach Redis" in x["msg"] for x in records)


def test_debug_shows_the_traceback(frames):
    r = cli("--debug", "run", "--input", frames, "--redis-url", f"redis://{DEAD}/0")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_the_deploy_submit_usage_does_not_require_what_has_a_default():
    r = cli("deploy", "submit", "--help")
    assert r.returncode == 0 and "[--kafka-bootstrap KAFKA_BOOTSTRAP]" in " ".join(r.stdout.split())
