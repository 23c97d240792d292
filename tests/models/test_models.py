"""Models trained here on simulated data: ONNX parity, manifest checks, scoring in the job, hot reload, shadow."""
import json
import shutil

import numpy as np
import pytest

from shiftstream.jobs.testing import run_reference
from shiftstream.models.dataset import build, temporal_split
from shiftstream.models.manifest import Manifest, ModelError
from shiftstream.models.scorer import ModelSet, Scorer
from shiftstream.models.train import export, set_pointer, train_clusters, train_next_interest, train_propensity
from shiftstream.runners.simulator import CATEGORIES, SimConfig, simulate
from shiftstream.transforms.config import load_config
from shiftstream.transforms.features import feature_names

CFG = load_config()
NAMES = feature_names(CFG)


@pytest.fixture(scope="module")
def sim():
    return simulate(SimConfig(users=250, events=25_000, seed=17))


@pytest.fixture(scope="module")
def ds(sim):
    return build(sim.events, CFG, CATEGORIES, max_rows=6000)


@pytest.fixture(scope="module")
def trained(ds):
    gbt, lr = train_propensity(ds, n_estimators=20)
    return {"propensity": gbt, "propensity_baseline": lr, "clusters": train_clusters(ds, ks=range(2, 5)),
            "next_interest": train_next_interest(ds, epochs=1)}


@pytest.fixture
def models_dir(tmp_path, ds, trained):
    for t in trained.values():
        export(t, ds, tmp_path / "v1", "v1")
    set_pointer(tmp_path, "LIVE", "v1")
    return tmp_path


def test_dataset_is_time_ordered_and_split_without_leaks(ds):
    assert len(ds.y) == 6000 and ds.X.shape == (6000, len(NAMES)) and 0 < ds.y.mean() < 0.5
    tr, va, te = temporal_split(len(ds.ts))
    assert ds.ts[tr].max() <= ds.ts[va].min() and ds.ts[va].max() <= ds.ts[te].min()
    assert np.all(np.diff(ds.ts) >= 0)


def test_propensity_learns_something_and_reports_metrics(trained):
    m = trained["propensity"].metrics
    assert m["test"]["auc"] > 0.55 and m["cv_folds"] >= 2 and 0 < m["test"]["log_loss"] < 1
    assert trained["propensity_baseline"].metrics["test"]["auc"] > 0.55
    c = trained["clusters"].metrics
    assert c["k"] in c["silhouette_by_k"] and c["silhouette"] == max(c["silhouette_by_k"].values())


def test_onnx_parity_for_every_model(models_dir, ds, trained):
    import torch

    s = ModelSet.load(models_dir / "v1", NAMES)
    X = ds.X[-500:]
    for name in ("propensity", "propensity_baseline"):
        import onnxruntime as ort

        sess = s.models[name][0] if name in s.models else ort.InferenceSession(str(models_dir / "v1" / f"{name}.onnx"))
        got = sess.run(["probabilities"], {"features": X})[0][:, 1]
        want = trained[name].model.predict_proba(X)[:, 1]
        assert np.max(np.abs(got - want)) < 1e-5, name
    sess = s.models["clusters"][0]
    labels, dist = sess.run(["label", "scores"], {"features": X})
    km = trained["clusters"].model
    assert np.array_equal(labels.reshape(-1), km.predict(X))
    assert np.allclose(dist, km.transform(X), rtol=1e-5, atol=1e-4)
    seq = ds.seq[-300:]
    with torch.no_grad():
        want = trained["next_interest"].model(torch.as_tensor(seq)).numpy()
    for batch in (1, 7, 300):  # the exported GRU takes any batch size
        got = s.models["next_interest"][0].run(["probabilities"], {"sequence": seq[:batch]})[0]
        assert np.max(np.abs(got - want[:batch])) < 1e-5


def test_manifest_records_what_the_model_is(models_dir):
    m = Manifest.read(models_dir / "v1" / "propensity.json")
    assert m.feature_names == list(NAMES) and m.inputs[0]["shape"] == [None, len(NAMES)]
    assert m.training_data["fingerprint"].startswith("sha256:") and m.metrics["test"]["auc"] > 0 and m.created


def _broken(models_dir, version, how):
    shutil.copytree(models_dir / "v1", models_dir / version)
    p = models_dir / version / "propensity.json"
    m = json.loads(p.read_text())
    if how == "features":
        m["feature_names"][3], m["feature_names"][4] = m["feature_names"][4], m["feature_names"][3]
    elif how == "dtype":
        m["inputs"][0]["dtype"] = "float64"
    elif how == "output":
        m["outputs"].append({"name": "margin", "dtype": "float32"})
    elif how == "graph":
        (models_dir / version / "propensity.onnx").write_bytes(b"not an onnx graph")
    p.write_text(json.dumps(m))


@pytest.mark.parametrize("how, words", [("features", "first difference at position 3"), ("dtype", "manifest says"),
                                        ("output", "no output 'margin'"), ("graph", "onnxruntime cannot load")])
def test_a_mismatched_model_is_refused_at_load(models_dir, how, words):
    _broken(models_dir, "bad", how)
    with pytest.raises(ModelError) as exc:
        ModelSet.load(models_dir / "bad", NAMES)
    assert words in str(exc.value)


def test_decisions_carry_real_scores_and_the_model_versions(models_dir, sim):
    scorer = Scorer(models_dir, NAMES)
    job, sink, _ = run_reference(sim.events[:8000], scorer=scorer)
    d = next(iter(sink.decisions.values()))
    assert d["model_version"] == "clusters:v1;next_interest:v1;propensity:v1"
    assert 0 <= d["scores"]["propensity"] <= 1 and d["ml_segment"] is not None and d["next_interest"] in CATEGORIES
    props = {round(x["scores"]["propensity"], 6) for x in sink.decisions.values()}
    assert len(props) > 10  # scores vary by user: not a constant


def test_hot_reload_refuses_a_broken_set_and_keeps_the_last_good(models_dir):
    now = [0.0]
    logs = []
    scorer = Scorer(models_dir, NAMES, reload_interval_ms=1000, clock=lambda: now[0], log=logs.append)
    _broken(models_dir, "v2", "features")
    set_pointer(models_dir, "LIVE", "v2")
    now[0] = 0.5
    assert not scorer.reload() and scorer.live.version == "v1"  # not yet time to look
    now[0] = 2.0
    assert not scorer.reload() and scorer.live.version == "v1"
    assert any("refused LIVE model set v2" in m and "keeping v1" in m for m in logs)
    shutil.copytree(models_dir / "v1", models_dir / "v3")
    set_pointer(models_dir, "LIVE", "v3")
    now[0] = 4.0
    assert scorer.reload() and scorer.live.version == "v3"


def test_shadow_scores_are_stored_apart_and_never_change_decisions(models_dir, sim, ds, trained):
    events = sim.events[:8000]
    _, plain, _ = run_reference(events, scorer=Scorer(models_dir, NAMES))
    t2, _ = train_propensity(ds, seed=5, n_estimators=8)
    shutil.copytree(models_dir / "v1", models_dir / "v2")
    export(t2, ds, models_dir / "v2", "v2")
    set_pointer(models_dir, "SHADOW", "v2")
    _, with_shadow, _ = run_reference(events, scorer=Scorer(models_dir, NAMES))
    assert with_shadow.stable() == plain.stable()
    key = next(iter(with_shadow.shadow))
    version, scores = with_shadow.shadow[key]
    assert "propensity:v2" in version and scores["propensity"] != with_shadow.decisions[key]["scores"]["propensity"]
    from shiftstream.runners.train import compare

    report = compare(ModelSet.load(models_dir / "v1", NAMES), ModelSet.load(models_dir / "v2", NAMES),
                     _rows(ds))
    assert report["propensity"]["mean_abs_delta"] > 0 and report["next_interest"]["top1_agreement"] == 1.0
    same = compare(ModelSet.load(models_dir / "v1", NAMES), ModelSet.load(models_dir / "v1", NAMES), _rows(ds))
    assert same["propensity"]["max_abs_delta"] == 0 and same["clusters"]["same_label"] == 1.0


def _rows(ds):
    from shiftstream.transforms.decisions import Row

    return [Row(key="", event_time=0, values=tuple(map(float, ds.X[i])), top=[], shift=None, shift_score=0.0,
                recent=[ds.vocabulary[j - 1] for j in ds.seq[i] if j > 0], actions=[], settled_through=None,
                provisional=0, decided_at=0) for i in range(300)]
