"""Decisions: a user's feature row, segment, shift and top categories, rendered in micro-batches."""
from __future__ import annotations

from typing import NamedTuple, Sequence

from .choosing import Chooser
from .config import Config
from .diversity import catalogue_categories, explore
from .features import feature_index, feature_names, feature_row, recent_categories, top_categories
from .segments import Segmenter
from .state import NO_TIME


class Row(NamedTuple):
    """What a decision needs from one user's state, taken when the state changed."""

    key: str
    event_time: int
    values: tuple[float, ...]  # the feature vector, named by `features.feature_names(cfg)` (read by name through
                               # `features.feature_index(cfg)`)
    top: list[str]
    shift: tuple | None   # (ts, from, to, score) of the latest detection
    shift_score: float
    recent: list[str]     # the last interest categories, oldest first (the next-interest model's input)
    actions: list         # (trigger name, event time) of the latest actions, oldest first
    settled_through: int | None  # event time through which the decision is exact (None: nothing settled yet)
    provisional: int      # events in it that the watermark has not passed yet (0: settled)
    decided_at: int       # event time the decision is as of (the content choice's snapshot follows from it)
    level: str = "full"   # the user's personalization level (full, basic, off: `Renderer.render`)


class ModelScores(NamedTuple):
    """What a model set gives a micro-batch of rows, each field row-aligned (None: that model is not in the set)."""

    model_version: str
    scores: dict[str, Sequence[float]]          # score name -> one value per row
    ml_segments: Sequence[int] | None = None     # the clustering model's label per row
    next_interest: Sequence[str] | None = None   # the next-interest model's category per row


class Mark(NamedTuple):
    """What a decision says of its own exactness (a settled marker updates just these fields of one written)."""
    settled_through: int | None  # event time of the latest event the watermark has passed (None: none yet)
    provisional: int             # events in it the watermark has not passed


def settled_mark(state) -> Mark:
    """(settled_through, provisional) of a user's state, what a decision says of its own exactness: the event time
    of its latest event the watermark has passed (None: none yet) and how many of its events it has not passed.
    Both follow from the events alone, so every engine writes the same once the input has settled."""
    p = state.pending
    if not p:
        t = state.last_ts
    elif state.settled:
        t = p[state.settled - 1].ts
    else:
        t = state.base.last_ts
    return Mark(None if t == NO_TIME else t, len(p) - state.settled)


def snapshot(state, key: str, cfg: Config) -> Row:
    """The row for a user's current state."""
    values = feature_row(state, cfg)
    through, provisional = settled_mark(state)
    return Row(key, state.last_ts, values, top_categories(state), state.shift.last,
               values[feature_index(cfg)["shift_score"]], recent_categories(state, 10), list(state.actions),
               through, provisional, state.decided_at, state.level)


class Renderer:
    """Turns a micro-batch of rows into decision records (schemas/decision.avsc), with model scores if given."""

    def __init__(self, cfg: Config):
        self.names = feature_names(cfg)
        self.segmenter = Segmenter(cfg.segments.rules, self.names, cfg.segments.default)
        self.chooser = Chooser(cfg) if cfg.content.slots else None
        self.slots = cfg.content.slots
        c = cfg.content
        self.explore = (c.explore_top, c.epoch, catalogue_categories(c.slots)) if c.explore_top else None

    def render(self, rows: Sequence[Row], now_ms: int, models: ModelScores | None = None,
               learner=None) -> list[dict]:
        """Decision records; with content slots configured, each chooses per slot from the learner's snapshots
        (`choosing.Chooser`: rows that wanted a snapshot not sealed yet are left in `self.chooser.stale`)."""
        names = self.names
        scores = models.scores if models is not None else None
        ml_segments = models.ml_segments if models is not None else None
        next_interest = models.next_interest if models is not None else None
        model_version = models.model_version if models is not None else None
        assign = self.segmenter.assign
        choose = self.chooser.choose if self.chooser is not None else None
        exp = self.explore
        out = []
        for i, r in enumerate(rows):
            if r.level != "full":
                if r.level == "off":  # no profile: the slots' fallbacks, nothing individual
                    out.append(self._off(r, now_ms))
                    continue
            sh = r.shift
            segment = assign(r.values)
            content = choose(r.key, r.decided_at, r.values, segment, learner) if choose is not None else {}
            first = next(iter(content.values()), None)
            out.append({
                "user_key": r.key,
                "segment": segment,
                "ml_segment": int(ml_segments[i]) if ml_segments is not None else None,
                "shift": {"detected": sh is not None, "from_category": sh[1] if sh else None,
                          "to_category": sh[2] if sh else None, "score": sh[3] if sh else round(r.shift_score, 6),
                          "at": sh[0] if sh else None},
                "top_categories": explore(r.top, r.key, r.decided_at, exp[1], exp[2], exp[0]) if exp else r.top,
                "features": dict(zip(names, r.values)),
                "scores": {m: float(v[i]) for m, v in scores.items()} if scores else {},
                "next_interest": next_interest[i] if next_interest is not None else None,
                "chosen_content": first["variant"] if first else None,
                "experiment_arm": first["arm"] if first else None,
                "content": content,
                "policy_version": first["version"] if first else None,
                "model_version": model_version,
                "actions": [{"name": a[0], "at": a[1]} for a in reversed(r.actions)],
                "event_time": r.event_time,
                "settled_through": r.settled_through,
                "provisional": r.provisional,
                "updated_at": now_ms,
                "personalization": r.level,
            })
            if r.level == "basic":
                out[-1] = basic(out[-1])
        return out

    def _off(self, r: Row, now_ms: int) -> dict:
        content = {s.name: {"variant": s.variants[s.fallback_index].id, "propensity": 1.0, "policy": s.policy,
                            "version": None, "arm": None, "reason": "personalization_off", "paused": []}
                   for s in self.slots}
        return {"user_key": r.key, "segment": self.segmenter.default, "ml_segment": None,
                "shift": {"detected": False, "from_category": None, "to_category": None, "score": 0.0, "at": None},
                "top_categories": [], "features": {}, "scores": {}, "next_interest": None,
                "chosen_content": next(iter(content.values()))["variant"] if content else None,
                "experiment_arm": None, "content": content, "policy_version": None, "model_version": None,
                "actions": [], "event_time": r.decided_at, "settled_through": r.settled_through,
                "provisional": r.provisional, "updated_at": now_ms, "personalization": "off"}


def basic(d: dict) -> dict:
    """A decision at the basic level: its segment and the content chosen stay; the individual signals (features,
    model scores, top categories, the shift, the next interest, trigger actions) are emptied. The API applies the
    same to what it reads, so a decision written before the level changed is not served in full."""
    return {**d, "ml_segment": None, "top_categories": [], "features": {}, "scores": {}, "next_interest": None,
            "shift": {"detected": False, "from_category": None, "to_category": None, "score": 0.0, "at": None},
            "actions": [], "personalization": "basic"}


def fallback_decision(cfg: Config, user_key: str, why: str) -> dict:
    """What a caller shows when there is no decision to read (none yet, or the store slow or down): the default
    segment and each content slot's configured fallback, flagged with the reason in `fallback`."""
    slots = cfg.content.slots
    return {"user_key": user_key, "fallback": why, "segment": cfg.segments.default, "top_categories": [],
            "chosen_content": slots[0].variants[slots[0].fallback_index].id if slots else None,
            "content": {s.name: {"variant": s.variants[s.fallback_index].id, "reason": "fallback"} for s in slots},
            "actions": [], "freshness": None, "personalization": None}
