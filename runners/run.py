"""`shiftstream run`: run the job over a file or a Kafka topic, decisions into Redis, with a closing summary."""
from __future__ import annotations

import json
import os
import signal
import ssl
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisAuthError, RedisSink, RedisWriteError, redact_url
from shiftstream.jobs.reference import Outputs, ReferenceJob
from shiftstream.models.manifest import ModelError
from shiftstream.schemas import read_container, read_frames
from shiftstream.schemas.errors import DecodeError
from shiftstream.transforms.config import Config, load_config
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

from . import logs
from .errors import UserError, first_line, usage

log = logs.get("run")


RUNNERS = ("reference", "beam", "flink")
# options that apply to some runners or sources only: (runners, source) they apply to, None meaning any
APPLIES = {
    "privacy": (("reference", "flink"), "file", "privacy requests from a file go with an events file on the "
                "reference and Flink runners (a Kafka run reads them from --privacy-topic; Beam does not take them)"),
    "flink_mode": (("flink",), None, "it sets the PyFlink execution mode"),
    "beam_runner": (("beam",), None, "it picks Beam's local runner"),
    "beam_arg": (("beam",), None, "it passes options to Beam"),
    "bounded": (("flink",), "kafka", "a Flink Kafka run only (a file run is bounded anyway)"),
    "from_checkpoint": (("flink",), "kafka", "a Flink Kafka run only (a file run starts afresh)"),
    "idle_exit": (("reference",), "kafka", "a reference-runner Kafka run only (a Flink run ends with --bounded)"),
    "topic": (RUNNERS, "kafka", "it names the Kafka topic to read"),
    "privacy_topic": (("reference", "flink"), "kafka", "it names the privacy topic a Kafka run reads"),
    "group_id": (("reference", "flink"), "kafka", "it names the Kafka consumer group"),
    "metrics_port": (("reference",), None, "it serves the reference runner's metrics (the Flink job's are in "
                     "Flink's metric system)"),
}


def add_arguments(p) -> None:
    p.add_argument("--runner", choices=RUNNERS, default="reference",
                   help="reference: the pure-Python engine; beam: the Apache Beam pipeline (files only); "
                        "flink: the PyFlink job on a local mini-cluster (a .frames file, or Kafka)")
    p.add_argument("--flink-mode", choices=["thread", "process"], default=None,
                   help="PyFlink python.execution-mode (default: engine.execution_mode)")
    p.add_argument("--beam-runner", default=None, choices=["FnApiRunner", "BundleBasedDirectRunner"],
                   help="Beam's local runner, always named (Beam is never left to pick Prism); default FnApiRunner")
    p.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="a Beam pipeline option passed through, e.g. --beam-arg=--direct_num_workers=1")
    p.add_argument("--input", type=Path, help=".avro (container) or .frames (wire-format messages) events file")
    p.add_argument("--privacy", type=Path, help="privacy requests file (.avro or .frames)")
    p.add_argument("--config", help="YAML config (default: the embedded config/default.yaml)")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--kafka-bootstrap", help="read events (and privacy requests) from Kafka instead of a file")
    p.add_argument("--topic", help="events topic (default: kafka.events_topic)")
    p.add_argument("--privacy-topic", help="privacy topic (default: kafka.privacy_topic)")
    p.add_argument("--group-id", help="Kafka consumer group (default: kafka.group_id, with '-flink' appended for "
                                      "the Flink runner, so the two runners never share offsets)")
    p.add_argument("--bounded", action="store_true",
                   help="flink + Kafka: read up to the end offsets seen at start, then finish")
    p.add_argument("--from-checkpoint", metavar="PATH|latest",
                   help="flink + Kafka: resume from a checkpoint or savepoint (latest: the newest checkpoint "
                        "under engine.checkpoint_dir or savepoint beside it; drained savepoints are refused)")
    p.add_argument("--idle-exit", type=float, default=None,
                   help="reference + Kafka: stop after this many seconds without a message (default: run until "
                        "stopped)")
    p.add_argument("--out-dir", type=Path, default=Path(".shiftstream-out"),
                   help="where dead letters and late events go for file runs (JSON lines)")
    p.add_argument("--models", help="models directory (LIVE/SHADOW pointers), or 'none'; default: models.dir, "
                                     "else .demo/models if present, else no model scores")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="reference: serve Prometheus metrics on metrics.host:PORT/metrics (default: metrics.port; "
                        "0: none)")
    p.add_argument("--quiet", action="store_true")


def observe(job, sink, cfg, port: int | None) -> None:
    """The job's metrics: on a port (--metrics-port / metrics.port) and as a snapshot in Redis for the dashboard
    (metrics.publish_interval)."""
    port = cfg.metrics.port if port is None else port
    if not (port or cfg.metrics.publish_interval):
        return
    from shiftstream.jobs.metrics import JobMetrics, Publisher, serve_metrics

    metrics = JobMetrics(job)
    if cfg.metrics.publish_interval and hasattr(sink, "put"):
        job.observers.append(Publisher(metrics, sink, cfg.metrics.stats_key, cfg.metrics.publish_interval / 1000).tick)
    if port:
        host = cfg.metrics.host
        if not 0 < port < 65536:
            raise usage(f"--metrics-port {port}: expected 1 to 65535")
        try:
            serve_metrics(metrics, host, port)
        except OSError as exc:
            raise UserError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} (is the port taken? "
                            "--metrics-port)") from None
        log.info("metrics on http://%s:%d/metrics", host, port)


def check_arguments(args) -> None:
    """Refuse what cannot work before anything starts: one source, files that exist, options that apply."""
    if bool(args.input) == bool(args.kafka_bootstrap):
        raise usage("give one source: --input FILE or --kafka-bootstrap HOST:PORT" if not args.input else
                    "give one source: --input reads a file, --kafka-bootstrap reads Kafka; not both")
    source = "kafka" if args.kafka_bootstrap else "file"
    if args.runner == "beam" and source == "kafka":
        raise usage("the Beam runner reads event files only (--input): Beam's Kafka IO needs an expansion service "
                    "it downloads at run time. Use --runner reference or flink for Kafka")
    for name, (runners, src, why) in APPLIES.items():
        value = getattr(args, name, None)
        if value is None or value is False or value == []:  # not given (0 is a value: --idle-exit 0)
            continue
        flag = "--" + name.replace("_", "-")
        if args.runner not in runners or (src is not None and src != source):
            raise usage(f"{flag} does not apply to a {args.runner} {source} run: {why}")
    if args.input:
        _check_file(args.input, "--input", (".frames",) if args.runner == "flink" else (".avro", ".frames"))
    if args.privacy:
        _check_file(args.privacy, "--privacy", (".avro", ".frames"))


def _check_file(path: Path, flag: str, suffixes: tuple[str, ...]) -> None:
    if not path.exists():
        raise usage(f"{flag} {path}: no such file")
    if path.is_dir():
        raise usage(f"{flag} {path}: is a directory; give a file")
    if path.suffix not in suffixes:
        raise usage(f"{flag} {path}: not a {' or '.join(suffixes)} file (the formats this runner reads; "
                    "`shiftstream simulate --out X.frames` writes one)")


def group_id(args, cfg: Config) -> str:
    """The consumer group: --group-id, else kafka.group_id (the Flink runner's with '-flink' appended)."""
    if args.group_id:
        return args.group_id
    if args.runner == "flink":
        from shiftstream.jobs.flink.connectors import flink_group

        return flink_group(cfg)
    return cfg.kafka.group_id


def models_dir(args, cfg: Config) -> Path | None:
    """Where the models come from: --models, then models.dir, then the demo's trained models if present."""
    if getattr(args, "models", None):
        return None if args.models == "none" else Path(args.models)
    if cfg.models.dir:
        return Path(cfg.models.dir)
    demo = Path(".demo/models")
    return demo if (demo / "LIVE").exists() else None


def make_scorer(args, cfg: Config):
    """The scorer for --models (or the config's), checked before any engine starts: a bad models directory is
    one line here, not a failure inside an engine's workers."""
    from shiftstream.models.scorer import scorer_for

    try:
        return scorer_for(cfg, models_dir(args, cfg))
    except ModelError as exc:
        raise UserError(f"models: {exc}") from None


def settings(args) -> Config:
    cfg = load_config(args.config)
    if args.redis_url:
        cfg = cfg.replace(**{"redis.url": args.redis_url})
    if getattr(args, "kafka_bootstrap", None):
        use_kafka_security(cfg)
    return cfg


def use_kafka_security(cfg: Config) -> None:
    """Every Kafka client of this process takes the config's security settings (one line if they cannot)."""
    from shiftstream.jobs import kafka_security

    try:
        kafka_security.use(cfg)
    except kafka_security.KafkaSecurityError as exc:
        raise UserError(str(exc)) from None


def outcome_writer(lines):
    """An Outcome (or a threshold Action) as a JSON line (the pseudonym, never a raw id), or None for no file."""
    if lines is None:
        return None
    return lambda o: lines(o._asdict())


class JsonLines:
    """A side output written as JSON lines. A Kafka run appends (`append=True`): at each checkpoint the file is
    synced and its length recorded, and a restored run first cuts it back to that length (jobs/snapshots.py)."""

    def __init__(self, path: Path, append: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fo = open(path, "a" if append else "w")
        self.n = 0

    def __call__(self, record: dict) -> None:
        self.fo.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.n += 1

    def sync(self) -> int:
        self.fo.flush()
        os.fsync(self.fo.fileno())
        return self.fo.tell()

    def rewind(self, length: int) -> None:
        self.fo.flush()
        self.fo.truncate(min(length, self.fo.tell()))
        self.fo.seek(0, os.SEEK_END)

    def close(self) -> None:
        self.fo.close()


def _read_privacy(path: Path | None, cfg: Config) -> list[dict]:
    if path is None:
        return []
    if path.suffix == ".frames":
        from shiftstream.jobs.ingest import privacy_decoder

        decode = privacy_decoder(cfg)
        try:
            return sorted((decode(m) for m in read_frames(path)), key=lambda r: r["ts"])
        except DecodeError as exc:
            raise UserError(f"--privacy {path}: {exc} (privacy requests are all-or-nothing: fix the file)") from None
    try:
        return sorted(read_container(path, "privacy_request"), key=lambda r: r["ts"])
    except DecodeError as exc:
        raise UserError(f"--privacy {path}: {exc}") from None


def run_file(job: ReferenceJob, path: Path, privacy: list[dict], progress: bool) -> None:
    """Feed a file through the job; privacy requests are applied as event time reaches them."""
    from tqdm import tqdm

    with tqdm(desc="events", unit="ev", disable=not progress, file=sys.stderr, mininterval=0.5,
              unit_scale=True) as bar:
        _feed(job, path, privacy, bar)


def _feed(job: ReferenceJob, path: Path, privacy: list[dict], bar) -> None:
    from shiftstream.transforms.ingest import PrivacySchedule

    schedule = PrivacySchedule(privacy)
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
        if schedule:
            if ts_of:
                ts = item["ts"]
                if ts > max_ts:
                    max_ts = ts
            else:
                max_ts = job.watermarks.high()
            for rec in schedule.due(max_ts):
                job.on_privacy(rec)
        feed(item, 0, n - 1)
        if n & 4095 == 0:
            bar.update(4096)
    for rec in schedule.rest():
        job.on_privacy(rec)
    bar.update(n & 4095)


def open_sink(cfg: Config) -> RedisSink:
    """The Redis sink, or a one-line error naming the URL when Redis cannot be reached (before any engine starts)."""
    try:
        return RedisSink.from_config(cfg)
    except RedisAuthError as exc:
        raise UserError(f"{exc}: check the user and password (redis.url, redis.password_env or "
                        "redis.password_file)") from None
    except ssl.SSLError as exc:
        raise UserError(f"TLS to Redis at {redact_url(cfg.redis.url)} failed: {first_line(exc)} (redis.ca_file names "
                        "the CA bundle that signed the server's certificate)") from None
    except (OSError, ValueError, RedisWriteError) as exc:
        raise UserError(f"cannot reach Redis at {redact_url(cfg.redis.url)}: {first_line(exc)} (is redis-server "
                        "running? --redis-url or redis.url name it)") from None


def run_beam(args, cfg: Config, key: bytes) -> int:
    """The Beam pipeline over files on a local runner; prints the same summary as the reference runner."""
    from shiftstream.jobs.beam_pipeline import run

    open_sink(cfg).close()
    d = models_dir(args, cfg)
    t0 = time.perf_counter()
    runner = args.beam_runner or "FnApiRunner"
    c = run(cfg, [str(args.input)], key, str(args.out_dir), str(d) if d else None, runner, args.beam_arg)
    elapsed = time.perf_counter() - t0
    print(f"shiftstream run (beam, {runner}): {c.get('events', 0):,} events in {elapsed:.1f}s "
          f"({c.get('events', 0) / max(elapsed, 1e-9):,.0f} events/s)")
    print("  " + "  ".join(f"{k} {c.get(k, 0):,}" for k in ("sessions", "shifts", "late", "duplicates",
                                                             "dead_letters", "decisions_written")))
    print(f"  decisions in {redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*; dead letters and late events "
          f"in {args.out_dir}/*.jsonl" + (f"; models {d}" if d else ""))
    return 0


class _Stop:
    """Ctrl-C and SIGTERM as a flag the Flink client polls, so no signal lands inside a py4j call (which would
    print py4j's own traceback before our clean stop)."""

    def __init__(self):
        self.asked = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _set(self, *_):
        self.asked = True

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def run_flink(args, cfg: Config, key: bytes) -> int:
    """The PyFlink job on a local mini-cluster: a .frames file (bounded), or Kafka (checkpointed; Ctrl-C stops it
    with a savepoint to resume from)."""
    from shiftstream.jobs.flink import savepoints, topology

    open_sink(cfg).close()
    d = models_dir(args, cfg)
    mode = args.flink_mode or cfg.engine.execution_mode
    t0 = time.perf_counter()
    if not args.kafka_bootstrap:
        try:
            r = topology.run_file(cfg, str(args.input), key, str(args.out_dir), str(d) if d else None, mode,
                                  cfg.engine.parallelism, _read_privacy(args.privacy, cfg))
        except Exception as exc:  # the job failed: its first line, without a Java stack on top
            raise UserError(f"the Flink job failed: {first_line(exc, 500)}") from None
        elapsed = time.perf_counter() - t0
        print(f"shiftstream run (flink, {r['mode']} mode, mini-cluster): {r['messages']:,} messages in "
              f"{elapsed:.1f}s (start-up included)")
        print("  " + "  ".join(f"{k} {r.get(k, 0):,}" for k in ("events", "sessions", "shifts", "late", "duplicates",
                                                                 "dead_letters", "blocked", "privacy_requests",
                                                                 "decisions_written")))
        print(f"  decisions in {redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*; dead letters and late "
              f"events in {args.out_dir}/*.jsonl" + (f"; models {d}" if d else ""))
        return 0
    from shiftstream.jobs.flink.connectors import KafkaInput
    from shiftstream.jobs.kafka import committed_total, ensure_topic, kafka_reachable, topic_ends, wait_committed

    k = cfg.kafka
    topic = args.topic or k.events_topic
    group = group_id(args, cfg)
    restore = args.from_checkpoint
    try:
        if restore == "latest":
            restore = savepoints.latest_checkpoint(cfg.engine.checkpoint_dir)
            if restore is None:
                raise UserError(f"no resumable checkpoint or savepoint under {cfg.engine.checkpoint_dir} (or beside "
                                "it): start without --from-checkpoint")
        elif restore:
            why = savepoints.resumable(restore)
            if why:
                raise UserError(why)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    kafka_reachable(args.kafka_bootstrap)
    outs = [k.decisions_topic, k.dead_letter_topic, k.late_topic]
    before = topic_ends(args.kafka_bootstrap, [topic] + outs)
    if before[topic] < 0:
        if args.bounded:
            raise UserError(f"topic {topic} does not exist at {args.kafka_bootstrap}: a bounded run would never "
                            "finish. Create it (or produce to it) first, or check --topic")
        log.warning("topic %s does not exist yet. Until it has partitions the source takes no checkpoints (and "
                    "commits no offsets): create it first", topic)
    elif args.bounded and not restore and before[topic] > 0 and \
            committed_total(args.kafka_bootstrap, group, topic) >= before[topic]:
        log.warning("group %s has already consumed %s to its end (%s messages): nothing new to read. "
                    "--group-id NAME reads it afresh", group, topic, f"{before[topic]:,}")
    before = {t: max(n, 0) for t, n in before.items()}
    privacy_topic = args.privacy_topic or k.privacy_topic
    ensure_topic(args.kafka_bootstrap, privacy_topic, "the job reads consent and erasure requests from it")
    src = KafkaInput(args.kafka_bootstrap, topic, group, bounded=args.bounded, privacy_topic=privacy_topic)
    from shiftstream.jobs.flink.front import FrontBuildError

    try:
        env = topology.job(cfg, key, src, str(d) if d else None, mode, cfg.engine.parallelism, restore)
    except FrontBuildError as exc:  # no JDK, or the Java front does not compile: what to do, in one line
        raise UserError(first_line(exc, 500)) from None
    log.info("run (flink, %s mode, mini-cluster): reading %s at %s as group %s%s%s", mode, topic,
             args.kafka_bootstrap, group, f", restored from {restore}" if restore else "",
             ", to the end offsets" if args.bounded else "; Ctrl-C stops with a savepoint")
    savepoint = drained = None
    with _Stop() as stop:
        try:
            client = env.execute_async("shiftstream")
            if args.bounded and restore:
                # A restored Kafka source keeps the unbounded splits it was checkpointed with, so "bounded" is done
                # here: once this job has completed checkpoints (each commits the offsets it reached) and the
                # committed offsets reach the end seen at start, stop with a drain (the end of event time: sessions
                # close, the last decisions are written). The drained savepoint is final, not a point to resume from.
                asked = lambda: stop.asked  # noqa: E731  (Ctrl-C while waiting: a plain stop with a savepoint)
                savepoints.wait_checkpoints(cfg.engine.checkpoint_dir, str(client.get_job_id()), 2, client,
                                            stop=asked)
                wait_committed(args.kafka_bootstrap, group, topic, before[topic], client, stop=asked)
                if stop.asked:
                    log.info("run: stopping with a savepoint ...")
                    savepoint = savepoints.stop_with_savepoint(client)
                else:
                    drained = savepoints.stop_with_savepoint(client, drain=True)
            else:
                result = client.get_job_execution_result()
                while not stop.asked and not result.done():
                    time.sleep(0.25)
                if result.done():
                    result.result()  # raises when the job failed
                if stop.asked:
                    log.info("run: stopping with a savepoint ...")
                    savepoint = savepoints.stop_with_savepoint(client)
        except Exception as exc:  # a job that failed, a bad restore point: say so without a Java stack on top
            raise UserError(f"the Flink job failed: {first_line(exc, 500)}") from None
    elapsed = time.perf_counter() - t0
    after = {t: max(n, 0) for t, n in topic_ends(args.kafka_bootstrap, [topic] + outs).items()}
    grew = {t: after[t] - before[t] for t in outs}
    print(f"shiftstream run (flink, {mode} mode, mini-cluster): {topic} at offset {after[topic]:,}, {elapsed:.1f}s "
          f"(start-up included)")
    print(f"  published: decisions {grew[k.decisions_topic]:,}  dead_letters {grew[k.dead_letter_topic]:,}  "
          f"late {grew[k.late_topic]:,}")
    print(f"  decisions in {redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*; checkpoints in "
          f"{cfg.engine.checkpoint_dir}"
          + (f"; savepoint {savepoint} (resume: --from-checkpoint {savepoint})" if savepoint else "")
          + (f"; final savepoint {drained} (drained: not for resuming)" if drained else "")
          + (f"; models {d}" if d else ""))
    return 0


def main(args) -> int:
    check_arguments(args)
    cfg = settings(args)
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    scorer = make_scorer(args, cfg)  # every runner: a bad models directory is refused before anything starts
    if args.runner == "beam":
        return run_beam(args, cfg, key)
    if args.runner == "flink":
        return run_flink(args, cfg, key)
    privacy = _read_privacy(args.privacy, cfg)
    if args.kafka_bootstrap:
        from shiftstream.jobs.kafka import kafka_reachable, topic_ends

        kafka_reachable(args.kafka_bootstrap)
        topic = args.topic or cfg.kafka.events_topic
        if topic_ends(args.kafka_bootstrap, [topic])[topic] < 0:
            log.warning("topic %s does not exist at %s yet: nothing to read until it does (check --topic)", topic,
                        args.kafka_bootstrap)
    with ExitStack() as stack:
        sink = open_sink(cfg)
        stack.callback(sink.close)
        kafka = bool(args.kafka_bootstrap)
        dead = JsonLines(args.out_dir / "dead-letters.jsonl", append=kafka)
        late = JsonLines(args.out_dir / "late-events.jsonl", append=kafka)
        stack.callback(dead.close)
        stack.callback(late.close)
        outcomes = actions = None
        if cfg.content.slots:  # exposures and their rewards: what `shiftstream experiments report` reads
            outcomes = JsonLines(args.out_dir / "outcomes.jsonl", append=kafka)
            stack.callback(outcomes.close)
        if cfg.content.thresholds:  # threshold rules' actions, fired and cleared, with the values behind them
            actions = JsonLines(args.out_dir / "content-actions.jsonl", append=kafka)
            stack.callback(actions.close)
        job = ReferenceJob(cfg, sink, Pseudonymiser(key), Outputs(dead_letter=dead, late=late,
                                                                  outcome=outcome_writer(outcomes),
                                                                  content_action=outcome_writer(actions)),
                         scorer=scorer)
        observe(job, sink, cfg, args.metrics_port)
        t0 = time.perf_counter()
        if args.kafka_bootstrap:
            from shiftstream.jobs.kafka import run_kafka
            from shiftstream.jobs.snapshots import CheckpointError

            try:  # the checkpoint is read inside run_kafka: a bad one is the user's to delete, in one line
                report = run_kafka(job, cfg, args.kafka_bootstrap, args.topic or cfg.kafka.events_topic,
                                   args.privacy_topic or cfg.kafka.privacy_topic, args.idle_exit, not args.quiet,
                                   group_id(args, cfg), {"dead_letters": dead, "late": late,
                                                         **({"outcomes": outcomes} if outcomes else {}),
                                                         **({"content_actions": actions} if actions else {})})
            except CheckpointError as exc:
                raise UserError(str(exc)) from None
            if report["restored"]:
                log.info("resumed from the checkpoint of group %s", group_id(args, cfg))
        else:
            try:
                run_file(job, args.input, privacy, not args.quiet)
            except DecodeError as exc:  # a container file that is broken as a file (a bad record is a dead letter)
                raise UserError(f"--input {args.input}: {exc}") from None
            job.finish()
        elapsed = time.perf_counter() - t0
    s = job.summary()
    print(f"shiftstream run ({args.runner}): {s['events']:,} events in {elapsed:.1f}s "
          f"({s['events'] / max(elapsed, 1e-9):,.0f} events/s)")
    print("  " + "  ".join(f"{k} {v:,}" for k, v in s.items() if k != "events"))
    if scorer is not None:
        print(f"  models: live {scorer.live.label}" + (f", shadow {scorer.shadow.label}" if scorer.shadow else ""))
    print(f"  decisions in {redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*; dead letters {dead.path}; "
          f"late events {late.path}")
    return 0
