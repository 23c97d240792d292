"""The core: the per-user contract every engine calls, in event time, the same for every engine.

The engine contract, in call order (one `Core` per operator; states are plain data the engine keeps per key):

  1. `Ingest.message(bytes)` (transforms/ingest.py), once per message, before keying: an `Arrival`
     (pseudonym key, event, the source watermark at arrival) or a `DeadLetter` for the dead-letter output.
  2. `Core.accept(state, key, event, watermark)` per arrival, on the user's key: routes a late event, drops a
     duplicate, refuses a blocked one, else applies it at once (provisional) and returns `[Changed]`.
  3. `Core.next_timer(state)` after each call: the event time at which the user next has work (None: none).
  4. `Core.advance(state, key, watermark)` when the watermark passes that time: settles the events it passed
     (their held facts released), fires due timer triggers, closes a session whose gap has passed; `Settled` when
     only the decision's exactness changed, `Changed` when its content did.
  5. `Core.privacy(state, key, kind, ts, level)` when a consent change, an erasure request or a personalization
     level (`level`: off, basic, full) arrives (never late).
  6. `Dispatch(outputs, state)` (transforms/dispatch.py) with the outputs of every call and the state that call was
     handed: counts them in one vocabulary and hands them to the engine's outlets; a `Changed` output means the
     user's decision is due, rendered later in a micro-batch from `decisions.snapshot(state)`; a `Settled` one
     means the decision already written is exact further (`settled_through`, `provisional`: a marker, no render).

`accept`, `advance` and `privacy` update the state they are handed in place and return it (None: delete it), with
their outputs. A `Changed` decision renders from the state object that was handed in (Dispatch gives it to the
decision outlet), even when the call returns None or a fresh state (an idle profile expired in the same call).

Provisional and settled. The state always has every accepted event applied, in (event time, event id) order, so
a decision reflects an event within milliseconds of its arrival. The events applied since a copy of the profile
(`base`, taken when nothing is pending: a session's first event) are kept (`pending`, the first `settled` of them
at or before the watermark), with a snap every SNAP_EVERY of them: an event arriving in order costs one
application; one arriving before events already applied is put in its place and the events after the latest snap
before it are replayed. Settled events are dropped when a snap covers FOLD_AFTER of them (`base` moves up to it),
and all of them when nothing is provisional and the session is over or a timer changed the state. Facts (closed sessions, shifts, actions)
of provisional events are held and released when the watermark passes them, so the side outputs, and the decisions
once settled, are exact: any arrival order within the allowed lateness gives the same on every engine.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from operator import itemgetter

from .config import Config
from .events import CLICK, IMPRESSION, INTEREST_WEIGHT, PURCHASE, Ev
from .experiments import assign
from .features import feature_index, feature_names, feature_row
from .outputs import (ActionFired, Blocked, Changed, Duplicate, Erased, Expired, Late, Outcome, SessionClosed,
                      Settled, ShiftDetected)
from .segments import Segmenter
from .sessions import Session
from .shift import ShiftParams
from .state import UserState
from .triggers import compile_triggers

_first = itemgetter(0)
PRIVACY_KINDS = ("consent_granted", "consent_revoked", "erasure", "personalization")
LEVELS = ("off", "basic", "full")  # personalization levels (`Core.privacy`, `decisions.Renderer`)
SNAP_EVERY = 32  # a copy of the profile part every this many pending events (`UserState.snaps`)
FOLD_AFTER = 32  # settled pending events dropped (`base` moved up to a snap) once this many accumulate


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
        triggers = compile_triggers(cfg.triggers.rules)
        self.on_event = tuple((t.name, t.when, t.once_per_session) for t in triggers if t.when is not None)
        self.on_timer = tuple((t.name, t.after, t.unless, t.wait) for t in triggers if t.when is None)
        self.keep_actions = cfg.triggers.keep
        content = cfg.content  # attribution: exposures of configured variants and their rewards (Outcome)
        self.slots = content.slots
        self.variant_of = {v.id: (i, j) for i, s in enumerate(self.slots) for j, v in enumerate(s.variants)}
        self.window = content.attribution_window
        self.purchase_reward = content.purchase_reward
        self.experiments = {e.slot: e for e in content.experiments if e.enabled}
        self.segmenter = Segmenter(cfg.segments.rules, feature_names(cfg), cfg.segments.default)
        idx = feature_index(cfg)
        self.x_index = [tuple(idx[f] for f in s.features) for s in self.slots]
        self.row_context = [s.context == "segment" or bool(s.features) for s in self.slots]

    def new_state(self) -> UserState:
        return UserState(self.cfg)

    # -- inputs ------------------------------------------------------------------------------------------------

    def accept(self, state: UserState | None, key: str, ev: Ev, watermark: int) -> tuple[UserState | None, list]:
        """Take an arriving event: check consent, route a late one, drop a duplicate, else apply it at once
        (provisional until the watermark passes it) and say the decision is due.

        Consent comes first (nothing of a user without it reaches any output), lateness second: a redelivery of an
        event already folded is older than the watermark, so only pending ids are needed to spot duplicates.
        In event-time order (the common case) an event costs one application; an earlier event than the latest
        applied one is put in its place and the pending events after `base` are replayed."""
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
        if len(pending) - state.settled >= self.max_pending:
            return state, [Blocked(key, ev.event_id, "pending_full")]
        ids.add(ev.event_id)
        if ev.ts > state.decided_at:
            state.decided_at = ev.ts
        if not pending:
            state.base = state.profile_copy()
            pending.append(ev)
        elif ev > pending[-1]:
            if len(pending) % SNAP_EVERY == 0:
                state.snaps.append((ev, state.profile_copy()))
            pending.append(ev)
        else:
            insort(pending, ev)
            self._replay(state, key, ev)
            return state, [Changed(key, ev.ts)]
        outs: list = []
        self._apply(state, key, ev, outs)
        if outs:  # facts (a closed session, a shift, an action) wait for the watermark to make them exact
            state.held.extend([(ev, o) for o in outs])
        return state, [Changed(key, ev.ts)]

    def advance(self, state: UserState, key: str, watermark: int) -> tuple[UserState | None, list]:
        """The watermark moved: pending events it passed are settled (their held outputs released), an idle
        session closes, a timer trigger fires, an idle profile expires; None: drop the state."""
        outs: list = []
        if state.exposures and state.exposures[0][0] + self.window <= watermark:
            self._attribute(state, key, watermark, outs)  # exact whatever is provisional: its events are older
        pending = state.pending
        released = False
        n = len(pending)
        i = state.settled
        if i < n and pending[i].ts <= watermark:
            i += 1
            while i < n and pending[i].ts <= watermark:
                i += 1
            released = True
            held = state.held
            if held:
                j = 0
                while j < len(held) and held[j][0].ts <= watermark:
                    outs.append(held[j][1])
                    j += 1
                del held[:j]
            state.settled = i
            if i >= FOLD_AFTER:
                self._fold(state, key)
        changed = False
        if state.settled == len(pending):  # nothing provisional: timers act on the exact state
            if state.armed:
                fired = self._timers_due(state, key, watermark, outs)
                if fired is not None:
                    changed = True
                    if fired > state.decided_at:
                        state.decided_at = fired
            s = state.session
            if state.session_open and s.last + self.gap <= watermark:
                self._close(state, key, outs, at=s.last + self.gap)
                changed = True  # a closed session changes the features too
                if s.last + self.gap > state.decided_at:
                    state.decided_at = s.last + self.gap
            if pending and (changed or not state.session_open):
                # a timer changed the state (a replay would not redo that), or the session is over: keep no
                # events to replay from; the user's next event copies `base` again, once a session
                pending.clear()
                state.pending_ids.clear()
                state.base = None
                state.snaps = []
                state.settled = 0
        if watermark > state.watermark:
            state.watermark = watermark
        if state.erased_at is not None and watermark > state.erased_at:
            state.erased_at = None  # the tombstone has done its work: anything older is late from now on
        if changed:
            outs.append(Changed(key, state.last_ts))
        elif released:
            outs.append(Settled(key))
        if self.ttl and state.settled == len(pending) and not state.session_open and not state.armed and state.profile.events \
                and state.last_ts + self.ttl <= watermark:
            return self._expire(state, key, outs)
        if state.is_empty():
            return None, outs
        return state, outs

    def restore(self, d: dict, key: str, events=()) -> UserState:
        """A state from its settled form (`UserState.to_dict(pending=False)`) and the pending events an engine
        kept apart: the events are replayed onto it (their outputs held again, those already released not).
        A state checkpointed by an older version is migrated first (`UserState.migrate`)."""
        d, buffered = UserState.migrate(d)
        if buffered:
            events = [*events, *buffered]
        st = UserState.from_dict(d)
        if events:
            st.set_pending(events)
            if st.pending[-1].ts > st.decided_at:  # (a migrated state's buffered events were never accepted)
                st.decided_at = st.pending[-1].ts
            st.base = st.profile_copy()
            wm = st.watermark
            st.settled = sum(1 for e in st.pending if e.ts <= wm)
            self._replay(st, key)
        return st

    def next_timer(self, state: UserState) -> int | None:
        """The watermark at which `advance` next has work to do (None: nothing pending)."""
        pending = state.pending
        t = pending[state.settled].ts if len(pending) > state.settled else None
        if state.armed:
            due = min(state.armed.values())
            t = due if t is None or due < t else t
        if state.session_open:
            close = state.session.last + self.gap
            t = close if t is None or close < t else t
        if state.erased_at is not None and (t is None or state.erased_at + 1 < t):
            t = state.erased_at + 1
        if state.exposures:
            close = self._next_close(state)
            if close is not None and (t is None or close < t):
                t = close
        if self.ttl and t is None and state.profile.events:  # idle: the profile expires (the session closed first)
            t = state.last_ts + self.ttl
        return t

    def privacy(self, state: UserState | None, key: str, kind: str, ts: int,
                level: str | None = None) -> tuple[UserState | None, list]:
        """Apply a consent change, an erasure request or a personalization level (on arrival: privacy is never late).

        Levels: "full" personalizes on everything; "basic" keeps the profile but the decision carries the segment
        and the content chosen only (`decisions.Renderer`); "off" purges the profile (pending events, held
        facts, open exposures) and refuses the user's events until a later request sets another level (events
        dated up to the "off" request stay refused), and the decision is each slot's fallback. Of requests out of
        order, the latest by its `ts` wins."""
        if kind not in PRIVACY_KINDS:
            raise ValueError(f"unknown privacy request kind {kind!r}")
        if state is None:
            state = UserState(self.cfg)
        if kind == "personalization":
            if level not in LEVELS:
                raise ValueError(f"personalization level {level!r} is not one of {', '.join(LEVELS)}")
            if level == "off" and (state.off_at is None or ts > state.off_at):
                state.off_at = ts
            if state.level_at is not None and ts < state.level_at:
                return state, []  # an older request than the one in force
            state.level_at = ts
            if ts > state.decided_at:
                state.decided_at = ts
            if level == state.level:
                return state, []
            state.level = level
            if level == "off":  # in place: the decision due renders from this object (a fallback)
                state.reset_profile(self.cfg)
                state.pending, state.pending_ids, state.base, state.snaps, state.held = [], set(), None, [], []
                state.settled = 0
            return state, [Changed(key, ts)]
        if kind == "consent_granted":
            if state.granted_at is None or ts > state.granted_at:
                state.granted_at = ts
            return state, []
        fresh = UserState(self.cfg)  # revoke and erasure both purge the profile; consent and level records are kept
        fresh.granted_at = state.granted_at
        fresh.level, fresh.level_at, fresh.off_at = state.level, state.level_at, state.off_at
        fresh.revoked_at = max(ts, state.revoked_at or ts) if kind == "consent_revoked" else state.revoked_at
        fresh.erased_at = max(ts, state.erased_at or ts) if kind == "erasure" else state.erased_at
        fresh.watermark = state.watermark
        return fresh, [Erased(key, kind)]

    # -- internals ---------------------------------------------------------------------------------------------

    def _replay(self, state: UserState, key: str, at: Ev | None = None) -> None:
        """Re-apply the pending events from the latest snap before `at` (an event put in its place among later
        ones; None: from `base`), in order, taking new snaps on the way. Outputs of events the watermark already
        passed were released and are not held again."""
        pending, snaps = state.pending, state.snaps
        k = bisect_left(snaps, at, key=_first) if at is not None else 0
        if k:
            start, prof = snaps[k - 1]
            del snaps[k:]
            q = bisect_left(pending, start)
            state.take_profile(prof)
            state.held = [h for h in state.held if h[0] < start]
        else:
            snaps.clear()
            q = 0
            state.take_profile(state.base)
            state.held = []
        wm = state.watermark
        held = state.held
        for i in range(q, len(pending)):
            e = pending[i]
            if i > q and i % SNAP_EVERY == 0:
                snaps.append((e, state.profile_copy()))
            outs: list = []
            self._apply(state, key, e, outs)
            if outs and e.ts > wm:
                held.extend([(e, o) for o in outs])

    def _fold(self, state: UserState, key: str) -> None:
        """Drop settled pending events: `base` moves up to the latest snap among them (their outputs were
        released), so a replay never costs more than about FOLD_AFTER plus the provisional events."""
        pending, snaps = state.pending, state.snaps
        i = state.settled
        k = bisect_right(snaps, pending[i] if i < len(pending) else pending[-1], key=_first)
        if not k:
            return  # no snap yet (just restored): the next events take them
        start, state.base = snaps[k - 1]
        del snaps[:k]
        j = bisect_left(pending, start)
        ids = state.pending_ids
        for e in pending[:j]:
            ids.discard(e.event_id)
        del pending[:j]
        state.settled -= j

    def _next_close(self, state: UserState) -> int | None:
        done = state.attributed
        for x in state.exposures:
            if done is None or (x[0], x[1]) > done:
                return x[0] + self.window
        return None

    def _attribute(self, state: UserState, key: str, watermark: int, outs: list) -> None:
        """Emit the outcomes of exposures whose attribution window the watermark passed (in event order; those
        already emitted, back in the list after a replay from an older snap, are skipped)."""
        ex = state.exposures
        done = state.attributed
        w = self.window
        i = 0
        while i < len(ex) and ex[i][0] + w <= watermark:
            ts, eid, si, vi, ctx, x, reward = ex[i]
            i += 1
            if done is not None and (ts, eid) <= done:
                continue
            s = self.slots[si]
            first = s.name not in state.seen_slots
            if first:
                state.seen_slots.append(s.name)
            exp = self.experiments.get(s.name)
            outs.append(Outcome(key, s.name, ctx, vi, s.variants[vi].id, x, reward, ts + w, eid,
                                assign(exp, key) if exp is not None else None, first))
            done = (ts, eid)
        state.attributed = done
        del ex[:i]

    def _expose(self, state: UserState, ev: Ev) -> None:
        """An impression of a configured variant opens an exposure; a click on a shown variant, or a purchase,
        within the window rewards it (the best reward counts). Applied in event order, like everything else."""
        code = ev.code
        if code == IMPRESSION:
            at = self.variant_of.get(ev.variant)
            if at is None:
                return
            si, vi = at
            ctx, x = "*", None
            if self.row_context[si]:
                values = feature_row(state, self.cfg)
                if self.slots[si].context == "segment":
                    ctx = self.segmenter.assign(values)
                ix = self.x_index[si]
                if ix:
                    x = (1.0, *(float(values[i]) for i in ix))
            state.exposures.append([ev.ts, ev.event_id, si, vi, ctx, x, 0.0])
        elif (code == CLICK or code == PURCHASE) and state.exposures:
            r = 1.0 if code == CLICK else self.purchase_reward
            v = ev.variant
            start = ev.ts - self.window
            for x in reversed(state.exposures):
                if x[0] < start:
                    break
                if (code == PURCHASE or self.slots[x[2]].variants[x[3]].id == v) and r > x[6]:
                    x[6] = r

    def _timers_due(self, state: UserState, key: str, now: int, outs: list) -> int | None:
        """Fire the timer triggers due at or before event time `now`, in time order; the latest time fired."""
        armed = state.armed
        due = sorted((t, name) for name, t in armed.items() if t <= now)
        for t, name in due:
            del armed[name]
            self._fire(state, key, name, t, outs)
        return due[-1][0] if due else None

    def _fire(self, state: UserState, key: str, name: str, ts: int, outs: list) -> None:
        actions = state.actions
        actions.append((name, ts))
        if len(actions) > self.keep_actions:
            del actions[0]
        outs.append(ActionFired(key, name, ts))

    def _expire(self, state: UserState, key: str, outs: list) -> tuple[UserState | None, list]:
        """Drop an idle profile (its ttl timer fired); consent records stay (a revoke must outlive the profile).
        The state handed in is not touched, so a decision due from this same call renders from it (engines render
        from that object). An event arriving after the ttl resets the profile the same way (`_apply`), so the
        outputs do not depend on whether this timer fired first."""
        outs.append(Expired(key))
        if state.granted_at is None and state.revoked_at is None and state.level_at is None:
            return None, outs
        fresh = UserState(self.cfg)
        fresh.granted_at, fresh.revoked_at, fresh.watermark = state.granted_at, state.revoked_at, state.watermark
        fresh.level, fresh.level_at, fresh.off_at = state.level, state.level_at, state.off_at
        return fresh, outs  # what `reset_profile` leaves, as a new object

    def _blocked(self, state: UserState, ts: int) -> str | None:
        if state.erased_at is not None and ts <= state.erased_at:
            return "erased"
        if state.level == "off" or (state.off_at is not None and ts <= state.off_at):
            return "personalization_off"
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
        if state.armed:
            self._timers_due(state, key, ev.ts, outs)
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
            if state.fired:
                state.fired = []
        s.add(ev, self.max_categories)
        state.windows.add(ev.ts, ev.code, ev.category)
        state.profile.add(ev, self.half_life)
        if ev.category is not None and INTEREST_WEIGHT[ev.code]:
            det = state.shift.update(ev.category, ev.ts, self.shift_params,
                                     s.start if self.confirm_sessions else None)
            if det is not None:
                outs.append(ShiftDetected(key, det.ts, det.from_category, det.to_category, det.score))
        state.last_ts = ev.ts
        if self.variant_of and (ev.variant is not None or ev.code == PURCHASE):
            self._expose(state, ev)
        for name, when, once in self.on_event:
            try:
                hit = when(ev, s)
            except ArithmeticError:  # (a division by zero, an overflow): the rule is false for this event
                continue
            if hit and not (once and name in state.fired):
                if once:
                    state.fired.append(name)
                self._fire(state, key, name, ev.ts, outs)
        for name, after, unless, wait in self.on_timer:
            try:
                if after(ev, s):
                    state.armed[name] = ev.ts + wait
                if unless is not None and name in state.armed and unless(ev, s):
                    del state.armed[name]
            except ArithmeticError:  # (a division by zero, an overflow): the rule is false for this event
                continue
