"""The Beam pipeline under a TestStream: streaming semantics step by step (its parity with the reference runner is
in the conformance suite, tests/conformance)."""
import apache_beam as beam
import pytest
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from shiftstream.jobs import beam_pipeline
from shiftstream.jobs.testing import redis_decisions
from shiftstream.transforms.config import load_config
from shiftstream.transforms.decisions import Mark, Row
from shiftstream.transforms.events import Ev
from shiftstream.transforms.features import feature_names

pytestmark = pytest.mark.slow
CFG = load_config()
NAMES = feature_names(CFG)


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
    rows = (out["rows"] | "decisions only" >> beam.Filter(lambda kv: type(kv[1]) is not Mark)  # not the settled markers
            | "rows" >> beam.Map(lambda kv: (kv[0], Row(*kv[1]))))
    return p, rows, out["late"]


def _features(row):
    return dict(zip(NAMES, row.values))


def test_events_apply_on_arrival_in_event_time_order_and_timers_close_the_session(redis_url):
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
        # a decision per arrival, provisional: b alone, then a put before it (b arrived first), then c; the
        # watermark settles them without a new decision; the gap timer closes the session
        assert [r.event_time for r in got] == [T0 + MIN, T0 + MIN, T0 + 2 * MIN, T0 + 2 * MIN]
        assert [r.provisional for r in got] == [1, 2, 1, 0]
        assert [r.settled_through for r in got] == [None, None, T0 + MIN, T0 + 2 * MIN]
        b, ab, c, closed = (_features(r) for r in got)
        assert [b["session_events"], ab["session_events"], c["session_events"]] == [1, 2, 3]
        assert ab["session_duration_s"] == 60.0  # a, then b: in event-time order
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
