"""Threshold rules over windowed content metrics: a planted drop fires within its window and pauses the arm, the
hold runs out and clears it, and the records and what is in force depend on the outcome set alone."""
import random

import pytest

from shiftstream.transforms.choosing import Chooser
from shiftstream.transforms.config import ConfigError, config_from_dict, load_config, parse_duration
from shiftstream.transforms.content import parse_slots
from shiftstream.transforms.features import feature_names
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import Outcome
from shiftstream.transforms.thresholds import parse_thresholds

MIN = 60_000
SLOTS = parse_slots([{"name": "hero", "policy": "thompson", "context": "none", "fallback": "c",
                      "variants": ["a", "b", "c"]}])


def cfg(**rule):
    r = {"name": "drop", "slot": "hero", "action": "pause_arm", "window": "10m", "baseline": "1h", "below": 0.8,
         "min_exposures": 50, "hold": "20m", **rule}
    return load_config().replace(**{"content.slots": SLOTS, "content.epoch": MIN, "content.delay_epochs": 1,
                                    "content.thresholds": parse_thresholds([r], parse_duration)})


def outcomes(e, n, rates, skip=()):
    """n exposures per variant in epoch e, exactly rate * n of them clicked (no noise: the right answer is known)."""
    out = []
    for k, (v, rate) in enumerate(rates.items()):
        if v in skip:
            continue
        for i in range(n):
            out.append(Outcome(f"u{i}", "hero", "*", k, v, None, float(i < round(rate * n)), e * MIN + i,
                               f"e{e}-{v}-{i}", None, False))
    return out


def test_a_planted_click_through_drop_pauses_its_arm_within_the_window_and_the_hold_clears_it():
    c = cfg()
    learner = Learner(c.content, MIN)
    drop_at, fired, cleared, paused_at = 90, [], [], []
    for e in range(200):
        v_now = e  # the version a decision in epoch e reads is about here; what is in force decides exposures
        paused, _ = learner.in_force(v_now, "hero", "*") if learner.sealed else (frozenset(), None)
        if "a" in paused:
            paused_at.append(e)
        rates = {"a": 0.10 if e < drop_at else 0.04, "b": 0.06, "c": 0.05}
        for o in outcomes(e, 100, rates, skip=paused):
            learner.add(o)
        learner.seal((e + 1) * MIN)
        for a in learner.take_actions():
            (fired if a.state == "fired" else cleared).append(a)
    assert [a.variant for a in fired][:1] == ["a"] and all(a.variant == "a" for a in fired + cleared)
    first = fired[0]
    assert drop_at + 1 <= first.version <= drop_at + 10 + 1  # within the 10-minute window of the drop
    assert first.window_rate < first.threshold == pytest.approx(0.8 * first.baseline_rate)
    assert first.window_exposures >= 50 and first.baseline_exposures >= 50
    assert cleared and cleared[0].version == pytest.approx(first.version + 20, abs=11)  # the hold ran out
    assert paused_at and paused_at[0] == first.version  # the arm left the choices from that version on


def test_what_is_in_force_paused_arms_leave_the_choice_and_a_fallback_rule_switches_the_slot():
    for action, check in (("pause_arm", lambda ch: ch["variant"] != "a" and ch["paused"] == ["a"]),
                          ("fallback", lambda ch: ch["variant"] == "c" and ch["reason"] == "threshold"),
                          ("alert", lambda ch: ch["reason"] == "policy" and ch["paused"] == [])):
        c = cfg(action=action, **({"variant": "a"} if action != "pause_arm" else {}))
        learner = Learner(c.content, MIN)
        for e in range(120):
            for o in outcomes(e, 100, {"a": 0.10 if e < 90 else 0.02, "b": 0.06, "c": 0.05}):
                learner.add(o)
        learner.seal(120 * MIN)
        acts = learner.take_actions()
        assert acts and acts[0].action == action and acts[0].state == "fired"
        v = acts[0].version
        chooser = Chooser(c)
        values = [0.0] * len(feature_names(c))
        for u in range(300):
            ch = chooser.choose(f"u{u}", (v + 1) * MIN + 5, values, "general", learner)["hero"]
            assert ch["version"] == v and check(ch), (action, ch)


def _noisy(seed, epochs=150):
    rng = random.Random(seed)
    out = []
    for e in range(epochs):
        for i in range(rng.randrange(60, 140)):
            v = rng.choice("abc")
            rate = {"a": 0.12 if e < 70 else 0.03, "b": 0.06, "c": 0.05}[v]
            out.append(Outcome(f"u{i}", "hero", "*", "abc".index(v), v, None, float(rng.random() < rate),
                               e * MIN + rng.randrange(MIN), f"e{e}-{i}", None, False))
    return out


def test_records_and_what_is_in_force_depend_on_the_outcome_set_not_on_the_sealing_schedule():
    c = cfg(variant=None, action="pause_arm")
    outs = _noisy(4)
    whole = Learner(c.content, MIN)
    for o in outs:
        whole.add(o)
    whole.fold_all()
    expected = whole.take_actions()
    assert any(a.variant == "a" and a.state == "fired" for a in expected)
    rng = random.Random(5)
    stepped = Learner(c.content, MIN)
    got, i = [], 0
    by_time = sorted(outs, key=lambda o: o.at)
    wm = 0
    restored_once = False
    while i < len(by_time):
        wm += rng.randrange(1, 7) * MIN
        batch = []
        while i < len(by_time) and by_time[i].at < wm:
            batch.append(by_time[i])
            i += 1
        rng.shuffle(batch)
        for o in batch:
            stepped.add(o)
        stepped.seal(wm - 1)
        got += stepped.take_actions()
        if not restored_once and wm > 80 * MIN:  # a checkpoint and a restore midway change nothing
            import pickle
            again = Learner(c.content, MIN)
            again.restore(pickle.loads(pickle.dumps(stepped.to_dict())))
            stepped, restored_once = again, True
    stepped.seal(2**62)
    got += stepped.take_actions()
    assert got == expected
    for v in range(0, 200):
        assert stepped.in_force(v, "hero", "*") == whole.in_force(v, "hero", "*"), v


@pytest.mark.parametrize("rule,message", [
    ({"slot": "nope"}, "not a configured slot"),
    ({"variant": "z"}, "is not in slot"),
    ({"window": "10s"}, "shorter than content.epoch"),
    ({"action": "explode"}, "action: must be one of"),
    ({"below": 0}, "below"),
    ({"metric": "views"}, "metric"),
    ({"colour": "red"}, "unknown key"),
])
def test_a_bad_rule_is_named(rule, message):
    r = {"name": "r", "slot": "hero", "action": "alert", **rule}
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"content": {"slots": [{"name": "hero", "variants": ["a", "b"]}], "thresholds": [r]}})
