"""Shared fixtures: real servers on free loopback ports, started and stopped here."""
from __future__ import annotations

import shutil

import pytest

from runners.local import LocalKafka, LocalRedis


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
    from runners.simulator import SimConfig, simulate

    return simulate(SimConfig(users=120, events=12_000, seed=3))


@pytest.fixture(autouse=True)
def _no_pyflink_worker_flag():
    """A local process-mode PyFlink job runs its Python worker inside this process (loopback) and leaves
    PYFLINK_GATEWAY_DISABLED set; a `shiftstream` subprocess started by a later test would inherit it and refuse to
    start its own gateway."""
    yield
    import os

    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
