"""Output dispatch: the one way every engine routes the core's outputs and counts them.

An engine builds one `Dispatch` per keyed operator with its `Outlets` (named callables: what to do when a decision
is due, with a late record, a closed session, a shift, an erasure) and calls it with the outputs of every
`Core.accept / advance / privacy` call. Counting happens here, in the vocabulary of `outputs.COUNTERS`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from .outputs import (ACTIONS, BLOCKED, DECISIONS_DUE, DUPLICATES, EXPIRED, LATE, OUTCOMES, PURGED, SESSIONS, SETTLED,
                      SHIFTS, ActionFired, Blocked, Changed, Duplicate, Erased, Expired, Late, Outcome, SessionClosed,
                      Settled, ShiftDetected)


class Counts(Counter):
    """Counters by name (see `outputs.COUNTERS`); engines with a metric system subclass `inc` to mirror them."""

    def inc(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def reason(self, name: str, reason: str) -> None:
        """Count one under `name` and under `name.reason`."""
        self.inc(name)
        self.inc(f"{name}.{reason}")


def _none(_):
    return None


def _none2(_, __):
    return None


@dataclass
class Outlets:
    """Where an engine sends each kind of output; None: counted only."""
    decision: Callable[[str, object], None]                   # the user's decision is due (key, the state to
                                                              # render it from: the one the core was handed)
    late: Callable[[dict], None] | None = None                # a late event's record (`Late.record()`)
    session: Callable[[SessionClosed], None] | None = None
    shift: Callable[[ShiftDetected], None] | None = None
    erased: Callable[[str], None] | None = None               # delete the user's decision everywhere (key)
    settled: Callable[[str, object], None] | None = None      # the written decision is now exact up to the
                                                              # state's watermark (key, the state): update its
                                                              # settled fields (`decisions.settled_mark`)
    action: Callable[[ActionFired], None] | None = None       # a trigger's action, once settled
    outcome: Callable[[Outcome], None] | None = None          # an exposure's result, for the learner (exact)


class Dispatch:
    """Routes outputs to outlets and counts them."""

    def __init__(self, outlets: Outlets, counts: Counts | None = None):
        self.counts = counts if counts is not None else Counts()
        self.decision = outlets.decision
        self.late = outlets.late or _none
        self.session = outlets.session or _none
        self.shift = outlets.shift or _none
        self.erased = outlets.erased or _none
        self.settled = outlets.settled or _none2
        self.action = outlets.action or _none
        self.outcome = outlets.outcome or _none

    def __call__(self, outs: Iterable, state=None) -> None:
        """Count and route one core call's outputs; `state` is the state that call was handed, which a due
        decision renders from (even when the call dropped or replaced it: an expired profile)."""
        counts = self.counts
        for o in outs:
            t = type(o)
            if t is Changed:
                counts.inc(DECISIONS_DUE)
                self.decision(o.key, state)
            elif t is SessionClosed:
                counts.inc(SESSIONS)
                self.session(o)
            elif t is ShiftDetected:
                counts.inc(SHIFTS)
                self.shift(o)
            elif t is Settled:
                counts.inc(SETTLED)
                self.settled(o.key, state)
            elif t is ActionFired:
                counts.reason(ACTIONS, o.name)
                self.action(o)
            elif t is Outcome:
                counts.inc(OUTCOMES)
                self.outcome(o)
            elif t is Late:
                counts.inc(LATE)
                self.late(o.record())
            elif t is Duplicate:
                counts.inc(DUPLICATES)
            elif t is Blocked:
                counts.reason(BLOCKED, o.reason)
            elif t is Erased:
                counts.reason(PURGED, o.reason)
                self.erased(o.key)
            elif t is Expired:
                counts.inc(EXPIRED)
            else:
                raise TypeError(f"not a core output: {o!r}")
