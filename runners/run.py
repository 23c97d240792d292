"""`shiftstream run`: run the job over a file or a Kafka topic, decisions into Redis, with a closing summary."""
from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.reference import Outputs, ReferenceJob
from shiftstream.schemas import read_container, read_frames
from shiftstream.transforms.config import Config, load_config
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings


def add_arguments(p) -> None:
    p.add_argument("--runner", choices=["reference", "beam", "flink"], default="reference",
                   help="reference: the pure-Python engine; beam: the Apache Beam pipeline (files only); "
                        "flink: the PyFlink job on a local mini-cluster (a .frames file, or Kafka)")
    p.add_argument("--flink-mode", choices=["thread", "process"], default=None,
                   help="PyFlink python.execution-mode (default: engine.execution_mode)")
    p.add_argument("--beam-runner", default="FnApiRunner", choices=["FnApiRunner", "BundleBasedDirectRunner"],
                   help="Beam's local runner, always named (Beam is never left to pick Prism)")
    p.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="a Beam pipeline option passed through, e.g. --beam-arg=--direct_num_workers=1")
    p.add_argument("--input", type=Path, help=".avro (container) or .frames (wire-format messages) events file")
    p.add_argument("--privacy", type=Path, help="privacy requests file (.avro or .frames)")
    p.add_argument("--config", help="YAML config (default: the embedded config/default.yaml)")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--kafka-bootstrap", help="read events (and privacy requests) from Kafka instead of a file")
    p.add_argument("--topic", help="events topic (default: kafka.events_topic)")
    p.add_argument("--privacy-topic", help="privacy topic (default: kafka.privacy_topic)")
    p.add_argument("--bounded", action="store_true",
                   help="flink + Kafka: read up to the end offsets seen at start, then finish")
    p.add_argument("--from-checkpoint", metavar="PATH|latest",
                   help="flink + Kafka: resume from a checkpoint or savepoint (latest: the newest checkpoint "
                        "under engine.checkpoint_dir or savepoint beside it; drained savepoints are refused)")
    p.add_argument("--idle-exit", type=float, default=None,
                   help="Kafka: stop after this many seconds without a message (default: run until stopped)")
    p.add_argument("--out-dir", type=Path, default=Path(".shiftstream-out"),
                   help="where dead letters and late events go for file runs (JSON lines)")
    p.add_argument("--models", help="models directory (LIVE/SHADOW pointers), or 'none'; default: models.dir, "
                                     "else .demo/models if present, else no model scores")
    p.add_argument("--quiet", action="store_true")


def models_dir(args, cfg: Config) -> Path | None:
    """Where the models come from: --models, then models.dir, then the demo's trained models if present."""
    if getattr(args, "models", None):
        return None if args.models == "none" else Path(args.models)
    if cfg.models.dir:
        return Path(cfg.models.dir)
    demo = Path(".demo/models")
    return demo if (demo / "LIVE").exists() else None


def make_scorer(args, cfg: Config):
    from shiftstream.models.scorer import Scorer
    from shiftstream.transforms.features import feature_names

    d = models_dir(args, cfg)
    if d is None:
        return None
    return Scorer(d, feature_names(cfg), cfg.models.reload_interval, cfg.models.intra_op_threads)


def settings(args) -> Config:
    cfg = load_config(args.config)
    if args.redis_url:
        cfg = cfg.replace(**{"redis.url": args.redis_url})
    return cfg


class JsonLines:
    """A side output written as JSON lines."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fo = open(path, "w")
        self.n = 0

    def __call__(self, record) -> None:
        if hasattr(record, "_asdict"):
            record = {k: (v._asdict() if hasattr(v, "_asdict") else v) for k, v in record._asdict().items()}
        self.fo.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.n += 1

    def close(self) -> None:
        self.fo.close()


def _read_privacy(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    if path.suffix == ".frames":
        from shiftstream.schemas import MemoryRegistry, WireCodec

        wire = WireCodec(MemoryRegistry(), "privacy_request")
        return sorted((wire.decode(m) for m in read_frames(path)), key=lambda r: r["ts"])
    return sorted(read_container(path, "privacy_request"), key=lambda r: r["ts"])


def run_file(job: ReferenceJob, path: Path, privacy: list[dict], progress: bool) -> None:
    """Feed a file through the job; privacy requests are applied as event time reaches them."""
    from tqdm import tqdm

    bar = tqdm(desc="events", unit="ev", disable=not progress, file=sys.stderr, mininterval=0.5, unit_scale=True)
    pi = 0
    max_ts = -1
    n = 0
    if path.suffix == ".frames":
        items = read_frames(path)
        feed = job.on_message
        ts_of = None
    else:
        items = read_container(path, "interaction")
        feed = job.on_record
        ts_of = True
    for n, item in enumerate(items, 1):
        if privacy:
            if ts_of:
                ts = item["ts"]
                if ts > max_ts:
                    max_ts = ts
            else:
                max_ts = job.watermarks.high()
            while pi < len(privacy) and privacy[pi]["ts"] <= max_ts:
                job.on_privacy(privacy[pi])
                pi += 1
        feed(item, 0, n - 1)
        if n & 4095 == 0:
            bar.update(4096)
    while pi < len(privacy):
        job.on_privacy(privacy[pi])
        pi += 1
    bar.update(n & 4095)
    bar.close()


def redis_reachable(cfg: Config) -> bool:
    """Fail fast and clearly, before an engine starts its workers."""
    try:
        RedisSink(cfg.redis.url, cfg.redis.key_prefix).close()
        return True
    except OSError as exc:
        print(f"run: cannot reach Redis at {cfg.redis.url}: {exc}", file=sys.stderr)
        return False


def run_beam(args, cfg: Config, key: bytes) -> int:
    """The Beam pipeline over files on a local runner; prints the same summary as the reference runner."""
    if args.kafka_bootstrap or args.privacy:
        print("run: the Beam runner reads event files only: Beam's Kafka IO needs an expansion service it downloads at "
              "run time, and privacy requests need an order Beam does not give (use --runner reference)",
              file=sys.stderr)
        return 2
    from shiftstream.jobs.beam_pipeline import run

    if not redis_reachable(cfg):
        return 1
    d = models_dir(args, cfg)
    t0 = time.perf_counter()
    c = run(cfg, [str(args.input)], key, str(args.out_dir), str(d) if d else None, args.beam_runner,
            args.beam_arg)
    elapsed = time.perf_counter() - t0
    print(f"shiftstream run (beam, {args.beam_runner}): {c.get('events', 0):,} events in {elapsed:.1f}s "
          f"({c.get('events', 0) / max(elapsed, 1e-9):,.0f} events/s)")
    print("  " + "  ".join(f"{k} {c.get(k, 0):,}" for k in ("sessions", "shifts", "late", "duplicates",
                                                             "dead_letters", "decisions_written")))
    print(f"  decisions in {cfg.redis.url} under {cfg.redis.key_prefix}*; dead letters and late events in "
          f"{args.out_dir}/*.jsonl" + (f"; models {d}" if d else ""))
    return 0


def run_flink(args, cfg: Config, key: bytes) -> int:
    """The PyFlink job on a local mini-cluster: a .frames file (bounded), or Kafka (checkpointed; Ctrl-C stops it
    with a savepoint to resume from)."""
    if args.privacy or not (args.kafka_bootstrap or (args.input and args.input.suffix == ".frames")):
        print("run: the Flink runner reads a .frames file or Kafka (--kafka-bootstrap); privacy requests run on "
              "the reference runner", file=sys.stderr)
        return 2
    if args.idle_exit is not None:
        print("run: --idle-exit is the reference runner's; a Flink run on Kafka ends with --bounded, or Ctrl-C",
              file=sys.stderr)
        return 2
    if not args.kafka_bootstrap and (args.bounded or args.from_checkpoint):
        print("run: --bounded and --from-checkpoint are for Kafka runs (a file run is bounded and starts afresh)",
              file=sys.stderr)
        return 2
    if not redis_reachable(cfg):
        return 1
    from shiftstream.jobs.flink import savepoints, topology
    from shiftstream.jobs.flink.connectors import KafkaInput
    from shiftstream.jobs.kafka import topic_ends, wait_committed

    d = models_dir(args, cfg)
    mode = args.flink_mode or cfg.engine.execution_mode
    t0 = time.perf_counter()
    if not args.kafka_bootstrap:
        r = topology.run_file(cfg, str(args.input), key, str(args.out_dir), str(d) if d else None, mode,
                               cfg.engine.parallelism)
        elapsed = time.perf_counter() - t0
        print(f"shiftstream run (flink, {r['mode']} mode, mini-cluster): {r['messages']:,} messages in "
              f"{elapsed:.1f}s (start-up included)")
        print(f"  late {r['late']:,}  dead_letters {r['dead_letters']:,}")
        print(f"  decisions in {cfg.redis.url} under {cfg.redis.key_prefix}*; dead letters and late events in "
              f"{args.out_dir}/*.jsonl" + (f"; models {d}" if d else ""))
        return 0
    k = cfg.kafka
    topic = args.topic or k.events_topic
    restore = args.from_checkpoint
    try:
        if restore == "latest":
            restore = savepoints.latest_checkpoint(cfg.engine.checkpoint_dir)
            if restore is None:
                print(f"run: no resumable checkpoint or savepoint under {cfg.engine.checkpoint_dir} (or beside it)",
                      file=sys.stderr)
                return 1
        elif restore:
            why = savepoints.resumable(restore)
            if why:
                print(f"run: {why}", file=sys.stderr)
                return 1
    except ValueError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    outs = [k.decisions_topic, k.dead_letter_topic, k.late_topic]
    before = topic_ends(args.kafka_bootstrap, [topic] + outs)
    if before[topic] < 0:
        print(f"run: warning: topic {topic} does not exist yet. Until it has partitions the source takes no "
              f"checkpoints (and commits no offsets): create it first", file=sys.stderr)
    before = {t: max(n, 0) for t, n in before.items()}
    src = KafkaInput(args.kafka_bootstrap, topic, k.group_id, bounded=args.bounded)
    env = topology.job(cfg, key, src, str(d) if d else None, mode, cfg.engine.parallelism, restore)
    print(f"shiftstream run (flink, {mode} mode, mini-cluster): reading {topic} at {args.kafka_bootstrap}"
          + (f", restored from {restore}" if restore else "") + (", to the end offsets" if args.bounded else
          "; Ctrl-C stops with a savepoint"), file=sys.stderr, flush=True)
    savepoint = drained = None

    def _interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops with a savepoint too
    try:
        client = env.execute_async("shiftstream")
        if args.bounded and restore:
            # A restored Kafka source keeps the unbounded splits it was checkpointed with, so "bounded" is done
            # here: once this job has completed checkpoints (each commits the offsets it reached) and the committed
            # offsets reach the end seen at start, stop with a drain (the end of event time: sessions close, the
            # last decisions are written). The drained savepoint is final, not a point to resume from.
            savepoints.wait_checkpoints(cfg.engine.checkpoint_dir, str(client.get_job_id()), 2, client)
            wait_committed(args.kafka_bootstrap, k.group_id, topic, before[topic], client)
            drained = savepoints.stop_with_savepoint(client, drain=True)
        else:
            client.get_job_execution_result().result()
    except KeyboardInterrupt:
        print("run: stopping with a savepoint ...", file=sys.stderr, flush=True)
        savepoint = savepoints.stop_with_savepoint(client)
    except Exception as exc:  # a job that failed, a bad restore point: say so without a Java stack on top
        print(f"run: the Flink job failed: {str(exc).strip().splitlines()[0][:500]}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, old)
    elapsed = time.perf_counter() - t0
    after = {t: max(n, 0) for t, n in topic_ends(args.kafka_bootstrap, [topic] + outs).items()}
    grew = {t: after[t] - before[t] for t in outs}
    print(f"shiftstream run (flink, {mode} mode, mini-cluster): {topic} at offset {after[topic]:,}, {elapsed:.1f}s "
          f"(start-up included)")
    print(f"  published: decisions {grew[k.decisions_topic]:,}  dead_letters {grew[k.dead_letter_topic]:,}  "
          f"late {grew[k.late_topic]:,}")
    print(f"  decisions in {cfg.redis.url} under {cfg.redis.key_prefix}*; checkpoints in {cfg.engine.checkpoint_dir}"
          + (f"; savepoint {savepoint} (resume: --from-checkpoint {savepoint})" if savepoint else "")
          + (f"; final savepoint {drained} (drained: not for resuming)" if drained else "")
          + (f"; models {d}" if d else ""))
    return 0


def main(args) -> int:
    cfg = settings(args)
    if not args.input and not args.kafka_bootstrap:
        print("run: give --input FILE or --kafka-bootstrap HOST:PORT", file=sys.stderr)
        return 2
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    if args.runner == "beam":
        return run_beam(args, cfg, key)
    if args.runner == "flink":
        return run_flink(args, cfg, key)
    with ExitStack() as stack:
        try:
            sink = RedisSink.from_config(cfg)
        except OSError as exc:
            print(f"run: cannot reach Redis at {cfg.redis.url}: {exc}", file=sys.stderr)
            return 1
        stack.callback(sink.close)
        dead = JsonLines(args.out_dir / "dead-letters.jsonl")
        late = JsonLines(args.out_dir / "late-events.jsonl")
        stack.callback(dead.close)
        stack.callback(late.close)
        try:
            scorer = make_scorer(args, cfg)
        except Exception as exc:  # ModelError: say why and stop before consuming anything
            print(f"run: models: {exc}", file=sys.stderr)
            return 1
        job = ReferenceJob(cfg, sink, Pseudonymiser(key), Outputs(dead_letter=dead, late=late), scorer=scorer)
        t0 = time.perf_counter()
        if args.kafka_bootstrap:
            from shiftstream.jobs.kafka import run_kafka

            run_kafka(job, cfg, args.kafka_bootstrap, args.topic or cfg.kafka.events_topic,
                      args.privacy_topic or cfg.kafka.privacy_topic, args.idle_exit, not args.quiet)
        else:
            run_file(job, args.input, _read_privacy(args.privacy), not args.quiet)
            job.finish()
        elapsed = time.perf_counter() - t0
    s = job.summary()
    print(f"shiftstream run ({args.runner}): {s['events']:,} events in {elapsed:.1f}s "
          f"({s['events'] / max(elapsed, 1e-9):,.0f} events/s)")
    print("  " + "  ".join(f"{k} {v:,}" for k, v in s.items() if k != "events"))
    if scorer is not None:
        print(f"  models: live {scorer.live.label}" + (f", shadow {scorer.shadow.label}" if scorer.shadow else ""))
    print(f"  decisions in {cfg.redis.url} under {cfg.redis.key_prefix}*; dead letters {dead.path}; late events {late.path}")
    return 0
