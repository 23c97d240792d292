"""The Beam pipeline: the same decisions as the reference runner, and streaming semantics under a TestStream."""
import json
import apache_beam as beam
import pytest
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from jobs import beam_pipeline
from jobs.redis_sink import RedisSink
from jobs.testing import redis_decisions, run_reference, shuffled_in_blocks
from runners.simulate import write_outputs
from runners.simulator import SimConfig, simulate
from schemas import read_frames, write_frames
from transforms.config import load_config
from transforms.decisions import Row
from transforms.events import Ev
from transforms.features import feature_names
from transforms.pseudonyms import DEV_KEY

pytestmark = pytest.mark.slow
CFG = load_config()
NAMES = feature_names(CFG)


def _reference_into_redis(messages, cfg, scorer=None):
    sink = RedisSink(cfg.redis.url, cfg.redis.key_prefix, cfg.redis.ttl)
    job, _, cap = run_reference(messages, cfg, sink=sink, messages=True, scorer=scorer)
    return job, cap


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """Out-of-order (beyond what the simulator does: a local shuffle), duplicated, late and malformed input."""
    sim = simulate(SimConfig(users=70, events=7000, seed=13, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                             duplicates=0.05, malformed=0.01, privacy_rate=0))
    d = tmp_path_factory.mktemp("beam")
    paths = write_outputs(sim, d / "events.frames", 13)
    msgs = list(read_frames(paths["events"]))
    msgs = shuffled_in_blocks(msgs, 8, seed=2)
    write_frames(d / "shuffled.frames", msgs)
    return d / "shuffled.frames", msgs


def test_beam_gives_the_reference_runners_redis_contents_key_by_key(shuffled, redis_url, tmp_path):
    path, msgs = shuffled
    cfg = CFG.replace(**{"redis.url": redis_url})
    counts = beam_pipeline.run(cfg, [str(path)], DEV_KEY, str(tmp_path))
    from_beam = redis_decisions(redis_url)
    import redis

    redis.Redis.from_url(redis_url).flushall()
    job, cap = _reference_into_redis(msgs, cfg)
    from_reference = redis_decisions(redis_url)
    assert len(from_reference) == 70
    assert from_beam == from_reference
    s = job.summary()
    assert s["late"] > 0 and s["duplicates"] > 0 and s["dead_letters"] > 0
    for k in ("events", "sessions", "shifts", "late", "duplicates", "dead_letters"):
        assert counts.get(k, 0) == s[k], k
    late = (tmp_path / "late-events.jsonl").read_text().splitlines()
    dead = [json.loads(x) for x in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert len(late) == s["late"] and sorted(d["reason"] for d in dead) == sorted(d["reason"] for d in cap.dead_letters)


def test_beam_with_models_scores_like_the_reference(shuffled, redis_url, tmp_path):
    from models.scorer import Scorer
    from models.train import train_all

    hist = simulate(SimConfig(users=150, events=15_000, seed=14))
    train_all(hist.events, CFG, hist.truth["categories"], tmp_path / "models", version="m1", max_rows=3000,
              n_estimators=10, epochs=1, log=lambda m: None)
    path, msgs = shuffled
    cfg = CFG.replace(**{"redis.url": redis_url})
    beam_pipeline.run(cfg, [str(path)], DEV_KEY, str(tmp_path), str(tmp_path / "models"))
    from_beam = redis_decisions(redis_url)
    import redis

    redis.Redis.from_url(redis_url).flushall()
    _reference_into_redis(msgs, cfg, Scorer(tmp_path / "models", NAMES, log=lambda m: None))
    from_reference = redis_decisions(redis_url)
    assert from_beam == from_reference
    assert all(d["model_version"] == "clusters:m1;next_interest:m1;propensity:m1" for d in from_beam.values())


# -- streaming semantics: a TestStream advances the watermark step by step ---------------------------------------

T0 = 1_767_571_200_000
MIN = 60_000


def ev(key, ts, eid, cat="books", code=0):
    return TimestampedValue((key, (tuple(Ev(ts, eid, code, cat, None, 1000, None, None, "desktop", None)), None)),
                            ts / 1000)


def _run_stream(stream, redis_url):
    cfg = CFG.replace(**{"redis.url": redis_url})
    p = beam.Pipeline(runner=BundleBasedDirectRunner())
    out = p | stream | beam_pipeline.ShiftstreamCore(cfg)
    rows = out["rows"] | "rows" >> beam.Map(lambda kv: (kv[0], Row(*kv[1])))
    return p, rows, out["late"]


def _features(row):
    return dict(zip(NAMES, row.values))


def test_events_apply_when_the_watermark_passes_and_timers_close_the_session(redis_url):
    gap = CFG.sessions.gap
    stream = (TestStream()
              .add_elements([ev("u", T0 + MIN, "b"), ev("u", T0, "a")])  # out of order within the step
              .advance_watermark_to((T0 + MIN) / 1000)
              .add_elements([ev("u", T0 + 2 * MIN, "c")])
              .advance_watermark_to((T0 + 2 * MIN + gap) / 1000)
              .advance_watermark_to_infinity())
    p, rows, late = _run_stream(stream, redis_url)

    def check(got):
        got = [r for _, r in got]
        # one timer per pending event time: a, then b (in event-time order although b arrived first), then c,
        # then the gap timer closing the session
        assert [r.event_time for r in got] == [T0, T0 + MIN, T0 + 2 * MIN, T0 + 2 * MIN]
        a, b, c, closed = (_features(r) for r in got)
        assert [a["session_events"], b["session_events"], c["session_events"]] == [1, 2, 3]
        assert c["session_open"] == 1.0
        assert closed["session_open"] == 0.0 and closed["sessions_total"] == 1.0

    assert_that(rows, check)
    p.run().wait_until_finish()
    assert len(redis_decisions(redis_url)) == 1


def test_an_event_behind_what_the_timers_applied_goes_to_the_late_output(redis_url):
    """Without an arrival stamp, an event is late when the user's timers already applied events after it."""
    stream = (TestStream()
              .add_elements([ev("u", T0, "a"), ev("u", T0 + 8 * MIN, "b"), ev("v", T0 + 10 * MIN, "x")])
              .advance_watermark_to((T0 + 10 * MIN) / 1000)
              .add_elements([ev("u", T0 + 5 * MIN, "late-one"), ev("u", T0 + 11 * MIN, "fine")])
              .advance_watermark_to_infinity())
    p, rows, late = _run_stream(stream, redis_url)
    assert_that(late | beam.Map(lambda r: (r["event"]["event_id"], r["watermark"])),
                lambda got: got == [("late-one", T0 + 8 * MIN)] or (_ for _ in ()).throw(AssertionError(got)),
                label="late")

    def check(got):
        last = {}
        for k, r in got:
            last[k] = _features(r)
        assert last["u"]["events_total"] == 3  # a, b and fine; never the late one

    assert_that(rows, check, label="rows")
    p.run().wait_until_finish()


def test_duplicates_under_a_stream_are_dropped(redis_url):
    stream = (TestStream()
              .add_elements([ev("u", T0, "a"), ev("u", T0 + 1000, "b")])
              .add_elements([ev("u", T0, "a")])
              .advance_watermark_to_infinity())
    p, rows, _ = _run_stream(stream, redis_url)
    assert_that(rows, lambda got: [_features(r)["events_total"] for _, r in got][-1] == 2.0 or
                (_ for _ in ()).throw(AssertionError(got)))
    p.run().wait_until_finish()
