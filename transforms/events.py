"""The core's view of an interaction: a compact tuple without the user id, and the event-type codes."""
from __future__ import annotations

from typing import NamedTuple

EVENT_TYPES = ("page_view", "click", "scroll", "hover", "search", "add_to_cart", "purchase", "impression")
CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
PAGE_VIEW, CLICK, SCROLL, HOVER, SEARCH, CART, PURCHASE, IMPRESSION = range(8)
# how much one event of each type says about interest in its category (impressions are exposure, not interest)
INTEREST_WEIGHT = (1.0, 2.0, 0.0, 0.5, 1.0, 4.0, 6.0, 0.0)


class Ev(NamedTuple):
    """One event as the core keeps it: no user id (state is keyed by the pseudonym outside)."""

    ts: int
    event_id: str
    code: int
    category: str | None
    price: float | None
    dwell_ms: int | None
    scroll_depth: float | None
    hover_ms: int | None
    device: str | None
    variant: str | None


def from_record(rec: dict) -> Ev:
    """The core's tuple for a decoded Interaction record (check it first with `check_record`)."""
    return Ev(rec["ts"], rec["event_id"], CODE[rec["event_type"]], rec["category"], rec["price"], rec["dwell_ms"],
              rec["scroll_depth"], rec["hover_ms"], rec["device"], rec["variant"])


_INF = float("inf")
_IDS = ("event_id", "user_id")
_LABELS = ("category", "variant", "item_id", "session_hint")
_TEXTS = ("page_url", "query")


class Limits(NamedTuple):
    """String lengths beyond which a record is refused (`limits` in the config)."""
    max_id: int = 128
    max_label: int = 128
    max_text: int = 8192


def check_record(rec: dict, latest_ms: int = 1 << 50, limits: Limits = Limits()):
    """A BadValue error for a decoded record that cannot be processed (empty or over-long ids and strings,
    non-finite or absurd numbers, a time after `latest_ms`: processing clock plus the allowed future skew), else
    None. The fast path is one chain of comparisons; the reasons are worked out only for a bad record."""
    ts = rec["ts"]
    eid, uid = rec["event_id"], rec["user_id"]
    if eid and uid and 0 < ts <= latest_ms and len(eid) <= limits.max_id and len(uid) <= limits.max_id:
        sd, dw, hv, pr = rec["scroll_depth"], rec["dwell_ms"], rec["hover_ms"], rec["price"]
        if (sd is None or 0.0 <= sd <= 1.0) and (dw is None or dw >= 0) and (hv is None or hv >= 0) \
                and (pr is None or 0.0 <= pr < _INF):
            g = rec.get
            c, v, it, sh, url, q = g("category"), g("variant"), g("item_id"), g("session_hint"), g("page_url"), \
                g("query")
            n, t = limits.max_label, limits.max_text
            if (c is None or len(c) <= n) and (v is None or len(v) <= n) and (it is None or len(it) <= n) \
                    and (sh is None or len(sh) <= n) and (url is None or len(url) <= t) and (q is None or len(q) <= t):
                return None
    return _problem(rec, latest_ms, limits)


def _problem(rec: dict, latest_ms: int, limits: Limits):
    import math

    from shiftstream.schemas.errors import BadValue, NonFinite, TooLong

    for name in _IDS:
        if not rec.get(name):
            return BadValue(f"{name} is empty")
    for names, cap, key in ((_IDS, limits.max_id, "max_id_length"), (_LABELS, limits.max_label, "max_label_length"),
                            (_TEXTS, limits.max_text, "max_text_length")):
        for name in names:
            v = rec.get(name)
            if v is not None and len(v) > cap:
                return TooLong(f"{name} is {len(v)} characters, over limits.{key} ({cap})")
    ts = rec["ts"]
    if not 0 < ts <= latest_ms:
        return BadValue(f"ts {ts} is not a plausible time in ms (it must be after 1970 and at most {latest_ms}, "
                        "the processing clock plus event_time.max_future_skew)")
    for name in ("scroll_depth", "price"):
        v = rec.get(name)
        if v is not None and not math.isfinite(v):
            return NonFinite(f"{name} is {v}, not a finite number")
    sd = rec.get("scroll_depth")
    if sd is not None and not 0.0 <= sd <= 1.0:
        return BadValue(f"scroll_depth {sd} is outside 0..1")
    for name in ("dwell_ms", "hover_ms", "price"):
        v = rec.get(name)
        if v is not None and v < 0:
            return BadValue(f"{name} {v} is negative")
    return None
