"""The engine conformance suite (like River's `check_estimator`): every engine runs every scenario into a real
Redis, and must give the reference runner's decisions key by key, its counters in the contract's vocabulary, and
the same late and dead-letter records. The reference runner runs the suite too, against the invariants."""
from __future__ import annotations

from collections import Counter

import pytest
import redis

from shiftstream.transforms.config import load_config

from .engines import Beam, Flink, Reference
from .scenarios import SCENARIOS, Scenario, data

CFG = load_config()
ENGINES = [Reference(), Beam(), Flink("thread")]
# what every engine must count alike; decisions_due and decisions_written depend on timer and batch granularity
SAME = ("events", "dead_letters", "late", "duplicates", "blocked", "sessions", "shifts", "outcomes",
        "content_actions")


def _marks(engine, scenario):
    if isinstance(engine, Flink):
        return [pytest.mark.slow, pytest.mark.flink]
    if isinstance(engine, Beam) or scenario.models:  # engines start runners; models are trained first
        return [pytest.mark.slow]
    return []


CASES = [pytest.param(e, s, id=f"{e.name}-{s.name}", marks=_marks(e, s)) for e in ENGINES for s in SCENARIOS]
# the PyFlink job's other forms, on the scenario that exercises the most: process mode, and two core subtasks
# (users split between two subtasks, each its own thread and Redis connection, both loading onnxruntime)
CASES += [pytest.param(e, SCENARIOS[-1], id=f"{e.name}-{SCENARIOS[-1].name}", marks=_marks(e, SCENARIOS[-1]))
          for e in (Flink("process"), Flink("thread", parallelism=2))]
# privacy requests keyed to the right subtask of a parallel job
CASES += [pytest.param(Flink("thread", parallelism=2), s, id=f"flink-thread-p2-{s.name}", marks=_marks(Flink(), s))
          for s in SCENARIOS if s.privacy]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="module")
def oracle():
    """The reference runner's result per scenario (computed once, into the Redis the test hands over)."""
    return {}


def _changes(scenario) -> dict:
    from shiftstream.transforms.config import parse_duration

    return {k: parse_duration(v) if k == "state.ttl" else v for k, v in scenario.config.items()}


def _flush(url):
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


@pytest.mark.parametrize("engine,scenario", CASES)
def test_engine_conforms(engine, scenario, folder, oracle, redis_url, tmp_path, request):
    why = engine.unsupported(scenario)
    if why:
        pytest.skip(why)
    cfg = CFG.replace(**{"redis.url": redis_url}, **_changes(scenario))
    d = data(scenario, folder)
    models = str(request.getfixturevalue("trained_models")) if scenario.models else None
    if scenario.name not in oracle:
        oracle[scenario.name] = Reference().run(d, cfg, tmp_path / "ref", models)
        _flush(redis_url)
    want = oracle[scenario.name]
    got = engine.run(d, cfg, tmp_path, models)

    # the invariants every engine keeps, the reference runner included
    assert got.counts.get("events", 0) + got.counts.get("dead_letters", 0) == len(d.messages)
    assert len(got.late) == got.counts.get("late", 0)
    assert len(got.dead) == got.counts.get("dead_letters", 0)
    assert all(r["event"]["ts"] <= r["watermark"] for r in got.late)
    if not scenario.privacy:
        assert len(got.decisions) == d.users  # every user with an accepted event has a decision
    if scenario.models:
        assert all(x["model_version"] and x["scores"] for x in got.decisions.values())
    slots = scenario.config.get("content.slots")
    if slots:  # every decision chooses in every slot, and the policies learned from outcomes in the stream
        assert all(set(x["content"]) == {s.name for s in slots} for x in got.decisions.values())
        assert got.counts["outcomes"] > 0
        if scenario.config.get("content.thresholds"):  # the rules fired, and some decisions chose without an arm
            assert got.counts["content_actions"] > 0
            assert any(x["content"]["hero"]["paused"] for x in got.decisions.values())
        for s in slots:
            chosen = {x["content"][s.name]["variant"] for x in got.decisions.values()}
            assert chosen == {s.variants[s.fallback_index].id} if not s.enabled else len(chosen) > 1, (s.name, chosen)

    # the reference runner's results, exactly (for the reference runner itself: a second run into an emptied Redis
    # gives the first run's results, i.e. it is deterministic and replayable)
    assert got.decisions == want.decisions
    assert {k: got.counts.get(k, 0) for k in SAME} == {k: want.counts.get(k, 0) for k in SAME}
    assert sorted((r["key"], r["event"]["event_id"]) for r in got.late) == \
        sorted((r["key"], r["event"]["event_id"]) for r in want.late)
    assert Counter(r["reason"] for r in got.dead) == Counter(r["reason"] for r in want.dead)


def test_the_scenarios_exercise_what_they_name(folder, redis_url, tmp_path):
    """A scenario that stopped producing its imperfection would make the suite pass vacuously."""
    cfg = CFG.replace(**{"redis.url": redis_url})
    by_name = {s.name: s for s in SCENARIOS}
    got = {n: Reference().run(data(s, folder), cfg.replace(**_changes(s)), tmp_path / n, None).counts
           for n, s in by_name.items()}
    assert got["expiry"]["expired"] > got["in_order"]["expired"]  # profiles expire mid-stream, not only at the end
    assert got["in_order"]["late"] == got["in_order"]["duplicates"] == got["in_order"]["dead_letters"] == 0
    assert got["duplicates"]["duplicates"] > 0
    assert got["too_late"]["late"] > 0
    assert got["malformed"]["dead_letters"] > 0
    assert got["privacy"]["privacy_requests"] > 0 and got["privacy"]["purged"] > 0
    assert all(c["sessions"] > 0 and (c["shifts"] > 0 or n == "expiry") for n, c in got.items())
    # the absurd timestamps make no good event late: the same stream without them has the same late events
    clean = Scenario("outliers-removed", by_name["outliers"].sim, seed=by_name["outliers"].seed)
    assert got["outliers"]["late"] == Reference().run(data(clean, folder), cfg, tmp_path / "clean", None).counts["late"]
