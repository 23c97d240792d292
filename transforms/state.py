"""Per-user state as plain, versioned data: what the core keeps between events, serialisable to a dict."""
from __future__ import annotations

from .config import Config
from .events import Ev
from .profile import Profile
from .sessions import Session
from .shift import ShiftDetector
from .windows import Windows

STATE_VERSION = 2
NO_TIME = -(2**63)


class UserState:
    """Everything the core knows about one (pseudonymised) user."""

    __slots__ = ("pending_ids", "pending", "watermark", "session", "session_open", "recency_ms", "windows", "profile",
                 "shift", "granted_at", "revoked_at", "erased_at", "last_ts")

    def __init__(self, cfg: Config):
        self.pending: list[Ev] = []           # accepted, waiting for the watermark, ordered by (ts, event_id)
        self.pending_ids: set[str] = set()    # their ids: a redelivery of an applied event is late, so this suffices
        self.watermark = NO_TIME              # the watermark up to which events have been applied
        self.session: Session | None = None   # the current or most recent session
        self.session_open = False
        self.recency_ms = 0                   # gap between the current session and the one before
        self.windows = Windows(cfg.windows.sliding, cfg.windows.max_events)
        self.profile = Profile(cfg.profile.max_categories)
        self.shift = ShiftDetector()
        self.granted_at: int | None = None
        self.revoked_at: int | None = None
        self.erased_at: int | None = None
        self.last_ts = NO_TIME

    def reset_profile(self, cfg: Config) -> None:
        """Forget the profile (an expired one), keeping the buffered events, consent records and watermark."""
        self.session = None
        self.session_open = False
        self.recency_ms = 0
        self.windows = Windows(cfg.windows.sliding, cfg.windows.max_events)
        self.profile = Profile(cfg.profile.max_categories)
        self.shift = ShiftDetector()
        self.last_ts = NO_TIME

    def has_profile(self) -> bool:
        return self.profile.events > 0 or bool(self.pending)

    def is_empty(self) -> bool:
        """Nothing worth keeping: no profile, nothing pending, no consent record, no erasure tombstone."""
        return (not self.has_profile() and self.granted_at is None and self.revoked_at is None
                and self.erased_at is None)

    def to_dict(self, pending: bool = True) -> dict:
        """Plain data (dicts, lists, numbers, strings) for checkpoints; `from_dict` restores it exactly.
        pending=False leaves the buffered events out, for engines that keep them apart (appended one by one)."""
        return {
            "v": STATE_VERSION, "pending": [list(e) for e in self.pending] if pending else [],
            "watermark": self.watermark, "session": self.session.to_list() if self.session else None,
            "session_open": self.session_open, "recency_ms": self.recency_ms, "windows": self.windows.to_list(),
            "profile": self.profile.to_list(), "shift": self.shift.to_list(), "granted_at": self.granted_at,
            "revoked_at": self.revoked_at, "erased_at": self.erased_at, "last_ts": self.last_ts,
        }

    def set_pending(self, events) -> None:
        """Replace the buffered events (any order; kept sorted by (ts, event_id))."""
        self.pending = sorted(events)
        self.pending_ids = {e.event_id for e in self.pending}

    @classmethod
    def from_dict(cls, d: dict) -> "UserState":
        if d.get("v") != STATE_VERSION:
            raise ValueError(f"user state version {d.get('v')!r} is not {STATE_VERSION}: migrate it first")
        s = cls.__new__(cls)
        s.pending = [Ev(*e) for e in d["pending"]]
        s.pending_ids = {e.event_id for e in s.pending}
        s.watermark = d["watermark"]
        s.session = Session.from_list(d["session"]) if d["session"] else None
        s.session_open = d["session_open"]
        s.recency_ms = d["recency_ms"]
        s.windows = Windows.from_list(d["windows"])
        s.profile = Profile.from_list(d["profile"])
        s.shift = ShiftDetector.from_list(d["shift"])
        s.granted_at, s.revoked_at, s.erased_at = d["granted_at"], d["revoked_at"], d["erased_at"]
        s.last_ts = d["last_ts"]
        return s
