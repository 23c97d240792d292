"""A/B/N experiments: assignment by hash, and statistics measured on simulated streams where the answer is known."""
import numpy as np
import pytest

from shiftstream.transforms.content import parse_experiments
from shiftstream.transforms.experiments import HOLDOUT, Sequential, assign, chi2_sf, report, srm

EXP = parse_experiments([{"name": "e", "slot": "s", "holdout": 0.1,
                          "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}, {"name": "c", "weight": 2}]}])[0]


def test_assignment_is_uniform_over_a_million_ids_by_chi_square():
    n = 1_000_000
    counts = {"a": 0, "b": 0, "c": 0, HOLDOUT: 0}
    for i in range(n):
        counts[assign(EXP, f"{i:032x}")] += 1
    expected = {"a": 0.225, "b": 0.225, "c": 0.45, HOLDOUT: 0.1}
    x2 = sum((counts[k] - n * w) ** 2 / (n * w) for k, w in expected.items())
    assert chi2_sf(x2, 3) > 0.001, (counts, x2)
    assert assign(EXP, "someone") == assign(EXP, "someone")


def test_chi_square_tail_matches_known_values():
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, abs=1e-9)
    assert chi2_sf(16.26623619623813, 3) == pytest.approx(0.001, abs=1e-9)
    assert chi2_sf(200.0, 2) < 1e-40


def _aa_false_positive_rate(runs, events, every, alpha, rng):
    """A/A runs (both arms convert at 10%), the always-valid p-value checked after every `every` events:
    the share of runs that ever fall below alpha."""
    hits = 0
    for _ in range(runs):
        seq = Sequential()
        na = xa = nb = xb = 0
        arms = rng.random(events) < 0.5
        conv = rng.random(events) < 0.10
        for start in range(0, events, every):
            a, c = arms[start:start + every], conv[start:start + every]
            na += int(a.sum())
            xa += int((a & c).sum())
            nb += int((~a).sum())
            xb += int((~a & c).sum())
            if seq.update(na, xa, nb, xb) < alpha:
                hits += 1
                break
    return hits / runs


def test_peeking_after_every_1000_events_keeps_the_false_positive_rate_at_alpha():
    """2,000 simulated A/A runs of 50,000 events, checked after every 1,000: the always-valid p-value stays at or
    below alpha plus three Monte Carlo standard errors (a fixed-horizon z-test peeked at this often would not)."""
    rng = np.random.default_rng(42)
    alpha, runs = 0.05, 2000
    fpr = _aa_false_positive_rate(runs, 50_000, 1000, alpha, rng)
    assert fpr <= alpha + 3 * (alpha * (1 - alpha) / runs) ** 0.5, fpr


def test_a_planted_winning_arm_is_found():
    rng = np.random.default_rng(3)
    seq = Sequential()
    na = xa = nb = xb = 0
    for _ in range(60):
        na += 1000
        xa += int((rng.random(1000) < 0.10).sum())
        nb += 1000
        xb += int((rng.random(1000) < 0.12).sum())
        seq.update(na, xa, nb, xb)
    assert seq.p < 0.05
    exp = parse_experiments([{"name": "w", "slot": "s", "arms": [{"name": "a"}, {"name": "b"}]}])[0]
    r = report(exp, {"a": [na, xa, 0.0, na // 3], "b": [nb, xb, 0.0, nb // 3]}, p_min={"b": seq.p})
    b = r["arms"][1]
    assert b["significant"] and b["lift"] > 0 and b["diff_ci95"][0] > 0
    assert r["srm"]["level"] == "ok"


def test_a_planted_sample_ratio_mismatch_is_flagged():
    assert srm([5000, 5000], [1, 1])[1] > 0.5
    exp = parse_experiments([{"name": "m", "slot": "s", "arms": [{"name": "a"}, {"name": "b"}]}])[0]
    broken = report(exp, {"a": [10000, 1000, 0.0, 5000], "b": [9000, 900, 0.0, 4500]})  # 10% of b's users lost
    assert broken["srm"]["level"] == "alert"
    mild = report(exp, {"a": [10000, 1000, 0.0, 5000], "b": [9400, 940, 0.0, 4740]})
    assert mild["srm"]["level"] == "warn"


def test_a_guardrail_flags_an_arm_that_costs_reward_while_its_conversion_rate_holds():
    exp = parse_experiments([{"name": "g", "slot": "s", "arms": [{"name": "control"}, {"name": "cheap"}],
                              "guardrails": [{"metric": "reward_per_exposure", "max_drop": 0.05},
                                             {"metric": "conversion_rate", "max_drop": 0.05}]}])[0]
    # 20,000 exposures each, 10% convert in both; the control's conversions are purchases worth 5 half the time,
    # the cheap arm's are clicks only: the same conversion rate, 40% less reward per exposure
    control = [20_000, 2_000, 1_000 * 5.0 + 1_000 * 1.0, 10_000, 1_000 * 25.0 + 1_000 * 1.0]
    cheap = [20_000, 2_000, 2_000 * 1.0, 10_000, 2_000 * 1.0]
    r = report(exp, {"control": control, "cheap": cheap})
    reward, conversion = r["arms"][1]["guardrails"]
    assert reward["status"] == "breached" and reward["diff_ci95"][1] < reward["tolerance"]
    assert conversion["status"] == "ok"
    same = report(exp, {"control": control, "cheap": list(control)})
    assert [g["status"] for g in same["arms"][1]["guardrails"]] == ["ok", "ok"]
    thin = report(exp, {"control": [40, 4, 12.0, 20, 52.0], "cheap": [40, 4, 4.0, 20, 4.0]})
    assert thin["arms"][1]["guardrails"][0]["status"] == "at_risk"  # worse, but too few exposures to be sure


def test_reward_interval_covers_the_true_mean_at_its_nominal_rate():
    import random

    from shiftstream.transforms.experiments import count, reward_interval

    rng = random.Random(4)
    covered = 0
    for _ in range(400):
        counts: dict = {}
        for _ in range(300):  # clicks (1) at 10%, purchases (5) at 2%: mean 0.2
            u = rng.random()
            count(counts, "a", 5.0 if u < 0.02 else 1.0 if u < 0.12 else 0.0, False)
        mean, lo, hi = reward_interval(counts["a"])
        covered += lo <= 0.2 <= hi
    # a normal interval on skewed rewards covers a little under 95% at n=300 (91.8% here); far off would be a bug
    assert 0.90 <= covered / 400 <= 0.98
    assert reward_interval([1, 1, 1.0, 1, 1.0]) == (1.0, None, None)
