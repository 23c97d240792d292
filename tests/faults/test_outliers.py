"""Absurd timestamps: a few events dated far ahead must not make good events late (nor change their decisions).

Each run is compared with the same stream without the bad events: the good events' late records and every
decision of a user without a bad event must be the same."""
from __future__ import annotations

import random

from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import Captured, MemorySink
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

HOUR = 3_600_000


def _clock_aligned(n=10_000, users=200, seed=21):
    """A stream whose event times end at the processing clock (live traffic), and that clock."""
    sim = simulate(SimConfig(users=users, events=n, seed=seed, out_of_order=0.05, max_delay_s=60, too_late=0.0,
                             duplicates=0.0, malformed=0, privacy_rate=0.0))
    now = max(e["ts"] for e in sim.events) + 1000
    return [dict(e) for e in sim.events], now / 1000


def _run(events, clock_s):
    cfg = load_config()
    cap = Captured()
    p = Pseudonymiser(DEV_KEY)
    job = ReferenceJob(cfg, MemorySink(), p, cap.outputs(), clock=lambda: clock_s)
    for i, e in enumerate(events):
        job.on_record(e, 0, i)
    job.finish()
    late = {(r["key"], r["event"]["event_id"]) for r in cap.late}
    return job.sink.stable(), late, cap, p


def _compare(events, bad: set[int], clock_s):
    """Run with and without the bad events; returns (late good events added, users changed, clean late)."""
    base_dec, base_late, _, p = _run([e for i, e in enumerate(events) if i not in bad], clock_s)
    dec, late, cap, _ = _run(events, clock_s)
    bad_ids = {events[i]["event_id"] for i in bad}
    bad_users = {p(events[i]["user_id"]) for i in bad}
    good_late = {x for x in late if x[1] not in bad_ids}
    changed = {k for k in base_dec.keys() | dec.keys() if k not in bad_users and base_dec.get(k) != dec.get(k)}
    return good_late - base_late, changed, base_late


def test_one_event_23_hours_ahead_makes_no_good_event_late():
    events, now = _clock_aligned()
    i = len(events) // 10  # early: the 9,000 events behind it would all be judged against it
    events[i]["ts"] += 23 * HOUR
    new_late, changed, _ = _compare(events, {i}, now)
    assert new_late == set()
    assert changed == set()


def test_flipped_timestamp_bits_make_no_good_event_late():
    events, now = _clock_aligned(seed=22)
    rng = random.Random(5)
    bad = set(rng.sample(range(len(events)), 9))
    for i in sorted(bad):  # flip one bit of the ts, among the bits that move it by minutes to weeks
        events[i]["ts"] ^= 1 << rng.randrange(26, 40)
    assert any(events[i]["ts"] > now * 1000 + HOUR for i in bad)  # some land far ahead of the clock
    new_late, changed, _ = _compare(events, bad, now)
    assert new_late == set()
    assert changed == set()


def test_a_burst_of_outliers_beyond_the_tolerance_is_documented_behaviour():
    """More than `outlier_tolerance` far-ahead events within one window do move the watermark: the rule's limit,
    stated in the config (a genuine jump must be followed)."""
    events, now = _clock_aligned(n=3000, users=50, seed=23)
    bad = set(range(1000, 1004))  # 4 in a row: one more than the default tolerance of 3
    for i in bad:
        events[i]["ts"] += 23 * HOUR
    new_late, _, _ = _compare(events, bad, now)
    assert len(new_late) > 100
