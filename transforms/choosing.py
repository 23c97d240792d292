"""What a decision chooses per slot: the flag, the experiment arm, then the slot's policy on a learner snapshot.

Slots choose in config order; with `content.max_per_category` set, a slot's policy chooses among the variants
whose category the decision's earlier slots have not shown that many times already (reason `diversity`, the
propensity being the policy's probability under that restriction). A flag, a holdout or a fixed experiment arm is
never overridden by the cap (an experiment's arms must stay what they are), but what it shows counts.

Threshold rules (transforms/thresholds.py) in force at the snapshot version leave paused arms out of the policy's
choice (never every arm: then none is left out), or switch the slot to its fallback (reason `threshold`); the
entry lists the paused variants (`paused`), so the decision shows the arm set in force.

For a row at event time t the policy uses snapshot version `t // epoch - delay` (transforms/learning.py), and the
user's draw is `unit(slot, pseudonym, t, version)`: the choice and its propensity are exact and replayable. An
engine whose learner has not sealed that version yet (its watermark lags) chooses from the latest sealed snapshot,
says which (`version`), and records the row as `stale` so that it renders the decision again once the version it
wants is sealed: the settled decision is the same on every engine.
"""
from __future__ import annotations

import copy

from .config import Config
from .experiments import HOLDOUT, assign
from .features import feature_index
from .draws import unit
from .policies import policy

_NO_LEARNER = None


class Chooser:
    def __init__(self, cfg: Config):
        c = cfg.content
        self.slots = c.slots
        self.epoch = c.epoch
        self.delay = c.delay(cfg.event_time.allowed_lateness)
        self.experiments = {e.slot: e for e in c.experiments if e.enabled}
        self.cap = c.max_per_category
        idx = feature_index(cfg)
        self.x_index = {s.name: tuple(idx[f] for f in s.features) for s in self.slots}
        self.cache: dict = {}   # (slot, context, version) -> what the policy prepared from that snapshot
        self.stale: dict = {}   # user key -> the version its last choice wanted but did not have

    def wanted(self, event_time: int) -> int:
        return event_time // self.epoch - self.delay

    def context_vector(self, slot, values) -> tuple | None:
        ix = self.x_index[slot.name]
        return (1.0, *(float(values[i]) for i in ix)) if ix else None

    def choose(self, key: str, event_time: int, values, segment: str, learner) -> dict:
        """{slot: {variant, propensity, policy, version, arm, reason, paused}} for one decision."""
        want = self.wanted(event_time)
        version = want
        exact = learner is None or learner.available(want)
        if not exact:
            self.stale[key] = want
            if learner.sealed is not None:
                version, exact = learner.sealed, True  # a sealed snapshot: cacheable, though not the one wanted
        else:
            self.stale.pop(key, None)
        out = {}
        cap = self.cap
        used: dict = {}  # category -> slots of this decision showing it (the diversity cap)
        rules = learner is not None and learner.thresholds is not None
        for s in self.slots:
            ctx = segment if s.context == "segment" else "*"
            paused, rule = learner.in_force(version, s.name, ctx) if rules else (frozenset(), None)
            capped = None
            if cap:
                ok = frozenset(i for i, v in enumerate(s.variants) if v.category is None or used.get(v.category, 0) < cap)
                if ok and len(ok) < len(s.variants):  # (none left: the cap cannot hold, the slot chooses freely)
                    capped = ok
            exp = self.experiments.get(s.name)
            arm = assign(exp, key) if exp is not None else None
            variant_index, prop, reason = None, 1.0, "policy"
            if not s.enabled:
                variant_index, reason = s.fallback_index, "flag_off"
            elif arm == HOLDOUT:
                variant_index, reason = s.fallback_index, "holdout"
            elif arm is not None:
                fixed = next(a.variant for a in exp.arms if a.name == arm)
                if fixed is not None:
                    variant_index, reason = [v.id for v in s.variants].index(fixed), "arm"
            if variant_index is None and rule is not None:
                variant_index, reason = s.fallback_index, "threshold"
            if variant_index is None:
                allowed = capped
                if paused:  # arms a threshold rule paused are left out (never all of them)
                    ids = [v.id for v in s.variants]
                    left = frozenset(i for i in (allowed if allowed is not None else range(len(ids)))
                                     if ids[i] not in paused)
                    if left:
                        allowed = left
                prepared = self._prepared(s, ctx, version, learner, exact)
                x = self.context_vector(s, values)
                variant_index, prop = policy(s.policy).choose(prepared, x, unit(s.name, key, event_time, version),
                                                              allowed)
                if capped is not None:
                    reason = "diversity"
            if cap:
                cat = s.variants[variant_index].category
                if cat is not None:
                    used[cat] = used.get(cat, 0) + 1
            out[s.name] = {"variant": s.variants[variant_index].id, "propensity": prop, "policy": s.policy,
                           "version": version, "arm": arm, "reason": reason, "paused": sorted(paused)}
        return out

    def _prepared(self, s, ctx: str, version: int, learner, cache: bool):
        k = (s.name, ctx, version)
        got = self.cache.get(k) if cache else None
        if got is None:
            p = policy(s.policy)
            st, lag = learner.stats(version, s.name, ctx) if learner is not None else (None, 0)
            if st is None:
                st = p.new(len(s.variants), s)
            elif lag:
                st = copy.deepcopy(st)
                p.decay(st, lag, s)
            got = p.prepare(st, (s.name, ctx, version), s)
            if cache:  # (a snapshot not sealed yet may still change)
                if len(self.cache) >= 4096:
                    self.cache.clear()
                self.cache[k] = got
        return got
