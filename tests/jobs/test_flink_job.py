"""The PyFlink job on a real mini-cluster: the reference runner's decisions, key by key, in both execution modes."""
import pytest
import redis

from jobs import flink_job
from jobs.redis_sink import RedisSink
from jobs.testing import redis_decisions, run_reference, shuffled_in_blocks
from runners.simulate import write_outputs
from runners.simulator import SimConfig, simulate
from schemas import read_frames, write_frames
from transforms.config import load_config
from transforms.pseudonyms import DEV_KEY

pytestmark = pytest.mark.slow
CFG = load_config()


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    sim = simulate(SimConfig(users=50, events=5000, seed=29, out_of_order=0.2, max_delay_s=90, too_late=0.01,
                             duplicates=0.05, malformed=0.01, privacy_rate=0))
    d = tmp_path_factory.mktemp("flink")
    msgs = list(read_frames(write_outputs(sim, d / "events.frames", 29)["events"]))
    msgs = shuffled_in_blocks(msgs, 8, seed=3)
    write_frames(d / "shuffled.frames", msgs)
    return d / "shuffled.frames", msgs


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small trained model set (real ONNX graphs), and a scorer on it for the reference runner."""
    from models.scorer import Scorer
    from models.train import train_all
    from transforms.features import feature_names

    hist = simulate(SimConfig(users=120, events=12_000, seed=30))
    d = tmp_path_factory.mktemp("models")
    train_all(hist.events, CFG, hist.truth["categories"], d, version="f1", max_rows=2000, n_estimators=8, epochs=1,
              log=lambda m: None)
    return d, Scorer(d, feature_names(CFG), log=lambda m: None)


def _reference(msgs, cfg, scorer=None):
    redis.Redis.from_url(cfg.redis.url).flushall()
    job, _, cap = run_reference(msgs, cfg, sink=RedisSink(cfg.redis.url), messages=True, scorer=scorer)
    return job.summary(), redis_decisions(cfg.redis.url)


def test_thread_mode_gives_the_reference_runners_redis_contents(shuffled, redis_url, tmp_path):
    path, msgs = shuffled
    cfg = CFG.replace(**{"redis.url": redis_url})
    r = flink_job.run_file(cfg, str(path), DEV_KEY, str(tmp_path), mode="thread")
    from_flink = redis_decisions(redis_url)
    summary, from_reference = _reference(msgs, cfg)
    assert r["mode"] == "thread" and len(from_reference) == 50
    assert from_flink == from_reference
    assert r["late"] == summary["late"] > 0 and r["dead_letters"] == summary["dead_letters"] > 0
    assert len((tmp_path / "late-events.jsonl").read_text().splitlines()) == r["late"]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_with_models_the_job_scores_like_the_reference(shuffled, models, redis_url, tmp_path, mode):
    path, msgs = shuffled
    cfg = CFG.replace(**{"redis.url": redis_url})
    r = flink_job.run_file(cfg, str(path), DEV_KEY, str(tmp_path), str(models[0]), mode=mode)
    assert r["mode"] == mode  # thread mode: the keyed operator is alone on its thread, so onnxruntime loads
    from_flink = redis_decisions(redis_url)
    _, from_reference = _reference(msgs, cfg, models[1])
    assert from_flink == from_reference
    assert all(d["model_version"] == "clusters:f1;next_interest:f1;propensity:f1" for d in from_flink.values())


def test_two_core_subtasks_give_the_same_redis_contents_with_models(shuffled, models, redis_url, tmp_path):
    """RunCore at parallelism 2 (users split between two subtasks, each its own thread and Redis connection, both
    loading onnxruntime in thread mode): still the reference runner's Redis contents."""
    path, msgs = shuffled
    cfg = CFG.replace(**{"redis.url": redis_url})
    r = flink_job.run_file(cfg, str(path), DEV_KEY, str(tmp_path), str(models[0]), mode="thread", parallelism=2)
    from_flink = redis_decisions(redis_url)
    summary, from_reference = _reference(msgs, cfg, models[1])
    assert from_flink == from_reference
    assert r["late"] == summary["late"] and r["dead_letters"] == summary["dead_letters"]
