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


def check_record(rec: dict, latest_ms: int = 1 << 50):
    """A BadValue error for a decoded record that cannot be processed (empty ids, absurd values, a time after
    `latest_ms`: processing clock plus the allowed future skew), else None."""
    ts = rec["ts"]
    if rec["event_id"] and rec["user_id"] and 0 < ts <= latest_ms:
        sd, dw, hv, pr = rec["scroll_depth"], rec["dwell_ms"], rec["hover_ms"], rec["price"]
        if (sd is None or 0.0 <= sd <= 1.0) and (dw is None or dw >= 0) and (hv is None or hv >= 0) \
                and (pr is None or pr >= 0):
            return None
    from shiftstream.schemas.errors import BadValue

    if not rec.get("event_id"):
        return BadValue("event_id is empty")
    if not rec.get("user_id"):
        return BadValue("user_id is empty")
    if not 0 < ts <= latest_ms:
        return BadValue(f"ts {ts} is not a plausible time in ms (it must be after 1970 and at most {latest_ms}, "
                        "the processing clock plus event_time.max_future_skew)")
    sd = rec.get("scroll_depth")
    if sd is not None and not 0.0 <= sd <= 1.0:
        return BadValue(f"scroll_depth {sd} is outside 0..1")
    for name in ("dwell_ms", "hover_ms", "price"):
        v = rec.get(name)
        if v is not None and v < 0:
            return BadValue(f"{name} {v} is negative")
    return None
