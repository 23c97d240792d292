"""The core's event-time behaviour: order independence, duplicates, late events, sessions, state."""
import json
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shiftstream.jobs.testing import run_reference
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.core import FOLD_AFTER, Core
from shiftstream.transforms.events import Ev, from_record
from shiftstream.transforms.outputs import Changed, Duplicate, Late, SessionClosed, Settled
from shiftstream.transforms.state import UserState
from shiftstream.transforms.watermarks import END_OF_TIME

CFG = load_config()
LATENESS = CFG.event_time.allowed_lateness


@pytest.fixture(scope="module")
def clean():
    return simulate(SimConfig(users=25, events=2500, seed=21, out_of_order=0, too_late=0, duplicates=0, malformed=0,
                              privacy_rate=0))


@pytest.fixture(scope="module")
def baseline(clean):
    job, sink, cap = run_reference(clean.events)
    return sink.stable(), Counter(json.dumps(s.session, sort_keys=True) for s in cap.sessions), \
        sorted(tuple(s) for s in cap.shifts)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), dup_rate=st.sampled_from([0.0, 0.05]))
def test_shuffling_within_lateness_never_changes_decisions(clean, baseline, seed, dup_rate):
    rng = random.Random(seed)
    arrivals = []
    for i, ev in enumerate(clean.events):
        arrivals.append((ev["ts"] + rng.randrange(LATENESS), i, ev))
        if rng.random() < dup_rate:
            arrivals.append((ev["ts"] + rng.randrange(LATENESS), i, ev))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    job, sink, cap = run_reference([a[2] for a in arrivals])
    decisions, sessions, shifts = baseline
    assert job.stats["late"] == 0
    assert job.stats["duplicates"] == len(arrivals) - len(clean.events)
    assert sink.stable() == decisions
    assert Counter(json.dumps(s.session, sort_keys=True) for s in cap.sessions) == sessions
    assert sorted(tuple(s) for s in cap.shifts) == shifts


def test_the_property_test_can_fail_beyond_lateness(clean, baseline):
    """Delays far beyond the lateness make events late, and then decisions do change."""
    rng = random.Random(1)
    arrivals = sorted(((ev["ts"] + rng.randrange(20 * LATENESS), i, ev) for i, ev in enumerate(clean.events)))
    job, sink, _ = run_reference([a[2] for a in arrivals])
    assert job.stats["late"] > 0
    assert sink.stable() != baseline[0]


def ev(ts, eid, code=0, cat="books", **kw):
    base = dict(price=None, dwell_ms=None, scroll_depth=None, hover_ms=None, device="desktop", variant=None)
    base.update(kw)
    return Ev(ts, eid, code, cat, base["price"], base["dwell_ms"], base["scroll_depth"], base["hover_ms"],
              base["device"], base["variant"])


def test_duplicates_are_dropped_and_late_events_routed_not_merged():
    core = Core(CFG)
    st_, outs = core.accept(None, "k", ev(10_000_000, "a"), 0)
    assert outs == [Changed("k", 10_000_000)] and st_.profile.events == 1 and st_.provisional() == 1
    st_, outs = core.accept(st_, "k", ev(10_000_000, "a"), 0)
    assert outs == [Duplicate("k", "a")]
    st_, outs = core.accept(st_, "k", ev(9_000_000, "late"), 9_500_000)
    assert isinstance(outs[0], Late) and outs[0].watermark == 9_500_000
    st_, outs = core.advance(st_, "k", 10_000_000)
    # nothing changes but the decision's exactness: a marker, not a new decision
    assert outs == [Settled("k")] and st_.profile.events == 1 and st_.provisional() == 0
    # once applied, an older event is late even if the caller's watermark lags
    st_, outs = core.accept(st_, "k", ev(9_999_000, "b"), 0)
    assert isinstance(outs[0], Late)


def test_events_apply_at_once_in_time_order_and_settle_when_the_watermark_passes():
    core = Core(CFG)
    s = None
    for t, eid in ((3000, "c"), (1000, "a"), (2000, "b")):
        s, outs = core.accept(s, "k", ev(t, eid, cat=eid), 0)
        assert outs == [Changed("k", t)]  # each arrival updates the decision at once
    # the two earlier arrivals were put in their place: the state is the one of event-time order
    assert s.profile.events == 3 and list(s.profile.cat_last) == ["a", "b", "c"]
    assert s.provisional() == 3 and core.next_timer(s) == 1000
    s, outs = core.advance(s, "k", 2000)
    assert outs == [Settled("k")] and s.provisional() == 1 and s.watermark == 2000
    assert core.next_timer(s) == 3000


def test_session_gap_max_length_and_timer_close():
    core = Core(CFG)
    gap = CFG.sessions.gap
    s = None
    times = [0, 60_000, 60_000 + gap - 1, 60_000 + 2 * gap]  # third joins (just inside the gap), fourth starts anew
    for i, t in enumerate(times):
        s, _ = core.accept(s, "k", ev(1_000_000 + t, f"e{i}"), 0)
    s, outs = core.advance(s, "k", 1_000_000 + times[-1])
    closed = [o.session for o in outs if isinstance(o, SessionClosed)]
    assert len(closed) == 1 and closed[0]["events"] == 3
    # the open session closes when the watermark passes last + gap, not before
    s, outs = core.advance(s, "k", 1_000_000 + times[-1] + gap - 1)
    assert not any(isinstance(o, SessionClosed) for o in outs)
    s, outs = core.advance(s, "k", 1_000_000 + times[-1] + gap)
    assert [o.session["events"] for o in outs if isinstance(o, SessionClosed)] == [1]
    assert any(isinstance(o, Changed) for o in outs)  # the decision must be re-rendered: session_open flipped
    # a session is cut at max_length however active
    s2 = None
    step = 60_000
    n = CFG.sessions.max_length // step + 5
    for i in range(n):
        s2, _ = core.accept(s2, "u", ev(step * i + 1, f"m{i}"), 0)
    s2, outs = core.advance(s2, "u", step * n)
    assert sum(isinstance(o, SessionClosed) for o in outs) == 1


def test_state_round_trips_mid_stream_and_restored_runs_match(clean):
    """A checkpoint (to_dict) restored halfway gives the same outputs as an uninterrupted run."""
    core = Core(CFG)
    user = clean.events[0]["user_id"]
    evs = [from_record(e) for e in clean.events if e["user_id"] == user]
    half = len(evs) // 2

    def run(events, state=None, restore_at=None):
        outs_all = []
        for i, e in enumerate(events):
            if restore_at is not None and i == restore_at:
                state = UserState.from_dict(json.loads(json.dumps(state.to_dict())))
            state, outs = core.accept(state, "k", e, e.ts - LATENESS)
            state, outs2 = core.advance(state, "k", e.ts - LATENESS)
            outs_all += outs + outs2
        before = state.to_dict()
        state, outs = core.advance(state, "k", END_OF_TIME)  # the end of time: the profile expires too
        assert state is None and type(outs[-1]).__name__ == "Expired"
        return before, outs_all + outs

    a, outs_a = run(evs)
    b, outs_b = run(evs, restore_at=half)
    assert a == b and outs_a == outs_b


@pytest.mark.parametrize("categories", [40, 50_000])
def test_state_per_user_is_bounded_whatever_the_volume(categories):
    core = Core(CFG)
    s = None
    rng = random.Random(0)
    sizes = []
    for i in range(30_000):  # one very busy user: an event every 2 s for ~17 h, over `categories` categories
        t = 1_000_000 + i * 2000
        s, _ = core.accept(s, "k", ev(t, f"e{i}", code=rng.randrange(8), cat=f"c{rng.randrange(categories)}"),
                           t - LATENESS)
        s, _ = core.advance(s, "k", t - LATENESS)
        if i % 5000 == 4999:
            sizes.append(len(json.dumps(s.to_dict())))
    cap = CFG.profile.max_categories
    # the provisional events are those within the lateness; settled ones are folded into `base` in batches
    assert s.provisional() <= LATENESS // 2000 + 1 and len(s.pending_ids) == len(s.pending)
    assert len(s.pending) <= s.provisional() + FOLD_AFTER
    assert len(s.windows.buf) <= 2 * CFG.windows.max_events + 64
    assert len(s.profile.aff) <= cap and len(s.session.cats) <= cap
    assert len(s.shift.short) <= cap and len(s.shift.long) <= cap
    assert max(sizes) < 120_000
    assert sizes[-1] < sizes[1] * 1.2  # no growth once the caps are reached


def test_pending_events_are_capped_and_the_overflow_counted():
    core = Core(CFG.replace(**{"event_time.max_pending": 100}))
    s = None
    refused = 0
    for i in range(150):  # a flood inside the lateness window: nothing can be applied yet
        s, outs = core.accept(s, "k", ev(10_000_000 + i, f"e{i}"), 0)
        refused += sum(1 for o in outs if getattr(o, "reason", None) == "pending_full")
    assert len(s.pending) == 100 and refused == 50


def test_erasure_tombstone_expires_even_when_the_user_keeps_coming():
    """A user erased and then active again, or with a consent record, must not leave a timer that never clears."""
    core = Core(CFG)
    s, _ = core.accept(None, "k", ev(1_000_000, "a"), 0)
    s, _ = core.advance(s, "k", 1_000_000)
    s, _ = core.privacy(s, "k", "consent_granted", 1_000_500)
    s, _ = core.privacy(s, "k", "erasure", 1_001_000)
    s, outs = core.accept(s, "k", ev(1_000_900, "before"), 0)
    assert outs[0].reason == "erased"
    s, _ = core.accept(s, "k", ev(1_002_000, "after"), 0)
    assert core.next_timer(s) == 1_001_001
    s, _ = core.advance(s, "k", 1_003_000)
    assert s.erased_at is None and s.profile.events == 1 and s.granted_at == 1_000_500
    nt = core.next_timer(s)
    assert nt is None or nt > 1_003_000  # never a timer in the past: that was an endless loop


def test_a_refused_event_leaves_no_state_behind():
    from shiftstream.jobs.testing import run_reference

    sim = simulate(SimConfig(users=30, events=1500, seed=2, privacy_rate=0, too_late=0, duplicates=0, malformed=0))
    job, sink, _ = run_reference(sim.events, CFG.replace(**{"privacy.consent_mode": "opt_in"}))
    assert job.states == {} and sink.decisions == {} and job.stats["blocked.no_consent"] == len(sim.events)
    assert job.pseudonymise.cached_raw_ids() == set()


def test_an_idle_profile_expires_after_the_ttl_in_event_time_and_consent_records_stay():
    from shiftstream.transforms.outputs import Expired

    ttl = CFG.state.ttl
    core = Core(CFG)
    ev = from_record({"event_id": "e1", "user_id": "u", "event_type": "click", "ts": 1_000_000, "category": "books",
                      **{k: None for k in ("price", "dwell_ms", "scroll_depth", "hover_ms", "device", "variant")}})
    st, _ = core.accept(None, "k", ev, 0)
    st, outs = core.advance(st, "k", ev.ts)
    assert st is not None and outs == [Settled("k")]
    st, _ = core.advance(st, "k", ev.ts + CFG.sessions.gap)  # the session closes first
    assert core.next_timer(st) == ev.ts + ttl
    kept, outs = core.advance(st, "k", ev.ts + ttl - 1)
    assert kept is st and not any(type(o) is Expired for o in outs)
    gone, outs = core.advance(st, "k", ev.ts + ttl)
    assert gone is None and outs == [Expired("k")]
    assert st.profile.events == 1  # the object handed in is untouched: a due decision still renders from it
    st2, _ = core.accept(None, "k", ev, 0)
    st2, _ = core.privacy(st2, "k", "consent_granted", 10)
    st2, _ = core.advance(st2, "k", ev.ts + ttl + CFG.sessions.gap)
    assert st2 is not None and st2.granted_at == 10 and st2.profile.events == 0 and core.next_timer(st2) is None


def test_a_zero_ttl_never_expires():
    core = Core(CFG.replace(**{"state.ttl": 0}))
    ev = from_record({"event_id": "e1", "user_id": "u", "event_type": "click", "ts": 1_000_000, "category": "books",
                      **{k: None for k in ("price", "dwell_ms", "scroll_depth", "hover_ms", "device", "variant")}})
    st, _ = core.accept(None, "k", ev, 0)
    st, _ = core.advance(st, "k", END_OF_TIME)
    assert st is not None and core.next_timer(st) is None


def test_personalization_off_purges_and_refuses_basic_keeps_the_profile_and_the_latest_request_wins():
    core = Core(CFG)
    s, _ = core.accept(None, "k", ev(1_000_000, "a"), 0)
    s, outs = core.privacy(s, "k", "personalization", 1_000_100, "basic")
    assert outs == [Changed("k", 1_000_100)] and s.level == "basic" and s.profile_copy().last_ts == 1_000_000
    assert core.privacy(s, "k", "personalization", 1_000_200, "basic")[1] == []  # no change, nothing due
    s, outs = core.privacy(s, "k", "personalization", 1_000_300, "off")
    assert outs == [Changed("k", 1_000_300)] and s.pending == [] and s.held == [] and not s.has_profile()
    s, outs = core.accept(s, "k", ev(1_000_400, "b"), 0)
    assert outs[0].reason == "personalization_off"
    s, _ = core.privacy(s, "k", "personalization", 1_000_250, "full")  # older than the one in force: ignored
    assert s.level == "off"
    s, _ = core.privacy(s, "k", "personalization", 1_000_500, "full")
    assert s.level == "full"
    assert core.accept(s, "k", ev(1_000_290, "c"), 0)[1][0].reason == "personalization_off"  # dated while off
    s, outs = core.accept(s, "k", ev(1_000_600, "d"), 0)
    assert type(outs[0]) is Changed and s.pending[-1].event_id == "d"
    back = UserState.from_dict(json.loads(json.dumps(s.to_dict())))
    assert (back.level, back.level_at, back.off_at) == ("full", 1_000_500, 1_000_300)
    with pytest.raises(ValueError, match="level"):
        core.privacy(s, "k", "personalization", 1_000_700, "some")


def test_a_level_record_outlives_an_expired_profile_and_an_erasure():
    core = Core(CFG)
    s, _ = core.privacy(None, "k", "personalization", 10, "basic")
    assert not s.is_empty()
    s, _ = core.accept(s, "k", ev(1_000_000, "a"), 0)
    s, _ = core.advance(s, "k", 1_000_000 + CFG.state.ttl + CFG.sessions.gap)
    assert s is not None and s.level == "basic" and s.profile.events == 0
    s, _ = core.privacy(s, "k", "erasure", 2_000_000_000)
    assert s.level == "basic"


def test_the_decision_follows_the_level():
    from shiftstream.transforms.decisions import Renderer, snapshot

    cfg = load_config("config/content-example.yaml")
    core, r = Core(cfg), Renderer(cfg)
    s, _ = core.accept(None, "k", ev(1_000_000, "a"), 0)
    full = r.render([snapshot(s, "k", cfg)], 5)[0]
    assert full["features"] and full["top_categories"] and full["personalization"] == "full"
    s, _ = core.privacy(s, "k", "personalization", 1_000_100, "basic")
    basic = r.render([snapshot(s, "k", cfg)], 5)[0]
    assert basic["features"] == {} and basic["top_categories"] == [] and basic["personalization"] == "basic"
    assert basic["segment"] == full["segment"] and set(basic["content"]) == set(full["content"])
    s, _ = core.privacy(s, "k", "personalization", 1_000_200, "off")
    off = r.render([snapshot(s, "k", cfg)], 5)[0]
    assert off["personalization"] == "off" and off["features"] == {} and off["segment"] == cfg.segments.default
    assert {k: (v["variant"], v["reason"]) for k, v in off["content"].items()} == \
        {sl.name: (sl.variants[sl.fallback_index].id, "personalization_off") for sl in cfg.content.slots}
    from shiftstream.schemas import codec

    for d in (full, basic, off):
        assert codec("decision").problem(d) is None


def test_privacy_requests_of_a_file_run_come_due_as_event_time_reaches_them():
    from shiftstream.transforms.ingest import PrivacySchedule

    s = PrivacySchedule([{"ts": 30, "id": "c"}, {"ts": 10, "id": "a"}, {"ts": 20, "id": "b"}])
    assert [r["id"] for r in s.due(5)] == [] and s
    assert [r["id"] for r in s.due(20)] == ["a", "b"]
    assert [r["id"] for r in s.due(20)] == []
    assert [r["id"] for r in s.rest()] == ["c"] and not s
