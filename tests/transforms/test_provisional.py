"""Provisional and settled: an accepted event is in its user's decision at once; the watermark only makes it exact."""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import Captured, MemorySink
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.core import FOLD_AFTER, Core
from shiftstream.transforms.decisions import snapshot
from shiftstream.transforms.events import from_record
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser
from shiftstream.transforms.outputs import ActionFired, Changed, SessionClosed, Settled, ShiftDetected
from shiftstream.transforms.state import UserState

CFG = load_config()
LATENESS = CFG.event_time.allowed_lateness
FACTS = (SessionClosed, ShiftDetected, ActionFired)


@pytest.fixture(scope="module")
def streams():
    """Per user, the user's events in event-time order (a day of simulated traffic with sessions, shifts, carts)."""
    sim = simulate(SimConfig(users=12, events=3000, seed=5, out_of_order=0, too_late=0, duplicates=0, malformed=0,
                             privacy_rate=0))
    by_user: dict = {}
    for r in sim.events:
        if "event_id" in r and r.get("event_type") not in (None, "consent_granted", "consent_revoked", "erasure"):
            by_user.setdefault(r["user_id"], []).append(from_record(r))
    return [sorted(evs) for evs in by_user.values() if len(evs) > 5]


def content(row):
    """A decision row without the fields that say how settled it is."""
    return row._replace(settled_through=None, provisional=0)


def settled_run(core, events):
    """The settled-only path: the watermark passes each event as soon as it is accepted (no lateness)."""
    s, rows, facts = None, [], []
    for i, e in enumerate(events):
        s, outs = core.accept(s, "k", e, e.ts - 1)
        assert type(outs[0]) is Changed
        if i + 1 == len(events) or events[i + 1].ts > e.ts:  # (events of the same millisecond settle together)
            s, more = core.advance(s, "k", e.ts)
            outs += more
        rows.append(content(snapshot(s, "k", CFG)))
        facts += [o for o in outs if isinstance(o, FACTS)]
    return rows, facts


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), lag=st.sampled_from([LATENESS, 10 * LATENESS, 10**12]))
def test_in_event_time_order_every_provisional_decision_equals_the_settled_one_that_follows(streams, pick, lag):
    """The watermark `lag` behind (up to never passing until the end): each provisional decision is the decision
    the settled state gives once the watermark passes the same events, and the facts come out the same, once."""
    events = streams[pick % len(streams)]
    core = Core(CFG)
    expected, expected_facts = settled_run(core, events)
    s, facts, wm = None, [], 0
    for i, e in enumerate(events):
        s, outs = core.accept(s, "k", e, wm)
        assert outs == [Changed("k", e.ts)]
        assert content(snapshot(s, "k", CFG)) == expected[i]  # provisional, and already what settling will say
        assert not [o for o in outs if isinstance(o, FACTS)]  # facts wait for the watermark
        if e.ts - lag > wm:
            wm = e.ts - lag
            nt = core.next_timer(s)
            if nt is not None and nt <= wm:
                s, outs = core.advance(s, "k", wm)
                assert not [o for o in outs if type(o) is Changed] or not s.pending
                facts += [o for o in outs if isinstance(o, FACTS)]
                if s is not None:
                    assert content(snapshot(s, "k", CFG)) == expected[i]  # settling rewrote nothing
    s, outs = core.advance(s, "k", events[-1].ts)
    facts += [o for o in outs if isinstance(o, FACTS)]
    assert s.provisional() == 0 and content(snapshot(s, "k", CFG)) == expected[-1]
    assert facts == expected_facts


def test_an_out_of_order_arrival_is_replayed_into_place_exactly(streams):
    events = streams[0]
    core = Core(CFG)
    rng = random.Random(3)
    order = sorted(events, key=lambda e: e.ts + rng.randrange(LATENESS))
    expected, expected_facts = settled_run(core, events)
    s = None
    for e in order:  # the watermark never passes: everything stays provisional, replayed from `base` as needed
        s, outs = core.accept(s, "k", e, 0)
        assert type(outs[0]) is Changed
    assert content(snapshot(s, "k", CFG)) == expected[-1]
    s, outs = core.advance(s, "k", events[-1].ts)
    assert [o for o in outs if isinstance(o, FACTS)] == expected_facts


def test_settled_events_fold_into_base_so_a_replay_stays_bounded(streams):
    events = max(streams, key=len)
    assert len(events) > 3 * FOLD_AFTER
    core = Core(CFG)
    s = None
    for i, e in enumerate(events):
        s, _ = core.accept(s, "k", e, 0)
        if i % 8 == 7:  # the watermark trails by a few events
            s, _ = core.advance(s, "k", events[i - 3].ts)
            assert len(s.pending) <= FOLD_AFTER + 8 and s.provisional() <= 8
    expected, _ = settled_run(core, events)
    assert content(snapshot(s, "k", CFG)) == expected[-1]


def test_the_decision_says_what_is_settled():
    events = [e for e in simulate(SimConfig(users=1, events=40, seed=2, out_of_order=0, too_late=0, duplicates=0,
                                            malformed=0, privacy_rate=0)).events if "event_id" in e]
    evs = sorted(from_record(r) for r in events)
    core = Core(CFG)
    s = None
    for e in evs[:10]:
        s, _ = core.accept(s, "k", e, 0)
    row = snapshot(s, "k", CFG)
    assert row.settled_through is None and row.provisional == 10  # nothing settled yet
    s, outs = core.advance(s, "k", evs[3].ts)
    assert Settled("k") in outs and not [o for o in outs if type(o) is Changed]
    row = snapshot(s, "k", CFG)
    assert row.settled_through == evs[3].ts and row.provisional == 6
    s, _ = core.advance(s, "k", evs[9].ts)
    row = snapshot(s, "k", CFG)
    assert row.settled_through == evs[9].ts and row.provisional == 0


def test_the_state_round_trips_with_its_provisional_part(streams):
    """Both checkpoint forms: the whole state (`to_dict`), and the settled form plus the pending events the
    PyFlink job keeps apart (`Core.restore`), give the same decision and the same facts from then on."""
    events = streams[1]
    core = Core(CFG)
    cut = len(events) // 2
    s = None
    for e in sorted(events[:cut], key=lambda e: (e.ts // 7) % 5):  # out of order, never settled
        s, _ = core.accept(s, "k", e, 0)
    s, _ = core.advance(s, "k", events[cut // 2].ts)  # half of it settled
    assert s.provisional() > 0 and s.held
    whole = UserState.from_dict(s.to_dict())
    parted = core.restore(s.to_dict(pending=False), "k", list(s.pending))
    for other in (whole, parted):
        assert snapshot(other, "k", CFG) == snapshot(s, "k", CFG)
        assert other.held == s.held
    runs = []
    for x in (s, whole, parted):
        outs_all = []
        for e in events[cut:]:
            x, outs = core.accept(x, "k", e, 0)
            outs_all += outs
        x, outs = core.advance(x, "k", events[-1].ts)
        runs.append((snapshot(x, "k", CFG), outs_all + outs))
    assert runs[0] == runs[1] == runs[2]


def test_a_job_writes_provisional_decisions_that_say_how_settled_they_are():
    """The reference job with the watermark held back by the lateness: a decision carries the latest events as
    `provisional`, and says through which event time it is settled; at the end of input all of it is."""
    sim = simulate(SimConfig(users=5, events=400, seed=9, out_of_order=0, too_late=0, duplicates=0, malformed=0,
                             privacy_rate=0))
    sink, cap = MemorySink(), Captured()
    job = ReferenceJob(CFG, sink, Pseudonymiser(DEV_KEY), cap.outputs(), clock=lambda: 1_800_000_000.0)
    for i, r in enumerate(sim.events):
        job.on_record(r, 0, i)
    job.flush()
    assert sink.decisions and any(d["provisional"] > 0 for d in sink.decisions.values())
    # the watermark trails the input by the lateness: the older events are settled, the latest are not
    assert any(d["settled_through"] is not None for d in sink.decisions.values())
    job.finish()
    assert all(d["provisional"] == 0 and d["settled_through"] is not None for d in sink.decisions.values())


def test_a_state_checkpointed_by_the_settled_only_version_is_migrated_and_its_buffer_applied(streams):
    """Version 2 buffered events unapplied (and had no triggers): `Core.restore` applies them, provisional."""
    events = streams[2]
    core = Core(CFG)
    cut = len(events) // 2
    s = None
    for e in events[:cut]:
        s, _ = core.accept(s, "k", e, e.ts - 1)
        s, _ = core.advance(s, "k", e.ts)
    v3 = s.to_dict()  # its profile fields are the state's (its pending ones are settled, in the profile already)
    v2 = {k: v for k, v in v3.items() if k not in ("base", "held", "settled", "actions", "armed", "fired")}
    v2.update(v=2, pending=[list(e) for e in events[cut:cut + 5]])  # buffered, not applied yet
    with pytest.raises(ValueError, match="migrate"):
        UserState.from_dict(v2)
    migrated = core.restore(v2, "k")
    expected = s
    expected.actions, expected.armed, expected.fired = [], {}, []  # (version 2 had no triggers)
    for e in events[cut:cut + 5]:
        expected, _ = core.accept(expected, "k", e, 0)
    assert snapshot(migrated, "k", CFG) == snapshot(expected, "k", CFG) and migrated.provisional() == 5
