"""Diversity: a category cap across a decision's slots, exploration in top_categories, and the measures."""
import pytest

from shiftstream.transforms.choosing import Chooser
from shiftstream.transforms.config import ConfigError, config_from_dict, load_config
from shiftstream.transforms.content import parse_experiments, parse_slots
from shiftstream.transforms.diversity import coverage, explore, intra_list_diversity
from shiftstream.transforms.draws import unit
from shiftstream.transforms.features import feature_names
from shiftstream.transforms.policies import POLICIES, policy

CATS = ("books", "games", "music")


def page(policies=("thompson", "ucb1", "epsilon_greedy")):
    """Three slots, each with one variant per category (the policy alone would pick the same category in each)."""
    return parse_slots([{"name": f"s{i}", "policy": p, "context": "none",
                         **({"features": ["session_clicks"]} if p == "linucb" else {}),
                         "variants": [{"id": f"s{i}-{c}", "category": c} for c in CATS]}
                        for i, p in enumerate(policies)])


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_restricted_choice_stays_inside_the_allowed_arms_and_its_propensity_is_its_frequency(name):
    s = page((name,))[0]
    p = policy(name)
    st = p.new(3, s)
    for i in range(300):  # arm 0 the best by far: unrestricted, most policies pick it
        p.update(st, 0, float(i % 2 == 0), (1.0, 0.0))
        p.update(st, 1, float(i % 10 == 0), (1.0, 0.0))
        p.update(st, 2, float(i % 20 == 0), (1.0, 0.0))
    prepared = p.prepare(st, ("t", 1), s)
    allowed = frozenset({1, 2})
    n, counts, props = 20_000, [0, 0, 0], {}
    for t in range(n):
        i, q = p.choose(prepared, (1.0, 0.0), unit("t", t), allowed)
        counts[i] += 1
        props[i] = q
    assert counts[0] == 0
    for i, c in enumerate(counts):
        if c:
            assert abs(c / n - props[i]) < 0.02, (name, counts, props)


def _chooser(cap, slots=None, experiments=()):
    cfg = load_config().replace(**{"content.slots": slots or page(), "content.experiments": experiments,
                                   "content.max_per_category": cap})
    return Chooser(cfg)


def _categories(choice, slots):
    by_id = {v.id: v.category for s in slots for v in s.variants}
    return [by_id[c["variant"]] for c in choice.values()]


def test_a_category_cap_keeps_a_decisions_slots_apart_and_says_so():
    slots = page()
    values = [0.0] * len(feature_names(load_config()))
    free, capped = _chooser(0, slots), _chooser(1, slots)
    same = 0
    for u in range(400):
        f = _categories(free.choose(f"u{u}", 60_000 * 100, values, "general", None), slots)
        c = capped.choose(f"u{u}", 60_000 * 100, values, "general", None)
        same += len(set(f)) < len(f)
        assert sorted(_categories(c, slots)) == sorted(CATS)  # one of each: the cap held for every user
        assert [c[s.name]["reason"] for s in slots] == ["policy", "diversity", "diversity"]
        assert c["s0"]["variant"] == free.choose(f"u{u}", 60_000 * 100, values, "general", None)["s0"]["variant"]
    assert same > 100  # without the cap, slots repeat a category often (a prior-only snapshot: uniform choices)


def test_the_cap_never_overrides_an_experiment_arm_but_counts_what_it_shows():
    slots = page()
    exps = parse_experiments([{"name": "x", "slot": "s1", "arms": [{"name": "fixed", "variant": "s1-books"},
                                                                    {"name": "fixed2", "variant": "s1-books"}]}])
    ch = _chooser(1, slots, exps)
    values = [0.0] * len(feature_names(load_config()))
    for u in range(200):
        c = ch.choose(f"u{u}", 60_000 * 100, values, "general", None)
        assert c["s1"]["variant"] == "s1-books" and c["s1"]["reason"] == "arm"
        if c["s0"]["variant"] != "s0-books":  # s2 sees books taken by s1 (and s0's category)
            assert c["s2"]["variant"].split("-")[1] not in ("books", c["s0"]["variant"].split("-")[1])


def test_the_fixed_policy_shows_the_slots_fallback():
    s = parse_slots([{"name": "f", "policy": "fixed", "fallback": "b", "variants": ["a", "b", "c"]}])[0]
    p = policy("fixed")
    assert p.choose(p.prepare(p.new(3, s), ("f", 0), s), None, 0.3) == (1, 1.0)
    assert p.choose(p.prepare(p.new(3, s), ("f", 0), s), None, 0.3, frozenset({2})) == (2, 1.0)


def test_exploration_in_top_categories_names_the_rest_of_the_catalogue_deterministically():
    catalogue = tuple(f"c{i}" for i in range(12))
    top = ["c0", "c1", "c2", "c3", "c4"]
    got = explore(top, "u1", 5 * 60_000 + 10, 60_000, catalogue, 2)
    assert got[:3] == top[:3] and len(got) == 5 and not set(got[3:]) & set(top)
    assert got == explore(top, "u1", 5 * 60_000 + 59_000, 60_000, catalogue, 2)  # one epoch: the same
    seen = set()
    for e in range(200):  # over epochs (and users), the whole rest of the catalogue is named
        seen.update(explore(top, "u1", e * 60_000, 60_000, catalogue, 2)[3:])
    assert seen == set(catalogue) - set(top)
    assert explore(["c0"], "u", 0, 60_000, catalogue, 1)[0] == "c0" and len(explore(["c0"], "u", 0, 60_000,
                                                                                      catalogue, 1)) == 2
    assert explore(top, "u", 0, 60_000, ("c0", "c1"), 2) == top  # nothing outside the top: the user's own stay
    assert explore(top, "u", 0, 60_000, catalogue, 0) is top


def test_the_measures():
    assert intra_list_diversity(["a", "a", "a"]) == 0.0
    assert intra_list_diversity(["a", "b", "c"]) == 1.0
    assert intra_list_diversity(["a", "a", "b"]) == pytest.approx(2 / 3)
    assert coverage(["a", "b", "b"], ["a", "b", "c", "d"]) == 0.5


def test_explore_top_needs_a_catalogue_with_categories():
    with pytest.raises(ConfigError, match="explore_top"):
        config_from_dict({"content": {"explore_top": 1, "slots": [{"name": "s", "variants": ["a", "b"]}]}})
    with pytest.raises(ConfigError, match="explore_top"):
        config_from_dict({"content": {"explore_top": 5, "slots": [
            {"name": "s", "variants": [{"id": "a", "category": "x"}]}]}})
    cfg = config_from_dict({"content": {"explore_top": 2, "max_per_category": 1, "slots": [
        {"name": "s", "variants": [{"id": "a", "category": "x"}]}]}})
    assert cfg.content.explore_top == 2 and cfg.content.max_per_category == 1
