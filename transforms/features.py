"""The feature vector a decision carries: session, sliding windows, profile and shift, in a fixed order."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from .events import INTEREST_WEIGHT
from .windows import WINDOW_FEATURES, window_label

if TYPE_CHECKING:
    from .config import Config

SESSION_FEATURES = (
    "session_duration_s", "session_events", "session_page_views", "session_clicks", "session_scrolls",
    "session_hovers", "session_searches", "session_cart_adds", "session_purchases", "session_impressions",
    "session_dwell_mean_s", "session_dwell_max_s", "session_scroll_max", "session_hover_total_s",
    "session_categories", "session_open",
)
PROFILE_FEATURES = (
    "sessions_total", "events_total", "recency_s", "tenure_d", "frequency_per_day", "monetary_total",
    "purchases_total", "affinity_top", "diversity", "duration_trend", "mean_session_duration_s", "cart_pending",
    "shift_score", "shift_detected",
)


@lru_cache(maxsize=16)
def _names(widths: tuple[int, ...]) -> tuple[str, ...]:
    win = tuple(f"{f}_{window_label(w)}" for w in widths for f in WINDOW_FEATURES)
    return SESSION_FEATURES + win + PROFILE_FEATURES


def feature_names(cfg: "Config") -> tuple[str, ...]:
    """Names of the feature vector, in order, for this configuration's windows."""
    return _names(cfg.windows.sliding)


@lru_cache(maxsize=16)
def _index(widths: tuple[int, ...]) -> dict[str, int]:
    return {n: i for i, n in enumerate(_names(widths))}


def feature_index(cfg: "Config") -> dict[str, int]:
    """Where each named feature sits in the vector: the one table that readers of a row go through by name."""
    return _index(cfg.windows.sliding)


def feature_row(state, cfg: "Config") -> tuple[float, ...]:
    """The feature vector of a user's state (see `feature_names`)."""
    s = state.session
    p = state.profile
    if s is not None:
        bt = s.by_type
        dur = (s.last - s.start) / 1000
        sess = (dur, float(s.n), float(bt[0]), float(bt[1]), float(bt[2]), float(bt[3]), float(bt[4]), float(bt[5]),
                float(bt[6]), float(bt[7]), s.dwell_sum / s.dwell_n / 1000 if s.dwell_n else 0.0, s.dwell_max / 1000,
                float(s.scroll_max), s.hover_total / 1000, float(len(s.cats)), 1.0 if state.session_open else 0.0)
    else:
        dur = None
        sess = (0.0,) * len(SESSION_FEATURES)
    w = state.windows
    win: tuple = ()
    for i in range(len(w.widths)):
        win += w.values(i)
    tenure_d = (p.last_ts - p.first_ts) / 86_400_000 if p.events else 0.0
    sessions_total = p.sessions + (1 if state.session_open else 0)
    aff = p.aff
    total = sum(aff.values())
    durations = p.durations
    cur = dur if state.session_open else None
    n_d = len(durations) + (1 if cur is not None else 0)
    mean_d = (sum(durations) + (cur or 0.0)) / n_d if n_d else 0.0
    sh = state.shift
    prof = (float(sessions_total), float(p.events), state.recency_ms / 1000, tenure_d,
            sessions_total / max(1.0, tenure_d), p.monetary, float(p.purchases),
            max(aff.values()) / total if total else 0.0, p.diversity(), p.trend(cur), mean_d,
            1.0 if p.last_cart_ts > p.last_purchase_ts else 0.0, sh.score_now(), 1.0 if sh.last else 0.0)
    return sess + win + prof


def top_categories(state, k: int = 5) -> list[str]:
    """Categories to show, ranked by affinity with the latest shift applied (its target first, its source last)."""
    aff = state.profile.aff
    ranked = sorted(aff, key=lambda c: (-aff[c], c))
    last = state.shift.last
    if last is not None:
        _, frm, to, _ = last
        if to in ranked:
            ranked.remove(to)
        ranked.insert(0, to)
        if frm in ranked and len(ranked) > 1:
            ranked.remove(frm)
            ranked.append(frm)
    return ranked[:k]


def recent_categories(state, n: int = 10) -> list[str]:
    """The categories of the user's last `n` interest events, oldest first (from the window buffer)."""
    out: list[str] = []
    buf = state.windows.buf
    i = len(buf) - 1
    while i >= 0 and len(out) < n:
        _, code, cat = buf[i]
        if cat is not None and INTEREST_WEIGHT[code]:
            out.append(cat)
        i -= 1
    out.reverse()
    return out
