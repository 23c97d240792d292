import pytest

from shiftstream.transforms.config import Rule, load_config
from shiftstream.transforms.features import feature_names
from shiftstream.transforms.segments import RuleError, Segmenter, compile_rule

CFG = load_config()
NAMES = feature_names(CFG)


def row(**values):
    r = [0.0] * len(NAMES)
    for k, v in values.items():
        r[NAMES.index(k)] = v
    return r


@pytest.mark.parametrize("values, segment", [
    (dict(session_duration_s=200, session_page_views=51), "engaged_browser"),
    (dict(session_duration_s=200, session_page_views=50), "general"),
    (dict(session_duration_s=30, session_page_views=5), "quick_visitor"),
    (dict(session_duration_s=90, session_page_views=12, duration_trend=16, sessions_total=3), "potential_interested_buyer"),
    (dict(session_duration_s=90, session_page_views=12, duration_trend=16, sessions_total=2), "general"),
    (dict(session_duration_s=90, session_page_views=12, cart_adds_24h=1), "cart_abandoner"),
    (dict(session_duration_s=90, session_page_views=12, cart_adds_24h=1, purchases_24h=1), "general"),
    (dict(session_duration_s=30, session_page_views=5, cart_adds_24h=1), "quick_visitor"),  # priority order
])
def test_every_default_rule(values, segment):
    seg = Segmenter(CFG.segments.rules, NAMES, CFG.segments.default)
    assert seg.assign(row(**values)) == segment


@pytest.mark.parametrize("expr, words", [
    ("session_duration_s >", "not a valid expression"),
    ("__import__('os').system('true')", "Call is not allowed"),
    ("session_duration_s.real > 1", "Attribute is not allowed"),
    ("sesion_duration_s > 1", "unknown feature 'sesion_duration_s'"),
    ("session_duration_s > 'x'", "only numbers"),
    ("[1][0] > 0", "Subscript is not allowed"),
])
def test_bad_rules_are_refused_at_load_with_a_clear_error(expr, words):
    with pytest.raises(RuleError) as exc:
        compile_rule("r", expr, NAMES)
    assert words in str(exc.value)


def test_duplicate_rule_names_and_config_validation():
    with pytest.raises(RuleError):
        Segmenter([Rule("a", "1 > 0"), Rule("a", "1 > 0")], NAMES)
    from shiftstream.transforms.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError) as exc:
        config_from_dict({"segments": {"rules": [{"name": "x", "when": "nope > 1"}]}})
    assert "unknown feature 'nope'" in str(exc.value)
    with pytest.raises(ConfigError) as exc:  # a rule on a window that is not configured
        config_from_dict({"windows": {"sliding": ["5m", "1h"]}})
    assert "cart_adds_24h" in str(exc.value)


def test_arithmetic_and_boolean_logic():
    fn = compile_rule("r", "not (session_clicks / (session_page_views + 1) < 0.5) or sessions_total >= 10", NAMES)
    assert fn(row(session_clicks=6, session_page_views=9))
    assert not fn(row(session_clicks=1, session_page_views=9))
    assert fn(row(sessions_total=10))
