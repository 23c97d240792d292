"""The policies' global statistics, learned in epochs of event time, the same on every engine.

Per-user operators emit `Outcome`s (an exposure and its reward, exact once the watermark passed the end of its
attribution window). The learner folds them into per-slot, per-context statistics in epochs of event time:

    F_e = fold(decay(F_prev, e - prev epochs), the outcomes closing in epoch e, sorted)

for the epochs e that have outcomes, and the snapshot of version v is F_e for the latest such e < v, decayed by
v - 1 - e epochs. So a snapshot is a function of the outcome set alone, not of when an engine sealed it or
in which order outcomes arrived (they are sorted by (close time, event id) before folding): the reference runner
seals incrementally as its watermark passes epoch starts, Beam builds every F_e from the whole outcome set, and
both give the same numbers to the last bit.

The learner also keeps each experiment's per-arm counts (exposures, conversions, reward sum, users) for reports.
"""
from __future__ import annotations

import copy
from bisect import bisect_left

from .content import ContentConfig
from .experiments import count
from .outputs import Outcome
from .policies import policy
from .thresholds import Thresholds

_ALL = 2**62  # a version beyond every candidate: a bounded run's rules judged to the end


class Learner:
    """Statistics by (slot, context) per epoch; plain data (`to_dict` / `from_dict`) for checkpoints."""

    def __init__(self, content: ContentConfig, epoch: int):
        self.slots = {s.name: s for s in content.slots}
        self.experiments = {e.slot: e for e in content.experiments}
        self.epoch = epoch
        self.chain: list = []          # [(epoch e, {slot: {context: stats}})], F_e for epochs with outcomes
        self.buffer: dict = {}         # epoch -> [Outcome] not folded yet
        self.sealed: int | None = None  # every outcome closing before sealed * epoch is folded
        self.exp: dict = {}            # experiment -> arm -> [exposures, conversions, reward_sum, users, reward sq]
        # threshold rules over windowed metrics, judged as versions seal; their changes wait in `actions`
        self.thresholds = Thresholds(content.thresholds, content.slots, epoch) if content.thresholds else None
        self.actions: list = []

    # -- in ------------------------------------------------------------------------------------------------------

    def add(self, o: Outcome) -> None:
        e = o.at // self.epoch
        if self.sealed is not None and e < self.sealed:
            raise ValueError(f"outcome at {o.at} is before the sealed epoch {self.sealed}: it came after its watermark")
        self.buffer.setdefault(e, []).append(o)
        exp = self.experiments.get(o.slot)
        if exp is not None and o.arm is not None:
            count(self.exp.setdefault(exp.name, {}), o.arm, o.reward, o.first)

    def seal(self, watermark: int) -> int | None:
        """Fold every outcome closing at or before the watermark's epoch start; returns the version now sealed
        (snapshots below it are exact), or None if it did not move."""
        target = (watermark + 1) // self.epoch
        if self.sealed is not None and target <= self.sealed:
            return None
        for e in sorted(k for k in self.buffer if k < target):
            self._fold(e, self.buffer.pop(e))
        self.sealed = target
        if self.thresholds is not None:
            self.actions += self.thresholds.advance(target)
        return target

    def prune(self, watermark: int, delay: int) -> None:
        """Drop folded epochs no decision can ask for any more. Call it when nothing rendered is waiting: every
        decision due after that is as of a time after `watermark` (an event not yet settled, or a timer not yet
        fired), so it asks for a version of at least watermark // epoch - delay."""
        oldest = watermark // self.epoch - delay
        chain = self.chain
        i = bisect_left(chain, oldest, key=lambda c: c[0]) - 1  # the entry that version `oldest` reads stays
        if i > 0:
            del chain[:i]
        if self.thresholds is not None:
            self.thresholds.prune(oldest)

    def fold_all(self) -> None:
        """Fold everything (a bounded run: Beam builds the chain from the whole outcome set)."""
        for e in sorted(self.buffer):
            self._fold(e, self.buffer.pop(e))
        if self.thresholds is not None:
            self.actions += self.thresholds.advance(_ALL)

    def _fold(self, e: int, outcomes: list) -> None:
        prev_e, prev = self.chain[-1] if self.chain else (None, {})
        stats = copy.deepcopy(prev)
        if prev_e is not None:  # the statistics forget, epoch by epoch of event time (one step for a gap)
            for name, by_ctx in stats.items():
                s = self.slots.get(name)
                if s is not None:
                    for st in by_ctx.values():
                        policy(s.policy).decay(st, e - prev_e, s)
        outcomes = sorted(outcomes, key=lambda o: (o.at, o.event_id, o.slot))
        if self.thresholds is not None:
            self.thresholds.fold(e, [o for o in outcomes if o.slot in self.slots])
        for o in outcomes:
            s = self.slots.get(o.slot)
            if s is None:
                continue  # a slot no longer configured
            p = policy(s.policy)
            by_ctx = stats.setdefault(o.slot, {})
            st = by_ctx.get(o.context)
            if st is None:
                st = by_ctx[o.context] = p.new(len(s.variants), s)
            p.update(st, o.arm_index, o.reward, o.x)
        self.chain.append((e, stats))

    # -- out -----------------------------------------------------------------------------------------------------

    def in_force(self, version: int, slot: str, context: str) -> tuple[frozenset, str | None]:
        """What threshold rules hold for a slot's decision at `version`: (variants paused, fallback rule or None)."""
        if self.thresholds is None:
            return frozenset(), None
        return self.thresholds.in_force(version, slot, context)

    def take_actions(self) -> list:
        """The threshold rules' changes since the last call (`thresholds.Action`), in version order."""
        out, self.actions = self.actions, []
        return out

    def available(self, version: int) -> bool:
        return self.sealed is not None and version <= self.sealed

    def stats(self, version: int, slot: str, context: str):
        """The slot's statistics for a context in snapshot `version` (None: nothing learned yet, the prior), and
        the epochs of decay still to apply to them (since they were folded)."""
        chain = self.chain
        i = bisect_left(chain, version, key=lambda c: c[0]) - 1  # the latest F_e with e < version
        if i < 0:
            return None, 0
        e, stats = chain[i]
        st = stats.get(slot, {}).get(context)
        return st, version - 1 - e

    FORMAT = 2  # the statistics' layout (2: the forgetting counts of policies/_drift.py)

    def to_dict(self) -> dict:
        return {"format": self.FORMAT, "chain": self.chain, "buffer": {e: [list(o) for o in os] for e, os in self.buffer.items()},
                "sealed": self.sealed, "exp": self.exp,
                "thresholds": self.thresholds.to_dict() if self.thresholds is not None else None}

    def restore(self, d: dict) -> None:
        if d.get("format", 1) != self.FORMAT:
            raise ValueError(f"the checkpoint's content statistics are in layout {d.get('format', 1)}, this version "
                             f"reads {self.FORMAT}: start this job from a fresh checkpoint directory")
        self.chain = [(e, s) for e, s in d["chain"]]
        self.buffer = {int(e): [Outcome(*o) for o in os] for e, os in d["buffer"].items()}
        self.sealed = d["sealed"]
        self.exp = d["exp"]
        if self.thresholds is not None and d.get("thresholds") is not None:
            self.thresholds.restore(d["thresholds"])
