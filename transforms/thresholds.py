"""Threshold triggers over windowed content metrics: when a slot's (or one variant's) click-through over a recent
window falls below a share of its trailing baseline, pause the arm, switch the slot to its fallback, or alert.

Configured in `content.thresholds`; each rule reads the learner's outcomes per epoch of event time:

    window(v)   = the epochs [v - w, v)          (w = window / epoch)
    baseline(v) = the epochs [v - w - b, v - w)  (b = baseline / epoch: the trailing period before the window)
    holds(v)    = exposures in both >= min_exposures and rate(window) < below * rate(baseline)
    in force(v) = holds(u) for some u in (v - hold, v]     (hold in epochs: an action outlasts its cause)

for snapshot version v. So whether an action is in force at a version is a function of the outcome set alone,
like the snapshot itself: every engine pauses the same arms for the same decisions. The learner advances the
rules as it seals versions (only at versions where an outcome epoch enters or leaves a window, where nothing else
can change), and each change is an `Action` record: fired or cleared, at which version, with the metric values
that caused it. A paused arm gets no exposures, so when its hold runs out it is shown again and judged afresh.

rate: `ctr` counts exposures with a reward (a click or a purchase), `reward_rate` the reward per exposure.
A rule with `variant: null` and action `pause_arm` judges each of the slot's variants on its own; with `fallback`
or `alert` it judges the slot's total. `context: null` counts every context together and acts on all of them.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any, NamedTuple

ACTIONS = ("pause_arm", "fallback", "alert")
METRICS = ("ctr", "reward_rate")
_KEYS = ("name", "slot", "variant", "context", "metric", "window", "baseline", "below", "min_exposures", "hold",
         "action")


@dataclass(frozen=True)
class Threshold:
    name: str
    slot: str
    action: str
    variant: str | None = None      # None: each variant (pause_arm) or the slot's total (fallback, alert)
    context: str | None = None      # None: every context together
    metric: str = "ctr"
    window: int = 3_600_000         # ms
    baseline: int = 86_400_000      # ms, the trailing period before the window
    below: float = 0.9              # fires when rate(window) < below * rate(baseline)
    min_exposures: int = 100        # in the window and in the baseline
    hold: int = 3_600_000           # ms an action stays in force after its condition last held


class Action(NamedTuple):
    """A threshold rule's action coming into force (`fired`) or lifted (`cleared`) at a snapshot version."""
    rule: str
    slot: str
    variant: str | None     # the arm it judged (None: the slot's total)
    context: str | None
    action: str
    state: str              # fired | cleared
    version: int            # the first snapshot version it holds for (fired) or no longer holds for (cleared)
    at: int                 # that version's start, event time ms
    window_exposures: float
    window_rate: float | None
    baseline_exposures: float
    baseline_rate: float | None
    threshold: float | None  # below * rate(baseline)

    def to_dict(self) -> dict:
        return self._asdict()


def parse_thresholds(value: Any, parse_duration) -> tuple[Threshold, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of threshold rules, got {value!r}")
    out, seen = [], set()
    for i, d in enumerate(value):
        if not isinstance(d, dict):
            raise ValueError(f"rule {i}: expected a mapping, got {d!r}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ValueError(f"rule {i}: unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"rule {i}: name: expected a non-empty string, got {name!r}")
        if name in seen:
            raise ValueError(f"rule {name!r}: defined twice")
        seen.add(name)
        w = f"rule {name!r}"
        for k in ("slot",):
            if not isinstance(d.get(k), str) or not d.get(k):
                raise ValueError(f"{w}: {k}: expected a slot name, got {d.get(k)!r}")
        for k in ("variant", "context"):
            if d.get(k) is not None and not isinstance(d.get(k), str):
                raise ValueError(f"{w}: {k}: expected a name or null, got {d.get(k)!r}")
        action = d.get("action")
        if action not in ACTIONS:
            raise ValueError(f"{w}: action: must be one of {', '.join(ACTIONS)}, got {action!r}")
        metric = d.get("metric", "ctr")
        if metric not in METRICS:
            raise ValueError(f"{w}: metric: must be one of {', '.join(METRICS)}, got {metric!r}")
        below = d.get("below", 0.9)
        if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 < below <= 10:
            raise ValueError(f"{w}: below: expected a share of the baseline above 0 (e.g. 0.9), got {below!r}")
        mins = d.get("min_exposures", 100)
        if isinstance(mins, bool) or not isinstance(mins, int) or mins < 1:
            raise ValueError(f"{w}: min_exposures: expected a whole number >= 1, got {mins!r}")
        durations = {}
        for k, default in (("window", "1h"), ("baseline", "24h"), ("hold", "1h")):
            try:
                durations[k] = parse_duration(d.get(k, default))
            except ValueError as exc:
                raise ValueError(f"{w}: {k}: {exc}") from None
            if durations[k] <= 0:
                raise ValueError(f"{w}: {k}: must be positive")
        out.append(Threshold(name, d["slot"], action, d.get("variant"), d.get("context"), metric,
                             durations["window"], durations["baseline"], float(below), mins, durations["hold"]))
    return tuple(out)


def cross_check(rules, slots, epoch: int) -> list[str]:
    problems = []
    by_name = {s.name: s for s in slots}
    for r in rules:
        w = f"content.thresholds: {r.name!r}"
        s = by_name.get(r.slot)
        if s is None:
            problems.append(f"{w}: slot {r.slot!r} is not a configured slot")
            continue
        if r.context is not None and s.context == "none":
            problems.append(f"{w}: context {r.context!r}: slot {r.slot!r} keeps no contexts (its context is none)")
        if r.variant is not None and r.variant not in {v.id for v in s.variants}:
            problems.append(f"{w}: variant {r.variant!r} is not in slot {r.slot!r}")
        for k in ("window", "baseline", "hold"):
            if getattr(r, k) < epoch:
                problems.append(f"{w}: {k} is shorter than content.epoch (rules are judged once per epoch)")
    return problems


class _Counts:
    """Exposures, rewarded exposures and reward per epoch for one (slot, context, variant), as prefix sums."""
    __slots__ = ("epochs", "cum", "base")

    def __init__(self):
        self.epochs: list[int] = []
        self.cum: list[list[float]] = []   # totals through epochs[i]
        self.base = [0.0, 0.0, 0.0]        # totals before epochs[0] (after pruning)

    def add(self, e: int, n: float, hits: float, reward: float) -> None:
        last = self.cum[-1] if self.cum else self.base
        if self.epochs and self.epochs[-1] == e:
            last[0] += n
            last[1] += hits
            last[2] += reward
            return
        self.epochs.append(e)
        self.cum.append([last[0] + n, last[1] + hits, last[2] + reward])

    def _at(self, e: int) -> list[float]:
        """Totals of the epochs before e."""
        i = bisect_left(self.epochs, e)
        return self.cum[i - 1] if i else self.base

    def between(self, a: int, b: int) -> tuple[float, float, float]:
        x, y = self._at(a), self._at(b)
        return y[0] - x[0], y[1] - x[1], y[2] - x[2]

    def prune(self, before: int) -> None:
        i = bisect_left(self.epochs, before)
        if i:
            self.base = self.cum[i - 1]
            del self.epochs[:i]
            del self.cum[:i]


def _version(change) -> int:
    return change[0]


class Thresholds:
    """The rules' state in a learner: counts per epoch, each rule's position and its history of changes."""

    def __init__(self, rules, slots, epoch: int):
        self.epoch = epoch
        self.rules = {r.name: r for r in rules}
        self.variants = {s.name: tuple(v.id for v in s.variants) for s in slots}
        self.counts: dict = {}     # (slot, context or "*", variant or "*") -> _Counts
        self.runs: dict = {}       # (rule, variant or "*") -> its scan state
        self.history: dict = {}    # (rule, variant or "*") -> [(version, in force)] of changes, in version order
        self.needed = set()        # the count keys some rule reads
        for r in rules:
            for v in self._judged(r):
                self.needed.add((r.slot, r.context or "*", v or "*"))
                self.runs[(r.name, v or "*")] = {"at": -1, "holds": False, "on": False, "clear": None,
                                                 "last": None, "next": []}
                self.history[(r.name, v or "*")] = []

    def _judged(self, r):
        if r.variant is not None:
            return [r.variant]
        if r.action == "pause_arm":
            return list(self.variants.get(r.slot, ()))
        return [None]

    def _w(self, ms: int) -> int:
        return max(1, math.ceil(ms / self.epoch))

    # -- in: the learner folds an epoch's outcomes -------------------------------------------------------------

    def fold(self, e: int, outcomes) -> None:
        touched = set()
        for o in outcomes:
            hit = 1.0 if o.reward > 0 else 0.0
            for ctx in (o.context, "*"):
                for var in (o.variant, "*"):
                    k = (o.slot, ctx, var)
                    if k not in self.needed:
                        continue
                    c = self.counts.get(k)
                    if c is None:
                        c = self.counts[k] = _Counts()
                    c.add(e, 1.0, hit, o.reward)
                    touched.add(k)
        for (name, var), run in self.runs.items():  # the versions where this epoch enters or leaves a window
            r = self.rules[name]
            if (r.slot, r.context or "*", var) in touched:
                w, b = self._w(r.window), self._w(r.baseline)
                for v in (e + 1, e + w + 1, e + w + b + 1):
                    if v > run["at"]:
                        heapq.heappush(run["next"], v)

    # -- the rules move up to a sealed version -----------------------------------------------------------------

    def _measure(self, r, var, v: int):
        c = self.counts.get((r.slot, r.context or "*", var or "*"))
        w, b = self._w(r.window), self._w(r.baseline)
        if c is None:
            return (0.0, None, 0.0, None, None), False
        nw, hw, rw = c.between(v - w, v)
        nb, hb, rb = c.between(v - w - b, v - w)
        pick = (lambda n, h, x: h / n) if r.metric == "ctr" else (lambda n, h, x: x / n)
        mw = pick(nw, hw, rw) if nw else None
        mb = pick(nb, hb, rb) if nb else None
        thr = r.below * mb if mb is not None else None
        holds = nw >= r.min_exposures and nb >= r.min_exposures and mw < thr
        return (nw, mw, nb, mb, thr), holds

    def advance(self, upto: int) -> list[Action]:
        """Judge every rule at the versions up to `upto` (sealed: final) it has not judged; the changes."""
        out = []
        for (name, var), run in self.runs.items():
            r = self.rules[name]
            h = self._w(r.hold)
            nxt = run["next"]
            while True:
                cand = nxt[0] if nxt else None
                clear = run["clear"]
                p = min(x for x in (cand, clear) if x is not None) if (cand is not None or clear is not None) else None
                if p is None or p > upto:
                    break
                if cand == p:
                    while nxt and nxt[0] == p:
                        heapq.heappop(nxt)
                    values, holds = self._measure(r, var, p)
                    run["last"] = values
                    if holds:
                        run["clear"] = None
                        if not run["on"]:
                            run["on"] = True
                            out.append(self._record(r, var, "fired", p, values))
                    elif run["holds"]:  # it stopped holding at p: in force until the hold runs out
                        run["clear"] = p - 1 + h
                    run["holds"] = holds
                    run["at"] = p
                if run["clear"] is not None and run["clear"] <= p and not run["holds"]:
                    run["clear"] = None
                    if run["on"]:
                        run["on"] = False
                        out.append(self._record(r, var, "cleared", p, run["last"]))
                run["at"] = max(run["at"], p)
        out.sort(key=lambda a: (a.version, a.rule, a.variant or ""))
        return out

    def _record(self, r, var, state: str, v: int, values) -> Action:
        self.history[(r.name, var or "*")].append((v, state == "fired"))
        nw, mw, nb, mb, thr = values
        return Action(r.name, r.slot, None if var == "*" else var, r.context, r.action, state, v, v * self.epoch,
                      nw, mw, nb, mb, thr)

    # -- out: what is in force for a decision -------------------------------------------------------------------

    def in_force(self, version: int, slot: str, context: str) -> tuple[frozenset, str | None]:
        """(variants paused, the fallback rule in force or None) for a slot's decision in `context` at `version`."""
        paused, fallback = set(), None
        for (name, var), hist in self.history.items():
            r = self.rules[name]
            if r.slot != slot or r.action == "alert" or (r.context is not None and r.context != context):
                continue
            j = bisect_right(hist, version, key=_version) - 1  # the latest change at or before `version`
            if j < 0 or not hist[j][1]:
                continue
            if r.action == "pause_arm":
                paused.add(var)
            elif fallback is None:
                fallback = name
        return frozenset(paused), fallback

    def prune(self, oldest: int) -> None:
        """Drop what no version from `oldest` on can read."""
        for (name, var), hist in self.history.items():
            i = 0
            while i + 1 < len(hist) and hist[i + 1][0] <= oldest:
                i += 1
            if i:
                del hist[:i]
        longest = max((self._w(r.window) + self._w(r.baseline) for r in self.rules.values()), default=0)
        for c in self.counts.values():
            c.prune(oldest - longest - 1)

    def to_dict(self) -> dict:
        return {"counts": [[list(k), c.epochs, c.cum, c.base] for k, c in self.counts.items()],
                "runs": [[n, v, dict(run)] for (n, v), run in self.runs.items()],
                "history": [[n, v, h] for (n, v), h in self.history.items()]}

    def restore(self, d: dict) -> None:
        self.counts = {}
        for k, epochs, cum, base in d["counts"]:
            c = _Counts()
            c.epochs, c.cum, c.base = list(epochs), [list(x) for x in cum], list(base)
            self.counts[tuple(k)] = c
        for n, v, run in d["runs"]:
            if (n, v) in self.runs:
                run = dict(run)
                run["last"] = tuple(run["last"]) if run["last"] is not None else None
                self.runs[(n, v)] = run
        for n, v, h in d["history"]:
            if (n, v) in self.history:
                self.history[(n, v)] = [tuple(x) for x in h]
