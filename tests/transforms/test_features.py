"""Windows, profile and feature rows against brute-force recomputation."""
import math
import random

from hypothesis import given, settings, strategies as st

from shiftstream.transforms.config import load_config
from shiftstream.transforms.features import feature_names, feature_row, top_categories
from shiftstream.transforms.profile import Profile
from shiftstream.transforms.windows import Windows, window_label

CFG = load_config()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400_000), st.integers(0, 7), st.sampled_from(["a", "b", "c", None])),
                min_size=1, max_size=300), st.integers(5, 200))
def test_window_counts_equal_brute_force(steps, cap):
    widths = (30_000, 120_000, 600_000)
    w = Windows(widths, cap)
    t = 0
    seen = []
    for dt, code, cat in steps:
        t += dt // 100
        w.add(t, code, cat)
        seen.append((t, code, cat))
    kept = seen[-cap:]
    for i, width in enumerate(widths):
        inside = [e for e in kept if e[0] > t - width]
        assert sum(w.counts[i]) == len(inside)
        for code in range(8):
            assert w.counts[i][code] == sum(1 for e in inside if e[1] == code)
        assert w.cats[i] == {c: sum(1 for e in inside if e[2] == c) for c in {e[2] for e in inside} if c}


def test_window_labels():
    assert [window_label(x) for x in CFG.windows.sliding] == ["5m", "1h", "24h"]
    assert window_label(30_000) == "30s"


def test_affinity_decays_with_half_life_and_diversity_is_entropy():
    from shiftstream.transforms.events import Ev

    p = Profile(64)
    hl = 1000
    p.add(Ev(0, "1", 0, "a", None, None, None, None, None, None), hl)
    p.add(Ev(1000, "2", 0, "b", None, None, None, None, None, None), hl)
    aff = p.affinity()
    assert math.isclose(aff["b"] / aff["a"], 2.0)  # a's weight halved after one half-life
    assert math.isclose(p.diversity(), -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(2))
    for i in range(200):  # far beyond the re-anchoring point, shares stay right
        p.add(Ev(1000 + (i + 1) * 500, str(i), 0, "c" if i % 2 else "b", None, None, None, None, None, None), hl)
    assert abs(sum(p.affinity().values()) - 1) < 1e-9


def test_duration_trend_is_the_least_squares_slope():
    p = Profile(8)
    for d in (10, 20, 30, 40):
        p.session_closed(d, 10)
    assert math.isclose(p.trend(), 10.0)
    assert math.isclose(p.trend(current_s=50), 10.0)
    p2 = Profile(8)
    for d in (40, 30, 20):
        p2.session_closed(d, 10)
    assert p2.trend() < 0


def test_feature_row_matches_names_and_top_categories_apply_the_shift():
    from shiftstream.transforms.core import Core
    from shiftstream.transforms.events import Ev

    core = Core(CFG)
    s = None
    rng = random.Random(3)
    t = 1_000_000
    for i in range(200):  # books first, then a clear move to garden that lasts over several sessions
        cat = "books" if i < 100 else "garden"
        if rng.random() < 0.2:
            cat = "toys"
        t += 5000 if i % 40 else 3 * 3_600_000
        s, _ = core.accept(s, "k", Ev(t, f"e{i}", 0, cat, None, 1000, None, None, "mobile", None), 0)
    s, outs = core.advance(s, "k", t)
    row = feature_row(s, CFG)
    names = feature_names(CFG)
    assert len(row) == len(names) == len(set(names))
    f = dict(zip(names, row))
    assert f["events_total"] == 200 and f["session_page_views"] == 40 and f["session_open"] == 1.0
    assert f["sessions_total"] == 5
    assert f["shift_detected"] == 1.0
    assert top_categories(s)[0] == "garden" and top_categories(s)[-1] == "books"
