"""Security: Redis ACL users, TLS and secrets from the environment; nothing printed that holds a secret; every
socket a run listens on is on loopback."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shiftstream.jobs.redis_sink import RedisAuthError, RedisSink
from shiftstream.runners.local import free_port, process_tree, wait_port

CLI = [sys.executable, "-m", "shiftstream.runners.cli"]
SECRET = "s3cret-Pa55word"


def _decision(key="u1"):
    return {"user_key": key, "segment": "general", "ml_segment": None, "shift": {"detected": False},
            "top_categories": [], "features": {}, "scores": {}, "chosen_content": None, "experiment_arm": None,
            "model_version": None, "actions": [], "event_time": 1, "settled_through": None, "provisional": 0, "updated_at": 2}


@pytest.fixture
def acl_redis(tmp_path):
    """A redis-server whose default user is off and whose one user is `alice` with a password."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
                             str(tmp_path), "--user", "default", "off", "--user", "alice", "on", f">{SECRET}",
                             "~*", "&*", "+@all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, "redis-server (ACL)", 10)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_redis_acl_user_authenticates_and_a_wrong_password_is_one_clear_error(acl_redis):
    import redis

    sink = RedisSink(f"redis://alice:{SECRET}@127.0.0.1:{acl_redis}/0")
    sink.write([_decision()])
    sink.close()
    r = redis.Redis(port=acl_redis, username="alice", password=SECRET)
    assert r.hget("ss:d:u1", "segment") == b"general"
    with pytest.raises(RedisAuthError, match="refused the credentials"):
        RedisSink(f"redis://alice:wrong@127.0.0.1:{acl_redis}/0")


def test_the_password_comes_from_the_environment_and_is_never_printed(acl_redis, tmp_path):
    frames = tmp_path / "e.frames"
    subprocess.run(CLI + ["simulate", "--users", "5", "--events", "200", "--out", str(frames)], check=True,
                   capture_output=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"redis:\n  url: redis://alice@127.0.0.1:{acl_redis}/0\n  password_env: TEST_REDIS_PASSWORD\n")
    env = {**os.environ, "TEST_REDIS_PASSWORD": SECRET}
    r = subprocess.run(CLI + ["--log-level", "debug", "run", "--input", str(frames), "--config", str(cfg),
                              "--out-dir", str(tmp_path / "o"), "--models", "none"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "decisions_written" in r.stdout and SECRET not in r.stdout + r.stderr
    # the same secret in the URL is masked wherever the URL is shown, and a wrong one is one line, exit 1
    r = subprocess.run(CLI + ["run", "--input", str(frames), "--redis-url",
                              f"redis://alice:wrong-{SECRET}@127.0.0.1:{acl_redis}/0", "--out-dir",
                              str(tmp_path / "o"), "--models", "none"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and SECRET not in r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if "warning" not in x]
    assert len(lines) == 1 and "refused the credentials" in lines[0], r.stderr


def _certs(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=shiftstream test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(crt),
        "-days", "2", "-extfile", str(ext))
    return ca, crt, key


def test_rediss_with_a_ca_file_writes_over_tls_and_a_wrong_ca_is_one_line(tmp_path):
    ca, crt, key = _certs(tmp_path)
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                             "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path),
                             "--requirepass", SECRET], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, "redis-server (TLS)", 10)
        sink = RedisSink(f"rediss://:{SECRET}@127.0.0.1:{port}/0", ca_file=str(ca))
        sink.write([_decision("tls-user")])
        sink.close()
        import redis

        r = redis.Redis(port=port, password=SECRET, ssl=True, ssl_ca_certs=str(ca))
        assert r.hget("ss:d:tls-user", "segment") == b"general"
        frames = tmp_path / "e.frames"
        subprocess.run(CLI + ["simulate", "--users", "3", "--events", "50", "--out", str(frames)], check=True,
                       capture_output=True)
        res = subprocess.run(CLI + ["run", "--input", str(frames), "--redis-url",
                                    f"rediss://:{SECRET}@127.0.0.1:{port}/0", "--out-dir", str(tmp_path / "o"),
                                    "--models", "none"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and "TLS to Redis" in res.stderr and SECRET not in res.stderr, res.stderr
    finally:
        proc.terminate()
        proc.wait(10)


# -- loopback only -----------------------------------------------------------------------------------------------

def _listening(pids: set[int]) -> set[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        m = re.search(r"pid=(\d+)", line)
        if m and int(m.group(1)) in pids:
            found.add(line.split()[3] + " " + line.split()[-1])
    return found


def _loopback(addr: str) -> bool:
    host = addr.split()[0].rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


@pytest.mark.slow
@pytest.mark.flink
@pytest.mark.parametrize("runner", ["reference", "flink"])
def test_no_socket_of_a_run_listens_beyond_loopback(runner, redis_url, tmp_path):
    frames = tmp_path / "e.frames"
    subprocess.run(CLI + ["simulate", "--users", "30", "--events", "3000", "--out", str(frames)], check=True,
                   capture_output=True)
    p = subprocess.Popen(CLI + ["run", "--runner", runner, "--input", str(frames), "--redis-url", redis_url,
                                "--out-dir", str(tmp_path / "o"), "--models", "none", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    while p.poll() is None:
        seen |= _listening(process_tree(p.pid))
        time.sleep(0.2)
    out, err = p.communicate()
    assert p.returncode == 0, err
    if runner == "flink":
        assert len(seen) >= 3, seen  # the gateway, REST and BLOB servers at least: the sampling saw the run
    assert {a for a in seen if not _loopback(a)} == set()


# -- Kafka SASL / TLS, and the production profile ----------------------------------------------------------------

def _sasl_cfg(tmp_path, **kw):
    from shiftstream.transforms.config import load_config

    p = tmp_path / "k.yaml"
    body = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": 'svc"x',
            "sasl_password_env": "TEST_KAFKA_PASSWORD", **kw}
    p.write_text("kafka:\n" + "".join(f"  {k}: {v if v is not None else 'null'}\n" for k, v in body.items()))
    return load_config(p)


def test_kafka_sasl_and_tls_settings_reach_both_kinds_of_client(tmp_path, monkeypatch):
    from confluent_kafka import Producer

    from shiftstream.jobs import kafka_security
    from shiftstream.jobs.kafka import client_config

    ca, _, _ = _certs(tmp_path)
    monkeypatch.setenv("TEST_KAFKA_PASSWORD", SECRET)
    cfg = _sasl_cfg(tmp_path, ssl_ca_file=str(ca))
    lib = kafka_security.librdkafka_properties(cfg)
    assert lib == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": 'svc"x',
                   "sasl.password": SECRET, "ssl.ca.location": str(ca)}
    java = kafka_security.java_properties(cfg)
    assert java["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                        f'username="svc\\"x" password="{SECRET}";')
    assert java["ssl.truststore.type"] == "PEM" and java["ssl.truststore.location"] == str(ca)
    kafka_security.use(cfg)
    try:
        conf = client_config("127.0.0.1:1")
        assert conf["security.protocol"] == "SASL_SSL"
        Producer(conf).flush(0)  # librdkafka accepts every property (it refuses unknown ones at construction)
    finally:
        kafka_security.use(_sasl_cfg(tmp_path, security_protocol="PLAINTEXT"))
    assert "security.protocol" not in client_config("127.0.0.1:1")


def test_sasl_without_a_password_source_is_a_config_problem_and_an_unset_variable_one_line(tmp_path):
    from shiftstream.transforms.config import ConfigError

    with pytest.raises(ConfigError, match="needs a password source"):
        _sasl_cfg(tmp_path, sasl_password_env=None)
    _sasl_cfg(tmp_path)  # a valid file again: the password source names a variable that is not set
    cfgp = tmp_path / "k.yaml"
    env = {k: v for k, v in os.environ.items() if k != "TEST_KAFKA_PASSWORD"}
    r = subprocess.run(CLI + ["run", "--config", str(cfgp), "--kafka-bootstrap", "127.0.0.1:1", "--idle-exit", "1",
                              "--out-dir", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].endswith("$TEST_KAFKA_PASSWORD, which is not set")


def test_the_production_profile_checks_and_refuses_the_development_key(tmp_path):
    import shiftstream.transforms.config as c

    prod = Path(c.DEFAULT_PATH).with_name("production.yaml")
    r = subprocess.run(CLI + ["config", "check", str(prod)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    frames = tmp_path / "e.frames"
    subprocess.run(CLI + ["simulate", "--users", "3", "--events", "50", "--out", str(frames)], check=True,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "SHIFTSTREAM_PSEUDONYM_KEY"}
    r = subprocess.run(CLI + ["run", "--config", str(prod), "--input", str(frames), "--out-dir", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "require_key is true" in r.stderr, r.stderr


def test_a_password_with_url_characters_is_masked_and_an_unset_password_variable_is_one_line(acl_redis, tmp_path):
    from shiftstream.jobs.redis_sink import parse_url
    from shiftstream.transforms.config import redact_url

    url = "redis://alice:ab/c#d@e@127.0.0.1:6379/0"
    assert redact_url(url) == "redis://alice:***@127.0.0.1:6379/0"
    assert parse_url(url)[1:] == ("alice", "ab/c#d@e", "127.0.0.1", 6379, 0)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"redis:\n  url: redis://alice@127.0.0.1:{acl_redis}/0\n  password_env: TEST_UNSET_PASSWORD\n")
    frames = tmp_path / "e.frames"
    subprocess.run(CLI + ["simulate", "--users", "3", "--events", "50", "--out", str(frames)], check=True,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "TEST_UNSET_PASSWORD"}
    r = subprocess.run(CLI + ["run", "--input", str(frames), "--config", str(cfg), "--out-dir", str(tmp_path / "o"),
                              "--models", "none"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "$TEST_UNSET_PASSWORD, which is not set" in r.stderr.strip().splitlines()[-1]
