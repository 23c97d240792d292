"""What the core emits besides new state: one small record type per kind of output, and the counter names.

Every engine counts with the names below (the same vocabulary in the reference runner's summary, Beam's metrics
and the Flink job's counts), plus `<name>.<reason>` for the reasons of dead letters, blocked and purged records."""
from __future__ import annotations

from typing import NamedTuple

from .events import Ev

# counters, one name per concept
EVENTS = "events"                  # messages that became arrivals (decoded, checked, pseudonymised)
DEAD_LETTERS = "dead_letters"      # messages that could not be processed (`dead_letters.<reason>` too)
LATE = "late"                      # arrivals behind the watermark, routed to the late output
DUPLICATES = "duplicates"          # redeliveries of an event id still pending
BLOCKED = "blocked"                # refused: consent, erasure, a full buffer (`blocked.<reason>` too)
SESSIONS = "sessions"              # sessions closed
SHIFTS = "shifts"                  # preference shifts detected
DECISIONS_DUE = "decisions_due"    # state changes that call for a new decision (several may share one write)
DECISIONS = "decisions_written"    # decisions rendered and written
PURGED = "purged"                  # profiles purged by a privacy request (`purged.<reason>` too)
PRIVACY = "privacy_requests"       # privacy requests applied
EXPIRED = "expired"                # profiles dropped after `state.ttl` of event time without an event
ACTIONS = "actions"                # trigger actions fired, once settled (`actions.<trigger>` too)
OUTCOMES = "outcomes"              # exposures whose attribution window closed (rewarded or not)
CONTENT_ACTIONS = "content_actions"  # threshold rules' actions fired or cleared (transforms/thresholds.py)
SETTLED = "settled"                # decisions whose provisional events the watermark passed (a marker, not a render)
MARKED = "settled_marks_written"   # settled markers written (decisions not re-rendered since)
COUNTERS = (EVENTS, DEAD_LETTERS, LATE, DUPLICATES, BLOCKED, SESSIONS, SHIFTS, DECISIONS_DUE, DECISIONS, PURGED,
            PRIVACY, EXPIRED, ACTIONS, OUTCOMES, CONTENT_ACTIONS, SETTLED, MARKED)


class Changed(NamedTuple):
    """The user's state moved on: a decision is due."""
    key: str
    event_time: int


class Settled(NamedTuple):
    """The watermark passed provisional events of the user and nothing else changed: the decision already written
    is exact up to the new watermark (engines update its `settled_through` / `provisional` fields only)."""
    key: str


class Late(NamedTuple):
    """An event that arrived after the watermark passed its time (allowed lateness exceeded)."""
    key: str
    event: Ev
    watermark: int

    def record(self) -> dict:
        """The late output's record (plain data, the same on every engine)."""
        return {"key": self.key, "event": self.event._asdict(), "watermark": self.watermark}


class Duplicate(NamedTuple):
    """A redelivery of an event id still waiting for the watermark."""
    key: str
    event_id: str


class Blocked(NamedTuple):
    """An event refused: no consent, consent revoked, the user was erased, or the user's buffer is full
    (`reason`: no_consent, consent_revoked, erased, pending_full)."""
    key: str
    event_id: str
    reason: str


class SessionClosed(NamedTuple):
    key: str
    session: dict


class ShiftDetected(NamedTuple):
    key: str
    ts: int
    from_category: str
    to_category: str
    score: float


class Erased(NamedTuple):
    """The user's profile was purged (`reason`: consent_revoked or erasure): delete their decision everywhere."""
    key: str
    reason: str


class Expired(NamedTuple):
    """The user's profile was dropped: no event for `state.ttl` of event time (their last decision stays in Redis
    until its own `redis.ttl`)."""
    key: str


class ActionFired(NamedTuple):
    """A trigger's action fired at event time `ts` (counted once settled; the decision carries it at once)."""
    key: str
    name: str
    ts: int


class Outcome(NamedTuple):
    """An exposure's result, exact once the watermark passed the end of its attribution window (`at`): the
    variant shown in a slot (`arm_index` among the slot's variants), the user's context then (and the context
    vector `x` for LinUCB), the reward (0: none; a click 1; a purchase `content.purchase_reward`), the user's
    experiment arm, and whether this is the user's first exposure in the slot (`first`, for sample-ratio checks)."""
    key: str
    slot: str
    context: str
    arm_index: int
    variant: str
    x: tuple | None
    reward: float
    at: int
    event_id: str
    arm: str | None
    first: bool


HELD = {c.__name__: c for c in (SessionClosed, ShiftDetected, Expired, ActionFired)}  # outputs that wait to settle


def held_to_list(o) -> list:
    """A held output as plain data: [kind, *fields]."""
    return [type(o).__name__, *o]


def held_from_list(data: list):
    return HELD[data[0]](*data[1:])
