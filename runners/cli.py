"""The `shiftstream` command line: one sub-command per verb, one error path for all of them.

A user's mistake (`UserError`, a bad config, a server that is not there) ends as one line on stderr naming what is
wrong and what to do, with a non-zero exit code; `--debug` shows the traceback instead. Ctrl-C is a quiet stop."""
from __future__ import annotations

import argparse
import os
import sys

from .errors import UserError, first_line


def _config_check(args) -> int:
    from shiftstream.transforms.config import ConfigError, load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(f"{args.file}: invalid", file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"{args.file or 'embedded default'}: ok ({len(cfg.segments.rules)} segment rules, "
          f"session gap {cfg.sessions.gap / 60000:g} min, lateness {cfg.event_time.allowed_lateness / 1000:g} s)")
    return 0


def _version() -> str:
    import shiftstream

    return f"shiftstream {shiftstream.__version__}"


def build_parser() -> argparse.ArgumentParser:
    from . import deploy, experiments, lookup, run, serve, simulate, train
    from .logs import LEVELS

    parser = argparse.ArgumentParser(prog="shiftstream", description="Real-time personalization as stream jobs.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("SHIFTSTREAM_LOG_FORMAT",
                        "text"), help="stderr logs as text or JSON lines (env SHIFTSTREAM_LOG_FORMAT)")
    parser.add_argument("--log-level", choices=LEVELS, default=os.environ.get("SHIFTSTREAM_LOG_LEVEL", "info"),
                        help="env SHIFTSTREAM_LOG_LEVEL")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated clickstream events with ground truth")
    simulate.add_arguments(p)
    p.set_defaults(func=simulate.main)

    p = sub.add_parser("run", help="run the job over a file or a Kafka topic into Redis")
    run.add_arguments(p)
    p.set_defaults(func=run.main)

    p = sub.add_parser("lookup", help="print a user's decision from Redis as JSON")
    lookup.add_arguments(p)
    p.set_defaults(func=lookup.main)

    p = sub.add_parser("train", help="train models on an event log and export them to ONNX with manifests")
    train.add_train_arguments(p)
    p.set_defaults(func=train.train_main)

    p = sub.add_parser("models", help="model tools")
    msub = p.add_subparsers(dest="models_command", required=True)
    c = msub.add_parser("compare", help="agreement and score deltas of the live and shadow model sets")
    train.add_compare_arguments(c)
    c.set_defaults(func=train.compare_main)

    p = sub.add_parser("experiments", help="A/B/N experiment tools")
    esub = p.add_subparsers(dest="experiments_command", required=True)
    c = esub.add_parser("report", help="lift, always-valid p-values and sample-ratio checks from a run's outcomes")
    experiments.add_arguments(c)
    c.set_defaults(func=experiments.main)
    c = esub.add_parser("replay", help="the replay method: each slot's policy judged on logged uniformly random "
                        "impressions (a run's outcomes)")
    experiments.add_replay_arguments(c)
    c.set_defaults(func=experiments.replay_main)

    p = sub.add_parser("serve", help="the decision API over HTTP (loopback by default)")
    serve.add_arguments(p)
    p.set_defaults(func=serve.main)

    p = sub.add_parser("deploy", help="a standalone Flink cluster on loopback, and the job on it")
    deploy.add_arguments(p)
    p.set_defaults(func=deploy.main)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser("check", help="validate a configuration file")
    c.add_argument("file", nargs="?", help="YAML file (default: the embedded config/default.yaml)")
    c.set_defaults(func=_config_check)

    p = sub.add_parser("demo", help="simulate events, run the job into a local Redis, print a summary")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", default=".demo")
    p.add_argument("--redis-url", help="use this Redis instead of starting a local redis-server")
    p.add_argument("--no-serve", action="store_true",
                   help="end after the summary instead of serving the decisions over HTTP until Ctrl-C")
    p.add_argument("--runner", choices=["reference", "flink"], default="reference",
                   help="reference (default) or flink: the PyFlink job on a local mini-cluster, thread mode, with the "
                        "models")
    p.set_defaults(func=lambda a: __import__("shiftstream.runners.demo", fromlist=["main"]).main(a))
    return parser


def main(argv: list[str] | None = None) -> int:
    from shiftstream.jobs.kafka import KafkaUnreachable, OffsetOutOfRange
    from shiftstream.jobs.kafka_security import KafkaSecurityError
    from shiftstream.jobs.redis_sink import RedisAuthError, RedisUnavailable
    from shiftstream.models.manifest import ModelError
    from shiftstream.schemas.errors import DecodeError
    from shiftstream.transforms.config import ConfigError
    from shiftstream.transforms.pseudonyms import PseudonymKeyError

    from . import logs

    args = build_parser().parse_args(argv)
    logs.configure(args.log_format, "debug" if args.debug else args.log_level)
    name = f"shiftstream {args.command}"

    def fail(message: str, code: int) -> int:
        if args.log_format == "json":
            logs.get("cli").error("%s: %s", name, message)
        else:
            print(f"{name}: {message}", file=sys.stderr)
        return code

    try:
        rc = args.func(args) or 0
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) is a BrokenPipeError here, not at exit
        return rc
    except UserError as exc:
        if args.debug:
            raise
        return fail(str(exc), exc.code)
    except (ConfigError, PseudonymKeyError, KafkaUnreachable, ModelError, DecodeError, RedisUnavailable,
            KafkaSecurityError, OffsetOutOfRange, RedisAuthError) as exc:
        if args.debug:
            raise
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:  # `shiftstream ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit, quietly
        return 141
    except Exception as exc:  # a defect, not a user error: still one line, the traceback with --debug
        if args.debug:
            raise
        return fail(f"unexpected {type(exc).__name__}: {first_line(exc)} (run with --debug for the traceback)", 1)


if __name__ == "__main__":
    sys.exit(main())
