"""The one way every engine turns a micro-batch of decision rows into writes: score, render, write, shadow."""
from __future__ import annotations

import time
from typing import Sequence

from shiftstream.transforms.config import Config
from shiftstream.transforms.decisions import Mark, Renderer, Row, settled_mark


class DecisionWriter:
    """Scores a batch with the live models (and the shadow set), renders decisions, writes both to the sink."""

    def __init__(self, cfg: Config, sink, scorer=None, clock=time.time):
        self.renderer = Renderer(cfg)
        self.sink = sink
        self.scorer = scorer
        self.clock = clock
        self.on_written = None  # called with each batch of decision records once sent (jobs/metrics.py)

    @classmethod
    def for_config(cls, cfg: Config, models_dir: str | None = None) -> "DecisionWriter":
        """A writer on a new Redis sink from the config, with the models directory's scorer if one is given."""
        from shiftstream.jobs.redis_sink import RedisSink

        from shiftstream.models.scorer import scorer_for

        return cls(cfg, RedisSink.from_config(cfg), scorer_for(cfg, models_dir))

    def write(self, rows: Sequence[Row], learner=None) -> int:
        """Returns how many decisions were written (choices from the learner's snapshots, if slots are set)."""
        return len(self.write_rendered(rows, learner))

    def mark(self, marks: dict, rendered=()) -> int:
        """Settled markers for decisions written before: {user key: its state, or its `Mark`}; keys in `rendered`
        (decisions written in this same flush, which carry their settled fields) are skipped. Returns how many."""
        out = [(key, *(m if type(m) is Mark else settled_mark(m))) for key, m in marks.items() if key not in rendered]
        if out:
            self.sink.mark(out)
        return len(out)

    def write_rendered(self, rows: Sequence[Row], learner=None) -> list[dict]:
        """Like `write`, returning the decision records written (for engines that also publish them)."""
        if not rows:
            return []
        live, shadow = self.scorer.score(rows) if self.scorer is not None else (None, None)
        decisions = self.renderer.render(rows, int(self.clock() * 1000), live, learner)
        self.sink.write(decisions)
        if self.on_written is not None:
            self.on_written(decisions)
        if shadow is not None:
            sc = shadow.scores
            self.sink.write_shadow([(r.key, shadow.model_version, {m: float(v[i]) for m, v in sc.items()})
                                    for i, r in enumerate(rows) if r.level == "full"])
        return decisions
