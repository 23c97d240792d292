"""Per-user state as plain, versioned data: what the core keeps between events, serialisable to a dict."""
from __future__ import annotations

from .config import Config
from .events import Ev
from .profile import Profile
from .sessions import Session
from .shift import ShiftDetector
from .windows import Windows

STATE_VERSION = 4
NO_TIME = -(2**63)


class UserState:
    """Everything the core knows about one (pseudonymised) user."""

    __slots__ = ("pending_ids", "pending", "base", "snaps", "held", "settled", "watermark", "session", "session_open",
                 "recency_ms", "windows", "profile", "shift", "actions", "armed", "fired", "granted_at", "revoked_at",
                 "erased_at", "last_ts", "exposures", "attributed", "seen_slots",
                 "decided_at", "level", "level_at", "off_at")

    # the fields one event's application reads and writes (what `base` keeps a copy of)
    PROFILE_PART = ("session", "session_open", "recency_ms", "windows", "profile", "shift", "actions", "armed",
                    "fired", "last_ts", "exposures")

    def __init__(self, cfg: Config):
        # Provisional and settled (see core.py): the profile fields below have every accepted event applied, in
        # (event time, event id) order. `pending` holds the events applied since `base`, a copy of the profile
        # part from before the first of them, kept so that an earlier event arriving later can be put in its
        # place (replayed from `base`); `settled` of them lie at or before `watermark`, the rest are provisional.
        self.pending: list[Ev] = []           # applied since `base`, ordered by (ts, event_id)
        self.pending_ids: set[str] = set()    # their ids: a redelivery of a folded event is late, so this suffices
        self.base: UserState | None = None    # the profile part before pending[0] (None: nothing pending)
        self.snaps: list = []                 # (pending event, profile part before it) every SNAP_EVERY pending
                                              # events: a cache (not checkpointed) that lets an out-of-order event
                                              # replay from just before its place, and a fold drop settled events
        self.held: list = []                  # (event, output) for outputs of provisional events, in event order:
                                              # released when the watermark passes the event
        self.settled = 0                      # pending events at or before the watermark
        self.watermark = NO_TIME              # the watermark up to which the state is exact
        self.session: Session | None = None   # the current or most recent session
        self.session_open = False
        self.recency_ms = 0                   # gap between the current session and the one before
        self.windows = Windows(cfg.windows.sliding, cfg.windows.max_events)
        self.profile = Profile(cfg.profile.max_categories)
        self.shift = ShiftDetector()
        self.actions: list = []               # [trigger name, event time] of the latest actions, oldest first
        self.armed: dict[str, int] = {}       # timer trigger -> when it fires (event time)
        self.fired: list[str] = []            # once-per-session triggers fired in the current session
        self.granted_at: int | None = None
        self.revoked_at: int | None = None
        self.erased_at: int | None = None
        self.last_ts = NO_TIME
        # attribution (content slots): exposures whose window is open, in event order, each
        # [ts, event_id, slot index, variant index, context, context vector, reward so far]
        self.exposures: list = []
        self.attributed: tuple | None = None  # (ts, event_id) of the latest exposure whose outcome was emitted
        self.seen_slots: list = []            # slots the user has an emitted exposure in (first-exposure counts)
        self.decided_at = NO_TIME             # event time the decision is as of: the latest event accepted, or
                                              # the timer (a session close, a trigger) that changed it since
        self.level = "full"                   # personalization level the user chose: full, basic or off
        self.level_at: int | None = None      # time of the request that set it (the latest request wins)
        self.off_at: int | None = None        # time of the latest "off" request: events up to it stay refused

    def reset_profile(self, cfg: Config) -> None:
        """Forget the profile (an expired one), keeping the buffered events, consent records and watermark."""
        self.session = None
        self.session_open = False
        self.recency_ms = 0
        self.windows = Windows(cfg.windows.sliding, cfg.windows.max_events)
        self.profile = Profile(cfg.profile.max_categories)
        self.shift = ShiftDetector()
        self.actions = []
        self.armed = {}
        self.fired = []
        self.last_ts = NO_TIME
        self.exposures = []

    def profile_copy(self) -> "UserState":
        """A copy of the profile part (for `base`), deep where one event's application would change it."""
        c = UserState.__new__(UserState)
        c.session = self.session.copy() if self.session is not None else None
        c.session_open, c.recency_ms, c.last_ts = self.session_open, self.recency_ms, self.last_ts
        c.windows, c.profile, c.shift = self.windows.copy(), self.profile.copy(), self.shift.copy()
        c.actions, c.armed, c.fired = list(self.actions), dict(self.armed), list(self.fired)
        c.exposures = [list(x) for x in self.exposures]
        return c

    def take_profile(self, src: "UserState") -> None:
        """Make the profile part a copy of `src`'s (a replay from `base` starts here)."""
        c = src.profile_copy()
        for f in UserState.PROFILE_PART:
            setattr(self, f, getattr(c, f))

    def provisional(self) -> int:
        """Applied events the watermark has not passed yet (0: the state is exact)."""
        return len(self.pending) - self.settled

    def has_profile(self) -> bool:
        return self.profile.events > 0 or bool(self.pending)

    def is_empty(self) -> bool:
        """Nothing worth keeping: no profile, nothing pending, no consent record, no erasure tombstone."""
        return (not self.has_profile() and self.granted_at is None and self.revoked_at is None
                and self.erased_at is None and self.level_at is None)

    def _profile_dict(self) -> dict:
        return {"session": self.session.to_list() if self.session else None, "session_open": self.session_open,
                "recency_ms": self.recency_ms, "windows": self.windows.to_list(), "profile": self.profile.to_list(),
                "shift": self.shift.to_list(), "actions": [list(a) for a in self.actions], "armed": dict(self.armed),
                "fired": list(self.fired), "last_ts": self.last_ts,
                "exposures": [list(x) for x in self.exposures]}

    def _take_profile_dict(self, d: dict) -> None:
        self.session = Session.from_list(d["session"]) if d["session"] else None
        self.session_open = d["session_open"]
        self.recency_ms = d["recency_ms"]
        self.windows = Windows.from_list(d["windows"])
        self.profile = Profile.from_list(d["profile"])
        self.shift = ShiftDetector.from_list(d["shift"])
        self.actions = [tuple(a) for a in d["actions"]]
        self.armed = dict(d["armed"])
        self.fired = list(d["fired"])
        self.last_ts = d["last_ts"]
        self.exposures = [[*x[:5], tuple(x[5]) if x[5] is not None else None, x[6]] for x in d["exposures"]]

    def to_dict(self, pending: bool = True) -> dict:
        """Plain data (dicts, lists, numbers, strings) for checkpoints.

        pending=True: everything, restored exactly by `from_dict`. pending=False: the settled form, for engines
        that keep the pending events apart (put one by one as they arrive): the profile part as of `base` and no
        events; `Core.restore(d, events)` replays the events onto it."""
        head = {"v": STATE_VERSION, "watermark": self.watermark, "granted_at": self.granted_at,
                "revoked_at": self.revoked_at, "erased_at": self.erased_at,
                "attributed": list(self.attributed) if self.attributed else None, "seen_slots": list(self.seen_slots),
                "decided_at": self.decided_at, "level": self.level, "level_at": self.level_at, "off_at": self.off_at}
        if not pending:
            src = self.base if self.base is not None else self
            return {**head, **src._profile_dict(), "pending": [], "base": None, "held": [], "settled": 0}
        from .outputs import held_to_list

        return {**head, **self._profile_dict(), "pending": [list(e) for e in self.pending],
                "base": self.base._profile_dict() if self.base is not None else None,
                "held": [[list(e), *held_to_list(o)] for e, o in self.held], "settled": self.settled}

    def set_pending(self, events) -> None:
        """Replace the pending events (any order; kept sorted by (ts, event_id))."""
        self.pending = sorted(events)
        self.pending_ids = {e.event_id for e in self.pending}

    @staticmethod
    def migrate(d: dict) -> tuple[dict, list]:
        """An older checkpointed state in today's form, and the events it buffered (to be applied by
        `Core.restore`). Version 2 (settled-only decisions) buffered events unapplied and had no triggers."""
        events: list = []
        if d.get("v") == 2:
            events = [Ev(*e) for e in d.get("pending", [])]
            d = {**d, "v": 3, "pending": [], "base": None, "held": [], "settled": 0, "actions": [], "armed": {},
                 "fired": []}
        if d.get("v") == 3:  # version 4 added attribution (content slots)
            base = d.get("base")
            d = {**d, "v": STATE_VERSION, "exposures": [], "attributed": None, "seen_slots": [],
                 "decided_at": d.get("last_ts", NO_TIME),
                 "base": {**base, "exposures": []} if base is not None else None}
        return d, events

    @classmethod
    def from_dict(cls, d: dict) -> "UserState":
        if d.get("v") != STATE_VERSION:
            raise ValueError(f"user state version {d.get('v')!r} is not {STATE_VERSION}: migrate it first")
        from .outputs import held_from_list

        s = cls.__new__(cls)
        s._take_profile_dict(d)
        s.pending = [Ev(*e) for e in d["pending"]]
        s.pending_ids = {e.event_id for e in s.pending}
        if d["base"] is not None:
            s.base = cls.__new__(cls)
            s.base._take_profile_dict(d["base"])
        else:
            s.base = None
        s.snaps = []
        s.held = [(Ev(*h[0]), held_from_list(h[1:])) for h in d["held"]]
        s.settled = d["settled"]
        s.watermark = d["watermark"]
        s.granted_at, s.revoked_at, s.erased_at = d["granted_at"], d["revoked_at"], d["erased_at"]
        s.attributed = tuple(d["attributed"]) if d["attributed"] else None
        s.seen_slots = list(d["seen_slots"])
        s.decided_at = d["decided_at"]
        s.level, s.level_at, s.off_at = d.get("level", "full"), d.get("level_at"), d.get("off_at")  # (added in v4)
        return s
