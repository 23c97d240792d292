"""Absurd timestamps: a few events dated far ahead must not make good events late (nor change their decisions).

Each run is compared with the same stream without the bad events (bench/faults.py: `without`)."""
from __future__ import annotations

import random

from bench.faults import HOUR, clock_aligned, flip_ts_bits, without
from shiftstream.transforms.config import load_config


def test_one_event_23_hours_ahead_makes_no_good_event_late():
    events, now = clock_aligned()
    i = len(events) // 10  # early: the 9,000 events behind it would all be judged against it
    events[i]["ts"] += 23 * HOUR
    new_late, changed = without(events, {i}, now)
    assert new_late == set()
    assert changed == set()


def test_flipped_timestamp_bits_make_no_good_event_late():
    events, now = clock_aligned(seed=22)
    bad = flip_ts_bits(events, 9, random.Random(5))
    assert any(events[i]["ts"] > now * 1000 + HOUR for i in bad)  # some land far ahead of the clock
    new_late, changed = without(events, bad, now)
    assert new_late == set()
    assert changed == set()


def test_the_max_rule_would_have_made_good_events_late():
    """The same +23 h stream under `outlier_tolerance: 0` (the max rule): the defect the rule fixes."""
    events, now = clock_aligned()
    i = len(events) // 10
    events[i]["ts"] += 23 * HOUR
    new_late, changed = without(events, {i}, now, load_config().replace(**{"event_time.outlier_tolerance": 0}))
    assert len(new_late) > 100 and changed


def test_a_burst_of_outliers_beyond_the_tolerance_is_documented_behaviour():
    """More than `outlier_tolerance` far-ahead events within one window do move the watermark: the rule's limit,
    stated in the config (a genuine jump must be followed)."""
    events, now = clock_aligned(n=3000, users=50, seed=23)
    bad = set(range(1000, 1004))  # 4 in a row: one more than the default tolerance of 3
    for i in bad:
        events[i]["ts"] += 23 * HOUR
    new_late, _ = without(events, bad, now)
    assert len(new_late) > 100
