"""The core: the per-user contract every engine calls, in event time, the same for every engine.

The engine contract, in call order (one `Core` per operator; states are plain data the engine keeps per key):

  1. `Ingest.message(bytes)` (transforms/ingest.py), once per message, before keying: an `Arrival`
     (pseudonym key, event, the source watermark at arrival) or a `DeadLetter` for the dead-letter output.
  2. `Core.accept(state, key, event, watermark)` per arrival, on the user's key: routes a late event, drops a
     duplicate, refuses a blocked one, else buffers it.
  3. `Core.next_timer(state)` after each call: the event time at which the user next has work (None: none).
  4. `Core.advance(state, key, watermark)` when the watermark passes that time: applies buffered events in
     (event time, event id) order, closes a session whose gap has passed.
  5. `Core.privacy(state, key, kind, ts)` when a consent change or an erasure request arrives (never late).
  6. `Dispatch(outputs, state)` (transforms/dispatch.py) with the outputs of every call and the state that call was
     handed: counts them in one vocabulary and hands them to the engine's outlets; a `Changed` output means the
     user's decision is due, rendered later in a micro-batch from `decisions.snapshot(state)`.

`accept`, `advance` and `privacy` update the state they are handed in place and return it (None: delete it), with
their outputs. A `Changed` decision renders from the state object that was handed in (Dispatch gives it to the
decision outlet), even when the call returns None or a fresh state (an idle profile expired in the same call).
Events apply only once the watermark passes them, so any arrival order within the allowed lateness
gives the same outputs on every engine.
"""
from __future__ import annotations

from bisect import insort

from .config import Config
from .events import INTEREST_WEIGHT, Ev
from .outputs import Blocked, Changed, Duplicate, Erased, Expired, Late, SessionClosed, ShiftDetected
from .sessions import Session
from .shift import ShiftParams
from .state import UserState

PRIVACY_KINDS = ("consent_granted", "consent_revoked", "erasure")


class Core:
    """The configured core. Holds settings only; all per-user data lives in the states it is handed."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.gap = cfg.sessions.gap
        self.max_length = cfg.sessions.max_length
        self.half_life = cfg.profile.affinity_half_life
        self.keep_sessions = cfg.profile.recent_sessions
        self.shift_params = ShiftParams.from_config(cfg.shift, cfg.profile.max_categories)
        self.confirm_sessions = cfg.shift.confirm_across_sessions
        self.max_pending = cfg.event_time.max_pending
        self.max_categories = cfg.profile.max_categories
        self.opt_in = cfg.privacy.consent_mode == "opt_in"
        self.ttl = cfg.state.ttl

    def new_state(self) -> UserState:
        return UserState(self.cfg)

    # -- inputs ------------------------------------------------------------------------------------------------

    def accept(self, state: UserState | None, key: str, ev: Ev, watermark: int) -> tuple[UserState | None, list]:
        """Take an arriving event: check consent, route a late one, drop a duplicate, else buffer it.

        Consent comes first (nothing of a user without it reaches any output), lateness second: a redelivery of an
        event already applied is older than the watermark, so only pending ids are needed to spot duplicates."""
        if state is None:
            state = UserState(self.cfg)
        reason = self._blocked(state, ev.ts)
        if reason:
            return state, [Blocked(key, ev.event_id, reason)]
        if ev.ts <= watermark or ev.ts <= state.watermark:
            return state, [Late(key, ev, max(watermark, state.watermark))]
        ids = state.pending_ids
        if ev.event_id in ids:
            return state, [Duplicate(key, ev.event_id)]
        pending = state.pending
        if len(pending) >= self.max_pending:
            return state, [Blocked(key, ev.event_id, "pending_full")]
        ids.add(ev.event_id)
        if not pending or ev > pending[-1]:
            pending.append(ev)
        else:
            insort(pending, ev)
        return state, []

    def advance(self, state: UserState, key: str, watermark: int) -> tuple[UserState | None, list]:
        """Apply buffered events up to the watermark and close a session whose gap has passed; None: drop the state."""
        outs: list = []
        pending = state.pending
        applied = 0
        while applied < len(pending) and pending[applied].ts <= watermark:
            self._apply(state, key, pending[applied], outs)
            applied += 1
        if applied:
            ids = state.pending_ids
            for e in pending[:applied]:
                ids.discard(e.event_id)
            del pending[:applied]
        s = state.session
        closed = False
        if state.session_open and s.last + self.gap <= watermark:
            self._close(state, key, outs, at=s.last + self.gap)
            closed = True
        if watermark > state.watermark:
            state.watermark = watermark
        if state.erased_at is not None and watermark > state.erased_at:
            state.erased_at = None  # the tombstone has done its work: anything older is late from now on
        if applied or closed:  # a closed session changes the features too
            outs.append(Changed(key, state.last_ts))
        if self.ttl and not pending and not state.session_open and state.profile.events \
                and state.last_ts + self.ttl <= watermark:
            return self._expire(state, key, outs)
        if state.is_empty():
            return None, outs
        return state, outs

    def next_timer(self, state: UserState) -> int | None:
        """The watermark at which `advance` next has work to do (None: nothing pending)."""
        t = state.pending[0].ts if state.pending else None
        if state.session_open:
            close = state.session.last + self.gap
            t = close if t is None or close < t else t
        if state.erased_at is not None and (t is None or state.erased_at + 1 < t):
            t = state.erased_at + 1
        if self.ttl and t is None and state.profile.events:  # idle: the profile expires (the session closed first)
            t = state.last_ts + self.ttl
        return t

    def privacy(self, state: UserState | None, key: str, kind: str, ts: int) -> tuple[UserState | None, list]:
        """Apply a consent change or an erasure request (on arrival: privacy is never late)."""
        if kind not in PRIVACY_KINDS:
            raise ValueError(f"unknown privacy request kind {kind!r}")
        if state is None:
            state = UserState(self.cfg)
        if kind == "consent_granted":
            if state.granted_at is None or ts > state.granted_at:
                state.granted_at = ts
            return state, []
        fresh = UserState(self.cfg)  # revoke and erasure both purge the profile; consent records are kept
        fresh.granted_at = state.granted_at
        fresh.revoked_at = max(ts, state.revoked_at or ts) if kind == "consent_revoked" else state.revoked_at
        fresh.erased_at = max(ts, state.erased_at or ts) if kind == "erasure" else state.erased_at
        fresh.watermark = state.watermark
        return fresh, [Erased(key, kind)]

    # -- internals ---------------------------------------------------------------------------------------------

    def _expire(self, state: UserState, key: str, outs: list) -> tuple[UserState | None, list]:
        """Drop an idle profile (its ttl timer fired); consent records stay (a revoke must outlive the profile).
        The state handed in is not touched, so a decision due from this same call renders from it (engines render
        from that object). An event arriving after the ttl resets the profile the same way (`_apply`), so the
        outputs do not depend on whether this timer fired first."""
        outs.append(Expired(key))
        if state.granted_at is None and state.revoked_at is None:
            return None, outs
        fresh = UserState(self.cfg)
        fresh.granted_at, fresh.revoked_at, fresh.watermark = state.granted_at, state.revoked_at, state.watermark
        return fresh, outs  # what `reset_profile` leaves, as a new object

    def _blocked(self, state: UserState, ts: int) -> str | None:
        if state.erased_at is not None and ts <= state.erased_at:
            return "erased"
        g, r = state.granted_at, state.revoked_at
        if r is not None and (g is None or g < r or ts < g):
            return "consent_revoked"
        if self.opt_in and (g is None or ts < g):
            return "no_consent"
        return None

    def _close(self, state: UserState, key: str, outs: list, at: int | None = None) -> None:
        """Close the open session; closed by its timer (`at`), the windows slide to that time too."""
        s = state.session
        state.session_open = False
        if at is not None:
            state.windows.slide(at)
        state.profile.session_closed((s.last - s.start) / 1000, self.keep_sessions)
        outs.append(SessionClosed(key, s.summary()))

    def _apply(self, state: UserState, key: str, ev: Ev, outs: list) -> None:
        if self.ttl and state.profile.events and ev.ts - state.last_ts >= self.ttl:
            # the profile had expired by this event's time: the same whether or not the watermark stopped in
            # between (an engine that applies a day at once gives what one stepping through it gives)
            if state.session_open:
                self._close(state, key, outs)
            state.reset_profile(self.cfg)
            outs.append(Expired(key))
        s = state.session
        if s is None or not state.session_open or s.ends_before(ev.ts, self.gap, self.max_length):
            if s is not None and state.session_open:
                self._close(state, key, outs)
            state.recency_ms = ev.ts - s.last if s is not None else 0
            state.session = s = Session(ev)
            state.session_open = True
        s.add(ev, self.max_categories)
        state.windows.add(ev.ts, ev.code, ev.category)
        state.profile.add(ev, self.half_life)
        if ev.category is not None and INTEREST_WEIGHT[ev.code]:
            det = state.shift.update(ev.category, ev.ts, self.shift_params,
                                     s.start if self.confirm_sessions else None)
            if det is not None:
                outs.append(ShiftDetected(key, det.ts, det.from_category, det.to_category, det.score))
        state.last_ts = ev.ts
