"""Event triggers: config rules that fire an action on the event that satisfies them, on the provisional path."""
import subprocess
import sys

import pytest

from shiftstream.transforms.config import ConfigError, config_from_dict, load_config
from shiftstream.transforms.core import Core
from shiftstream.transforms.decisions import snapshot
from shiftstream.transforms.events import EVENT_TYPES, Ev
from shiftstream.transforms.outputs import ActionFired, Changed
from shiftstream.transforms.segments import RuleError
from shiftstream.transforms.triggers import compile_condition

CFG = load_config()
MIN = 60_000
T0 = 1_700_000_000_000
LATENESS = CFG.event_time.allowed_lateness


def ev(ts, eid, kind="page_view", cat="books", **kw):
    f = dict(price=None, dwell_ms=None, scroll_depth=None, hover_ms=None, device="desktop", variant=None)
    f.update(kw)
    return Ev(ts, eid, EVENT_TYPES.index(kind), cat, f["price"], f["dwell_ms"], f["scroll_depth"], f["hover_ms"],
              f["device"], f["variant"])


def feed(core, events, watermark=0):
    """Accept the events in turn (the watermark held back); each is applied at once."""
    st = None
    for e in events:
        st, outs = core.accept(st, "k", e, watermark)
        assert type(outs[0]) is Changed, outs
    return st


def test_the_default_triggers_fire_on_the_event_that_satisfies_them_and_not_on_others():
    core = Core(CFG)
    st = feed(core, [ev(T0, "a"), ev(T0 + 1000, "b", "hover", hover_ms=2999),
                     ev(T0 + 2000, "c", "click"), ev(T0 + 3000, "d", "hover", hover_ms=3001)])
    # provisional: the action is on the state (and the decision) at once, long before the watermark passes
    assert st.actions == [("show_reviews", T0 + 3000)]
    row = snapshot(st, "k", CFG)
    assert row.actions == [("show_reviews", T0 + 3000)] and row.provisional == 4 and row.settled_through is None
    st, outs = core.advance(st, "k", T0 + 3000)  # the watermark passes: the action is released as a fact, once
    assert [o for o in outs if isinstance(o, ActionFired)] == [ActionFired("k", "show_reviews", T0 + 3000)]
    assert snapshot(st, "k", CFG).settled_through == T0 + 3000


def test_once_per_session_fires_once_a_session_and_again_in_the_next():
    core = Core(CFG)
    gap = CFG.sessions.gap
    st = feed(core, [ev(T0, "a", "scroll", scroll_depth=0.9), ev(T0 + 1000, "b", "scroll", scroll_depth=0.95),
                     ev(T0 + 2000, "c", "scroll", scroll_depth=0.5),
                     ev(T0 + gap + 5000, "d", "scroll", scroll_depth=0.8)])
    assert st.actions == [("show_next_article", T0), ("show_next_article", T0 + gap + 5000)]


def test_cart_reminder_fires_wait_after_the_cart_add_unless_a_purchase_came_first():
    core = Core(CFG)
    wait = 10 * MIN
    # a purchase in time disarms it
    st = feed(core, [ev(T0, "a", "add_to_cart", price=10.0), ev(T0 + MIN, "b", "purchase", price=10.0)])
    assert st.armed == {} and st.actions == []
    st, _ = core.advance(st, "k", T0 + 60 * MIN)
    assert st.actions == []
    # no purchase: a later event of the user's dated past the due time fires it, at the due time
    st = feed(core, [ev(T0, "a", "add_to_cart", price=10.0), ev(T0 + 11 * MIN, "b")])
    assert st.actions == [("cart_reminder", T0 + wait)]
    # no purchase, no further event: the event-time timer fires it when the watermark passes the due time
    st = feed(core, [ev(T0, "a", "add_to_cart", price=10.0)])
    assert core.next_timer(st) == T0
    st, outs = core.advance(st, "k", T0)
    assert st.actions == [] and core.next_timer(st) == T0 + wait
    st, outs = core.advance(st, "k", T0 + wait)
    assert st.actions == [("cart_reminder", T0 + wait)]
    assert ActionFired("k", "cart_reminder", T0 + wait) in outs and Changed("k", st.last_ts) in outs


def test_a_late_arriving_earlier_purchase_takes_back_a_provisional_reminder():
    """Out of order within the lateness: the replay from the settled base recomputes the actions exactly."""
    core = Core(CFG)
    st = feed(core, [ev(T0, "a", "add_to_cart", price=10.0), ev(T0 + 11 * MIN, "c")])
    assert st.actions == [("cart_reminder", T0 + 10 * MIN)]
    st, outs = core.accept(st, "k", ev(T0 + MIN, "b", "purchase", price=10.0), 0)
    assert st.actions == [] and st.armed == {}
    st, outs = core.advance(st, "k", T0 + 12 * MIN)
    assert not [o for o in outs if isinstance(o, ActionFired)]  # the retracted action never became a fact


def test_session_metric_thresholds_and_the_latest_actions_kept():
    cfg = config_from_dict({"triggers": {"keep": 2, "rules": [
        {"name": "deep_visit", "when": "session_page_views >= 3", "once_per_session": True},
        {"name": "big_spender", "when": "event_type in ('purchase', 'add_to_cart') and price * 2 > 100"},
        {"name": "mobile_books", "when": "device == 'mobile' and category == 'books'"}]}})
    core = Core(cfg)
    st = feed(core, [ev(T0 + i * 1000, f"p{i}") for i in range(5)])
    assert st.actions == [("deep_visit", T0 + 2000)]  # crossed once, not on every page view after
    st = feed(core, [ev(T0, "a", "purchase", price=60.0), ev(T0 + 1, "b", "purchase", price=40.0),
                     ev(T0 + 2, "c", device="mobile"), ev(T0 + 3, "d", device="mobile", cat="toys"),
                     ev(T0 + 4, "e", "add_to_cart", price=70.0)])
    assert st.actions == [("mobile_books", T0 + 2), ("big_spender", T0 + 4)]  # keep: 2, newest last


@pytest.mark.parametrize("rule, words", [
    ({"name": "x", "when": "hover_mss > 3"}, ["trigger 'x'", "unknown field 'hover_mss'"]),
    ({"name": "x", "when": "event_type == 'hovr'"}, ["trigger 'x'", "unknown event type 'hovr'"]),
    ({"name": "x", "when": "event_type > 'hover'"}, ["trigger 'x'", "==, !=, in or not in"]),
    ({"name": "x", "when": "category == 3"}, ["trigger 'x'", "string field"]),
    ({"name": "x", "when": "hover_ms > 'a'"}, ["trigger 'x'", "must be compared with a string field"]),
    ({"name": "x", "when": "__import__('os')"}, ["trigger 'x'", "Call is not allowed"]),
    ({"name": "x", "when": "hover_ms >"}, ["trigger 'x'", "not a valid expression"]),
    ({"name": "x", "when": "hover_ms > 1", "wait": "5m"}, ["trigger 'x'", "either `when`"]),
    ({"name": "x", "after": "event_type == 'click'"}, ["trigger 'x'", "positive `wait`"]),
    ({"name": "x"}, ["trigger 'x'", "`when`"]),
    # accepted once, then crashing on the first event (a review found them): refused at load now
    ({"name": "x", "when": "'hover' in event_type"}, ["trigger 'x'", "takes a list of quoted strings"]),
    ({"name": "x", "when": "category in 'shoes'"}, ["trigger 'x'", "takes a list of quoted strings"]),
    ({"name": "x", "when": "price < category"}, ["trigger 'x'", "category is a string field"]),
    ({"name": "x", "when": "-category > 0"}, ["trigger 'x'", "no arithmetic"]),
    ({"name": "x", "when": "price * 1" + "0" * 400 + " > 1"}, ["trigger 'x'", "out of range"]),
    ({"name": "x", "when": "event_type == 'hover' != category"}, ["trigger 'x'", "not in a chain"]),
    ({"name": "x", "when": "category == ('a', 'b')"}, ["trigger 'x'", "takes one quoted string"]),
])
def test_invalid_trigger_rules_are_refused_at_load_with_the_name_and_the_reason(rule, words):
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"triggers": {"rules": [rule]}})
    text = " ".join(exc.value.problems)
    assert "triggers.rules" in text and all(w in text for w in words), exc.value.problems


def test_a_trigger_defined_twice_is_refused():
    rule = {"name": "x", "when": "hover_ms > 1"}
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"triggers": {"rules": [rule, rule]}})
    assert any("defined twice" in p for p in exc.value.problems)


def test_config_check_refuses_a_bad_trigger_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("triggers:\n  rules:\n    - name: show_reviews\n      when: \"hover_time > 3000\"\n")
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "config", "check", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "show_reviews" in r.stderr and "unknown field 'hover_time'" in r.stderr, r.stderr


def test_an_arithmetic_error_makes_a_rule_false_for_that_event_and_never_stops_the_job():
    cfg = config_from_dict({"triggers": {"rules": [{"name": "per_view", "when": "price / (session_events - 1) > 1"},
                                                   {"name": "big", "when": "price * 1e15 * 1e15 * 1e15 > 1"}]}})
    core = Core(cfg)
    st = feed(core, [ev(T0, "a", price=5.0), ev(T0 + 1000, "b", price=5.0)])
    # the first event divides by zero (no action), the second fires; 1e45 is a float: no overflow to raise
    assert st.actions == [("big", T0), ("per_view", T0 + 1000), ("big", T0 + 1000)]


def test_conditions_see_a_missing_number_as_never_true():
    when = compile_condition("x", "hover_ms > 0 or not hover_ms <= 0")
    assert when(ev(T0, "a", "click"), None) is True  # NaN: every comparison false, so `not` of one is true
    assert compile_condition("y", "hover_ms > 0")(ev(T0, "a", "click"), None) is False
    with pytest.raises(RuleError):
        compile_condition("z", "   ")
