"""Shared fixtures: real servers on free loopback ports, started and stopped here."""
from __future__ import annotations

import shutil

import pytest

from shiftstream.runners.local import LocalKafka, LocalRedis


def pytest_collection_modifyitems(items):
    """Tests that start a PyFlink job run last: once PyFlink's Beam-based Python workers have run in this
    process they replace Beam's own operation factories, and a Beam pipeline started after them fails."""
    items.sort(key=lambda item: item.get_closest_marker("flink") is not None)


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server for the whole session."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed: run `make setup` (it installs it)")
    with LocalRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def kafka_broker():
    """A real Kafka-protocol broker (noida-db) for the whole session."""
    with LocalKafka() as broker:
        yield broker


@pytest.fixture(scope="session")
def small_sim():
    """A small deterministic simulation shared by tests that only read it."""
    from shiftstream.runners.simulator import SimConfig, simulate

    return simulate(SimConfig(users=120, events=12_000, seed=3))


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory):
    """One small trained model set (real ONNX graphs, version "m1") shared by the tests that score."""
    from shiftstream.models.train import train_all
    from shiftstream.runners.simulator import SimConfig, simulate
    from shiftstream.transforms.config import load_config

    hist = simulate(SimConfig(users=150, events=15_000, seed=14))
    d = tmp_path_factory.mktemp("models")
    train_all(hist.events, load_config(), hist.truth["categories"], d, version="m1", max_rows=3000,
              n_estimators=10, epochs=1, log=lambda m: None)
    return d


@pytest.fixture(autouse=True)
def _no_pyflink_worker_flag():
    """A local process-mode PyFlink job runs its Python worker inside this process (loopback) and leaves
    PYFLINK_GATEWAY_DISABLED set; a `shiftstream` subprocess started by a later test would inherit it and refuse to
    start its own gateway."""
    yield
    import os

    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
