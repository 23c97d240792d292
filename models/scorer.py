"""Scoring decisions in micro-batches with onnxruntime: a live model set, hot reload, and a shadow set.

A models directory holds model sets, one folder per version (`<name>.onnx` + `<name>.json` manifest each), and
two pointer files: `LIVE` (the set decisions use) and, optionally, `SHADOW` (a candidate scored on the same rows,
its scores stored apart and never used for decisions).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shiftstream.transforms.decisions import ModelScores

from .manifest import Manifest, ModelError, check_graph

MODEL_NAMES = ("propensity", "clusters", "next_interest")


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
        raise ModelError(f"{path}: onnxruntime cannot load it: {str(exc).splitlines()[0][:200]}") from None


class ModelSet:
    """One version's models, checked against their manifests and the core's feature vector at load."""

    def __init__(self, version: str, models: dict[str, tuple[object, Manifest]]):
        self.version = version
        self.models = models
        self.label = ";".join(f"{n}:{m.version}" for n, (_, m) in sorted(models.items()))
        nxt = models.get("next_interest")
        self.vocabulary = nxt[1].vocabulary if nxt else []
        self._index = {c: i + 1 for i, c in enumerate(self.vocabulary)}

    @classmethod
    def load(cls, folder: Path, core_features: tuple[str, ...] | None, threads: int = 1) -> "ModelSet":
        if not folder.is_dir():
            raise ModelError(f"{folder}: no such model set")
        models = {}
        for name in MODEL_NAMES:
            onnx_path, man_path = folder / f"{name}.onnx", folder / f"{name}.json"
            if not onnx_path.exists():
                continue
            manifest = Manifest.read(man_path)
            if manifest.name != name:
                raise ModelError(f"{man_path}: manifest names {manifest.name!r}, the file is {name!r}")
            sess = _session(onnx_path, threads)
            check_graph(manifest, sess, core_features if manifest.kind != "sequence" else None)
            models[name] = (sess, manifest)
        if not models:
            raise ModelError(f"{folder}: holds none of {', '.join(MODEL_NAMES)}")
        return cls(folder.name, models)

    def score(self, rows: Sequence) -> ModelScores:
        """Scores for a micro-batch of decision rows: one onnxruntime call per model."""
        scores: dict = {}
        ml_segments = next_interest = None
        if not rows:
            return ModelScores(self.label, scores)
        X = None
        if "propensity" in self.models or "clusters" in self.models:
            X = np.array([r.values for r in rows], dtype=np.float32)
        if "propensity" in self.models:
            sess, _ = self.models["propensity"]
            scores["propensity"] = sess.run(["probabilities"], {"features": X})[0][:, 1]
        if "clusters" in self.models:
            sess, _ = self.models["clusters"]
            ml_segments = sess.run(["label"], {"features": X})[0].reshape(-1)
        if "next_interest" in self.models:
            sess, m = self.models["next_interest"]
            n = len(m.inputs[0]["shape"]) and m.inputs[0]["shape"][1]
            seq = np.zeros((len(rows), n), dtype=np.int64)
            idx = self._index
            for i, r in enumerate(rows):
                recent = r.recent[-n:]
                for j, c in enumerate(recent, n - len(recent)):
                    seq[i, j] = idx.get(c, 0)
            p = sess.run(["probabilities"], {"sequence": seq})[0]
            best = p.argmax(axis=1)
            scores["next_interest_p"] = p[np.arange(len(rows)), best]
            voc = self.vocabulary
            next_interest = [voc[b] for b in best]
        return ModelScores(self.label, scores, ml_segments, next_interest)


def scorer_for(cfg, models_dir) -> "Scorer | None":
    """The scorer the config describes for a models directory (None: no directory, no scores)."""
    if not models_dir:
        return None
    from shiftstream.transforms.features import feature_names

    return Scorer(models_dir, feature_names(cfg), cfg.models.reload_interval, cfg.models.intra_op_threads)


class Scorer:
    """The live model set for decisions (reloaded when LIVE changes) and the shadow set, if SHADOW names one.

    A set that fails to load or check is refused with a logged reason; the last good set stays in use."""

    def __init__(self, models_dir: str | Path, core_features: tuple[str, ...], reload_interval_ms: int = 10_000,
                 threads: int = 1, clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] | None = None):
        self.dir = Path(models_dir)
        self.features = core_features
        self.interval = reload_interval_ms / 1000
        self.threads = threads
        self.clock = clock
        self.log = log or logging.getLogger("shiftstream.models").info
        self.live: ModelSet | None = None
        self.shadow: ModelSet | None = None
        self._pointers: dict[str, str | None] = {"LIVE": None, "SHADOW": None}
        self._checked = -1e18
        self.refused: list[str] = []
        self.reload(force=True)
        if self.live is None:
            raise ModelError(f"{self.dir}: no usable live model set ({'; '.join(self.refused) or 'no LIVE file'})")

    def _read_pointer(self, name: str) -> str | None:
        try:
            return (self.dir / name).read_text().strip() or None
        except FileNotFoundError:
            return None

    def reload(self, force: bool = False) -> bool:
        """Re-read the pointers (at most every reload interval unless forced); returns whether a set changed."""
        now = self.clock()
        if not force and now - self._checked < self.interval:
            return False
        self._checked = now
        changed = False
        for pointer in ("LIVE", "SHADOW"):
            version = self._read_pointer(pointer)
            if version == self._pointers[pointer]:
                continue
            self._pointers[pointer] = version
            if version is None:
                if pointer == "SHADOW" and self.shadow is not None:
                    self.shadow, changed = None, True
                continue
            try:
                loaded = ModelSet.load(self.dir / version, self.features, self.threads)
            except ModelError as exc:
                self.refused.append(str(exc))
                keep = self.live if pointer == "LIVE" else self.shadow
                self.log(f"refused {pointer} model set {version}: {exc}; "
                         f"keeping {keep.version if keep else 'none'}")
                continue
            if pointer == "LIVE":
                self.live = loaded
            else:
                self.shadow = loaded
            changed = True
            self.log(f"{pointer} model set is now {version}")
        return changed

    def score(self, rows: Sequence) -> tuple[ModelScores, ModelScores | None]:
        """(the live set's scores, the shadow set's or None)."""
        self.reload()
        live = self.live.score(rows)
        shadow = self.shadow.score(rows) if self.shadow is not None else None
        return live, shadow
