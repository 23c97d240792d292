"""Preference-shift detection: unit behaviour and quality against the simulator's ground truth."""
import random

from bench.shifts import evaluate
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.shift import ShiftDetector, ShiftParams

CFG = load_config()
SH = CFG.shift


def feed(d, cats_by_session, rng_noise=0.0, seed=0):
    rng = random.Random(seed)
    dets = []
    t = 0
    for session, cats in enumerate(cats_by_session):
        for c in cats:
            t += 1000
            if rng.random() < rng_noise:
                c = "noise"
            det = d.update(c, t, ShiftParams.from_config(SH), session)
            if det:
                dets.append(det)
    return dets


def test_a_move_that_lasts_across_sessions_is_a_shift_with_from_and_to():
    sessions = [["books"] * 20 for _ in range(4)] + [["garden"] * 20 for _ in range(3)]
    dets = feed(ShiftDetector(), sessions, rng_noise=0.1)
    assert [(d.from_category, d.to_category) for d in dets] == [("books", "garden")]
    assert dets[0].ts > 4 * 20 * 1000 and dets[0].score >= SH.threshold


def test_a_one_session_excursion_is_not_a_shift():
    sessions = [["books"] * 20 for _ in range(4)] + [["toys"] * 20] + [["books"] * 20 for _ in range(3)]
    assert feed(ShiftDetector(), sessions, rng_noise=0.1) == []


def test_a_stable_user_never_shifts():
    rng = random.Random(1)
    sessions = [[rng.choices(["books", "home", "toys"], [0.6, 0.25, 0.15])[0] for _ in range(15)] for _ in range(30)]
    assert feed(ShiftDetector(), sessions) == []


def test_state_round_trip():
    d = ShiftDetector()
    feed(d, [["books"] * 30, ["garden"] * 5])
    e = ShiftDetector.from_list(d.to_list())
    assert e.to_list() == d.to_list()


def test_detection_beats_river_on_simulated_shifts():
    sim = simulate(SimConfig(users=600, events=90_000, seed=5))
    scores = {s.name: s for s in evaluate(sim.events, sim.truth, CFG)}
    ours = scores["shiftstream (short/long EW divergence)"]
    assert ours.precision > 0.5 and ours.recall > 0.35
    for name, s in scores.items():
        if name.startswith("River"):
            assert ours.f1 > s.f1, (name, s.f1, ours.f1)
