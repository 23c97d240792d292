"""Training and ONNX export: propensity (gradient-boosted trees, logistic-regression baseline), segment clusters
(standardised features -> K-means, K by silhouette), next interest (a GRU over recent categories, PyTorch).

All splits are temporal (train on the past, test on the future); cross-validation is time-series k-fold.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import SEQ_LEN, Dataset, temporal_split
from .manifest import Manifest

OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass
class Trained:
    """A fitted model ready for export, with its metrics."""

    name: str
    model: object
    metrics: dict
    algorithm: str


def _clf_metrics(y, p) -> dict:
    from sklearn.metrics import log_loss, precision_score, recall_score, roc_auc_score

    pred = (p >= 0.5).astype(int)
    return {"auc": float(roc_auc_score(y, p)) if len(set(y)) > 1 else float("nan"),
            "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "positive_rate": float(np.mean(y))}


def _gbt(seed: int, n_estimators: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=n_estimators, max_depth=3, learning_rate=0.1, subsample=0.8,
                                      random_state=seed)


def _lr():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))


def train_propensity(ds: Dataset, seed: int = 0, n_estimators: int = 80, folds: int = 3) -> tuple[Trained, Trained]:
    """GBT and the LR baseline: time-series CV on the past 80% (folds with half the trees, to keep it quick),
    final fit on all of it, metrics on the last 20%."""
    from sklearn.model_selection import TimeSeriesSplit

    tr, va, te = temporal_split(len(ds.y))
    past = slice(0, va.stop)
    Xp, yp = ds.X[past], ds.y[past]
    cv: dict[str, list] = {"gbt": [], "lr": []}
    for a, b in TimeSeriesSplit(n_splits=folds).split(Xp):
        if len(set(yp[a])) < 2 or len(set(yp[b])) < 2:
            continue
        for name, make in (("gbt", lambda: _gbt(seed, max(10, n_estimators // 2))), ("lr", _lr)):
            m = make().fit(Xp[a], yp[a])
            cv[name].append(_clf_metrics(yp[b], m.predict_proba(Xp[b])[:, 1])["auc"])
    out = []
    for name, make, algo in (("propensity", lambda: _gbt(seed, n_estimators), "GradientBoostingClassifier"),
                             ("propensity_baseline", _lr, "StandardScaler+LogisticRegression")):
        m = make().fit(Xp, yp)
        metrics = {"test": _clf_metrics(ds.y[te], m.predict_proba(ds.X[te])[:, 1]),
                   "cv_auc_mean": float(np.mean(cv["gbt" if name == "propensity" else "lr"] or [np.nan])),
                   "cv_auc_std": float(np.std(cv["gbt" if name == "propensity" else "lr"] or [np.nan])),
                   "cv_folds": len(cv["gbt"]), "rows": {"train": int(va.stop), "test": int(te.stop - te.start)}}
        out.append(Trained(name, m, metrics, algo))
    return out[0], out[1]


def train_clusters(ds: Dataset, seed: int = 0, ks=range(2, 9), sample: int = 4000) -> Trained:
    """Standardised session-end rows -> K-means; K chosen by the best silhouette on a sample."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = ds.session_X
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), size=min(sample, len(X)), replace=False)
    scores = {}
    best = None
    for k in ks:
        if k >= len(idx):
            break
        m = make_pipeline(StandardScaler(), KMeans(n_clusters=k, n_init=4, random_state=seed)).fit(X)
        s = float(silhouette_score(m[0].transform(X[idx]), m.predict(X[idx])))
        scores[k] = round(s, 4)
        if best is None or s > best[0]:
            best = (s, k, m)
    s, k, m = best
    return Trained("clusters", m, {"k": k, "silhouette": round(s, 4), "silhouette_by_k": scores,
                                   "rows": int(len(X))}, f"StandardScaler+KMeans(k={k})")


def train_next_interest(ds: Dataset, seed: int = 0, epochs: int = 3, hidden: int = 32) -> Trained:
    """A GRU over the last SEQ_LEN interest categories predicting the next; baseline: the most frequent recent one."""
    import torch

    from .sequence import NextInterest

    torch.manual_seed(seed)
    tr, va, te = temporal_split(len(ds.seq_next))
    past = slice(0, va.stop)
    X = torch.as_tensor(ds.seq[past])
    y = torch.as_tensor(ds.seq_next[past] - 1)
    model = NextInterest(len(ds.vocabulary), hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    lossf = torch.nn.NLLLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 256):
            b = perm[i:i + 256]
            opt.zero_grad()
            loss = lossf(torch.log(model(X[b]) + 1e-9), y[b])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        p = model(torch.as_tensor(ds.seq[te])).numpy()
    yt = ds.seq_next[te] - 1
    acc = float(np.mean(p.argmax(1) == yt))
    base = []
    for row in ds.seq[te]:
        vals = row[row > 0] - 1
        base.append(np.bincount(vals, minlength=len(ds.vocabulary)).argmax() if len(vals) else 0)
    ll = float(-np.mean(np.log(np.clip(p[np.arange(len(yt)), yt], 1e-9, 1))))
    return Trained("next_interest", model, {"test_top1_accuracy": round(acc, 4),
                                            "baseline_top1_accuracy": round(float(np.mean(np.array(base) == yt)), 4),
                                            "test_log_loss": round(ll, 4), "rows": {"train": int(va.stop),
                                                                                    "test": int(te.stop - te.start)}},
                   f"Embedding+GRU(hidden={hidden})")


def export(t: Trained, ds: Dataset, out: Path, version: str) -> Manifest:
    """Write `<name>.onnx` and `<name>.json` (the manifest) into a model-set directory."""
    out.mkdir(parents=True, exist_ok=True)
    n = len(ds.names)
    common = dict(version=version, metrics=t.metrics, algorithm=t.algorithm,
                  created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  training_data={"fingerprint": ds.fingerprint(), "rows": int(len(ds.y)),
                                 "sequences": int(len(ds.seq_next)), "sessions": int(len(ds.session_X))})
    if t.name == "next_interest":
        from .sequence import export_onnx

        export_onnx(t.model, out / f"{t.name}.onnx", SEQ_LEN)
        m = Manifest(t.name, kind="sequence", inputs=[{"name": "sequence", "dtype": "int64", "shape": [None, SEQ_LEN]}],
                     outputs=[{"name": "probabilities", "dtype": "float32"}], vocabulary=list(ds.vocabulary), **common)
    else:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        final = t.model.steps[-1][1] if hasattr(t.model, "steps") else t.model
        onx = convert_sklearn(t.model, initial_types=[("features", FloatTensorType([None, n]))],
                              options={id(final): {"zipmap": False}} if t.name != "clusters" else None,
                              target_opset=OPSET)
        (out / f"{t.name}.onnx").write_bytes(onx.SerializeToString())
        kind = "clusterer" if t.name == "clusters" else "classifier"
        outputs = [{"name": "label", "dtype": "int64"}] + (
            [{"name": "probabilities", "dtype": "float32"}] if kind == "classifier" else
            [{"name": "scores", "dtype": "float32"}])
        m = Manifest(t.name, kind=kind, inputs=[{"name": "features", "dtype": "float32", "shape": [None, n]}],
                     outputs=outputs, feature_names=list(ds.names), **common)
    m.write(out / f"{t.name}.json")
    return m


def train_all(records, cfg, vocabulary, out_dir: Path, version: str | None = None, promote: bool = True,
              seed: int = 0, max_rows: int = 20_000, n_estimators: int = 60, epochs: int = 3,
              log=print) -> dict:
    """Build the dataset, train every model, export a model set `out_dir/<version>/`, point LIVE at it."""
    from . import dataset

    version = version or "v" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    t0 = time.perf_counter()
    ds = dataset.build(records, cfg, tuple(vocabulary), max_rows=max_rows, seed=seed)
    log(f"train: {len(ds.y):,} propensity rows ({ds.y.mean():.1%} converting), {len(ds.session_X):,} sessions, "
        f"{len(ds.seq_next):,} sequences in {time.perf_counter() - t0:.1f}s")
    report = {}
    target = out_dir / version
    for step in ("propensity", "clusters", "next_interest"):
        t1 = time.perf_counter()
        if step == "propensity":
            trained = train_propensity(ds, seed, n_estimators)
        elif step == "clusters":
            trained = (train_clusters(ds, seed),)
        else:
            trained = (train_next_interest(ds, seed, epochs),)
        for t in trained:
            export(t, ds, target, version)
            report[t.name] = t.metrics
        log(f"train: {step} in {time.perf_counter() - t1:.1f}s: " +
            json.dumps({t.name: _headline(t.metrics) for t in trained}))
    (target / "report.json").write_text(json.dumps(report, indent=2))
    if promote:
        set_pointer(out_dir, "LIVE", version)
    return report


def _headline(m: dict) -> dict:
    if "test" in m:
        return {"test_auc": round(m["test"]["auc"], 4), "cv_auc": round(m["cv_auc_mean"], 4)}
    return {k: v for k, v in m.items() if not isinstance(v, dict)}


def set_pointer(models_dir: Path, pointer: str, version: str) -> None:
    """Point LIVE (or SHADOW) at a model-set version, atomically."""
    tmp = models_dir / f".{pointer}.tmp"
    tmp.write_text(version + "\n")
    tmp.replace(models_dir / pointer)
