"""What the core emits besides new state: one small record type per kind of output."""
from __future__ import annotations

from typing import NamedTuple

from .events import Ev


class Changed(NamedTuple):
    """The user's state moved on: a decision is due."""
    key: str
    event_time: int


class Late(NamedTuple):
    """An event that arrived after the watermark passed its time (allowed lateness exceeded)."""
    key: str
    event: Ev
    watermark: int


class Duplicate(NamedTuple):
    """A redelivery of an event id already seen."""
    key: str
    event_id: str


class Blocked(NamedTuple):
    """An event not processed for privacy: no consent, consent revoked, or the user was erased."""
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
    """The user's profile was purged: delete their decision everywhere."""
    key: str
    reason: str
