"""Entry point for `flink run -py <shiftstream>/jobs/flink/main.py -- ...` on a Flink cluster (what `shiftstream
deploy submit` runs): the job's own arguments, the cluster's configuration for the rest."""
from __future__ import annotations

import sys
from pathlib import Path

JOB_ARGUMENTS = ("config", "kafka_bootstrap", "topic", "privacy_topic", "group_id", "redis_url", "models")


def add_job_arguments(p) -> None:
    """The job's own arguments, the same for `flink run -py jobs/flink/main.py` and `shiftstream deploy submit`."""
    p.add_argument("--config", help="YAML config (default: the embedded one)")
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap address (default: kafka.bootstrap)")
    p.add_argument("--topic", help="events topic (default: kafka.events_topic)")
    p.add_argument("--privacy-topic", help="consent, erasure and personalization requests (default: "
                                           "kafka.privacy_topic; created if missing)")
    p.add_argument("--group-id", help="consumer group (default: kafka.group_id with -flink appended)")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--models", help="models directory (LIVE/SHADOW pointers), or none")


def main(argv: list[str] | None = None) -> int:
    """Entry point for `flink run -py jobs/flink/main.py -- ...` on a Flink cluster (what `shiftstream deploy`
    submits): the cluster's configuration supplies mode, checkpoints and the restore point."""
    import argparse

    from shiftstream.jobs.flink.connectors import KafkaInput, flink_group
    from shiftstream.jobs.flink.topology import job
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import key_from_settings

    p = argparse.ArgumentParser(prog="shiftstream-flink-job")
    add_job_arguments(p)
    p.add_argument("--name", default="shiftstream")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.redis_url:
        cfg = cfg.replace(**{"redis.url": args.redis_url})
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    from pyflink.datastream import StreamExecutionEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    from shiftstream.jobs.kafka import ensure_topic

    bootstrap = args.kafka_bootstrap or cfg.kafka.bootstrap
    privacy_topic = args.privacy_topic or cfg.kafka.privacy_topic
    ensure_topic(bootstrap, privacy_topic, "the job reads consent and erasure requests from it")
    src = KafkaInput(bootstrap, args.topic or cfg.kafka.events_topic, args.group_id or flink_group(cfg),
                     privacy_topic=privacy_topic)
    job(cfg, key, src, None if args.models in (None, "none") else args.models, env=env)
    env.execute(args.name)
    return 0


if __name__ == "__main__":  # `flink run -py .../jobs/flink/main.py`: the importable module's main, not __main__'s
    _top = Path(__file__).resolve().parents[2]  # a checkout's root, or site-packages/shiftstream (a package)
    sys.path.insert(0, str(_top.parent if (_top / "__init__.py").exists() else _top))
    from shiftstream.jobs.flink.main import main as _main

    sys.exit(_main())
