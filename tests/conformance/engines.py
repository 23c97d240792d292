"""The engines under the conformance suite, each behind one call: run a scenario's input, return what it did.

An engine's `run` reads the same input (the scenario's wire-format messages, as a `.frames` file for the engines
that read files), writes decisions to the same real Redis, and returns a `Result` in the contract's vocabulary.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import redis_decisions, run_reference
from shiftstream.transforms.pseudonyms import DEV_KEY


@dataclass
class Result:
    decisions: dict[str, dict]   # Redis contents by user key, without the processing-time field
    counts: dict[str, int]       # the contract's counters (transforms/outputs.py)
    late: list[dict]             # the late output's records
    dead: list[dict]             # the dead-letter output's records


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


class Reference:
    name = "reference"

    def unsupported(self, scenario) -> str | None:
        return None

    def run(self, data, cfg, tmp: Path, models_dir: str | None) -> Result:
        from shiftstream.models.scorer import scorer_for

        scorer = scorer_for(cfg, models_dir)
        job, _, cap = run_reference(data.messages, cfg, privacy=data.privacy, sink=RedisSink.from_config(cfg),
                                    messages=True, key=DEV_KEY, scorer=scorer)
        return Result(redis_decisions(cfg.redis.url), job.stats, cap.late, cap.dead_letters)


class Beam:
    name = "beam"

    def unsupported(self, scenario) -> str | None:
        if scenario.privacy:
            return "the Beam pipeline reads event files only; privacy requests need an order Beam does not give"
        return None

    def run(self, data, cfg, tmp: Path, models_dir: str | None) -> Result:
        from shiftstream.jobs import beam_pipeline

        counts = beam_pipeline.run(cfg, [str(data.frames)], DEV_KEY, str(tmp), models_dir)
        return Result(redis_decisions(cfg.redis.url), counts, _lines(tmp / "late-events.jsonl"),
                      _lines(tmp / "dead-letters.jsonl"))


class Flink:
    name = "flink"

    def __init__(self, mode: str = "thread", parallelism: int = 1):
        self.mode, self.parallelism = mode, parallelism
        self.name = f"flink-{mode}" + (f"-p{parallelism}" if parallelism > 1 else "")

    def unsupported(self, scenario) -> str | None:
        return None

    def run(self, data, cfg, tmp: Path, models_dir: str | None) -> Result:
        from shiftstream.jobs.flink import topology

        counts = topology.run_file(cfg, str(data.frames), DEV_KEY, str(tmp), models_dir, self.mode, self.parallelism,
                                   [p for _, p in data.privacy])
        return Result(redis_decisions(cfg.redis.url), counts, _lines(tmp / "late-events.jsonl"),
                      _lines(tmp / "dead-letters.jsonl"))
