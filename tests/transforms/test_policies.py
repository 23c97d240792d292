"""The bandit policies: the same verbs everywhere, exact propensities, hashed randomness, and learning."""
import math
import random

import numpy as np
import pytest

from shiftstream.transforms.content import parse_slots
from shiftstream.transforms.draws import generator, unit
from shiftstream.transforms.policies import POLICIES, linucb, policy


def slot(name="s", policy_name="thompson", k=4, **kw):
    return parse_slots([{"name": name, "policy": policy_name, "variants": [f"{name}-{i}" for i in range(k)],
                         **({"features": ["session_clicks"]} if policy_name == "linucb" else {}), **kw}])[0]


def run(p, s, truth, rounds, seed=0, epoch=200):
    """A closed loop: choose from a snapshot refreshed every `epoch` rounds, reward from `truth`; the clicks."""
    rng = random.Random(seed)
    stats = p.new(len(truth), s)
    prepared, clicks = p.prepare(stats, ("t", 0), s), 0
    x = (1.0, 0.0)
    for t in range(rounds):
        if t % epoch == 0:
            prepared = p.prepare(stats, ("t", t), s)
        i, _ = p.choose(prepared, x, unit("t", seed, t))
        r = float(rng.random() < truth[i])
        clicks += r
        p.update(stats, i, r, x)
    return clicks


@pytest.mark.parametrize("name", ["thompson", "ucb1", "epsilon_greedy", "linucb"])
def test_a_learning_policy_beats_uniform_and_finds_the_planted_best_arm(name):
    truth = [0.05, 0.05, 0.15, 0.05]
    s = slot(policy_name=name)
    got = run(policy(name), s, truth, 6000)
    uniform = 6000 * sum(truth) / 4
    assert got > 1.5 * uniform, (name, got, uniform)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_choice_and_its_propensity_are_exact_and_replayable(name):
    """The propensity is the probability of the choice: over the draws u in [0, 1) the choices' frequencies match
    it, and the same draw always gives the same choice."""
    s = slot(policy_name=name)
    p = policy(name)
    st = p.new(4, s)
    rng = random.Random(1)
    for _ in range(300):
        i = rng.randrange(4)
        p.update(st, i, float(rng.random() < 0.1 * (i + 1)), (1.0, rng.random()))
    prepared = p.prepare(st, ("v", 7), s)
    x = (1.0, 0.5)
    n = 20000
    freq = [0] * 4
    props = {}
    for j in range(n):
        i, prop = p.choose(prepared, x, (j + 0.5) / n)
        freq[i] += 1
        props.setdefault(i, prop)
        assert props[i] == prop
    for i, c in enumerate(freq):
        if c:
            assert abs(c / n - props[i]) < 2e-3, (name, i, c / n, props[i])
    assert p.choose(p.prepare(st, ("v", 7), s), x, 0.3141) == p.choose(prepared, x, 0.3141)


def test_draws_are_hashes_of_their_inputs_not_a_global_generator():
    random.seed(1)
    a = unit("slot", "user", 5, 9)
    random.seed(2)
    assert unit("slot", "user", 5, 9) == a and unit("slot", "user", 5, 10) != a
    assert unit("ab", "c") != unit("a", "bc")  # the parts are length-prefixed
    assert generator("x").random() == generator("x").random()


def test_discounting_forgets_the_evidence_and_keeps_the_prior():
    s = slot(prior=[2.0, 3.0], discount=0.5, drift=False)
    p = policy("thompson")
    st = p.new(2, s)
    p.update(st, 0, 1.0)
    p.decay(st, 1, s)
    assert st[0][:2] == [0.5, 0.5] and p._posterior(st, s) == [(2.5, 3.0), (2.0, 3.0)]


def test_a_shift_makes_the_context_forget_its_past_and_a_steady_stream_keeps_it():
    s = slot(policy_name="ucb1")
    p = policy("ucb1")
    st = p.new(2, s)
    for epoch in range(40):
        for i in range(200):  # arm 0 converts at 10% throughout; arm 1 at 10%, then 40% from epoch 30
            p.update(st, 0, float(i % 10 == 0))
            p.update(st, 1, float(i % 10 == 0) if epoch < 30 else float(i % 5 < 2))
        p.decay(st, 1, s)
    steady, shifted = st
    assert shifted[0] < 3000 and shifted[1] / shifted[0] > 0.3  # the 10% past is gone
    assert steady[0] < 3000  # and the other arm is re-explored from its recent counts
    calm = p.new(2, s)
    for epoch in range(40):
        for i in range(200):
            p.update(calm, 0, float(i % 10 == 0))
            p.update(calm, 1, float(i % 5 == 0))
        p.decay(calm, 1, s)
    assert calm[0][0] == calm[1][0] == 8000  # nothing moved: nothing forgotten


def test_linucb_solves_like_numpy_without_blas():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5))
    a = m @ m.T + 5 * np.eye(5)
    inv = linucb.inverse([float(v) for v in a.ravel()], 5)
    assert np.allclose(np.array(inv).reshape(5, 5), np.linalg.inv(a), atol=1e-10)


@pytest.mark.parametrize("post", [[(2, 50), (3, 40), (1, 1), (10, 200), (5, 100)],
                                  [(5001, 95000), (5101, 95000), (4900, 95100)],
                                  [(51, 1000), (52, 1000), (1, 1)]])
def test_thompson_probabilities_by_quadrature_match_a_large_monte_carlo(post):
    from shiftstream.transforms.policies.thompson import probability_best

    r, n = random.Random(7), 60_000
    wins = [0] * len(post)
    for _ in range(n):
        v = [r.betavariate(a, b) for a, b in post]
        wins[v.index(max(v))] += 1
    got = probability_best(post)
    assert sum(got) == pytest.approx(1.0)
    for q, w in zip(got, wins):  # within 4 Monte Carlo standard errors
        assert abs(q - w / n) <= 4 * max(math.sqrt(q * (1 - q) / n), 1e-4)


def test_ucb1_tuned_explores_less_than_ucb1_at_click_through_rates():
    truth = [0.03, 0.03, 0.06, 0.03]
    plain = run(policy("ucb1"), slot(policy_name="ucb1"), truth, 20_000, seed=3)
    tuned = run(policy("ucb1"), slot(policy_name="ucb1", tuned=True), truth, 20_000, seed=3)
    best = 20_000 * max(truth)
    assert best - tuned < 0.6 * (best - plain), (plain, tuned)  # far fewer clicks lost to exploration
