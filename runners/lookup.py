"""`shiftstream lookup USER_ID`: a user's decision from Redis, as JSON (the id is pseudonymised first)."""
from __future__ import annotations

import json
import sys
import time

import redis

from shiftstream.jobs.redis_sink import decision_from_hash
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

from .run import settings


def add_arguments(p) -> None:
    p.add_argument("user_id", help="the raw user id (it is pseudonymised with the configured key)")
    p.add_argument("--config")
    p.add_argument("--redis-url")


def lookup(redis_url: str, prefix: str, user_key: str) -> dict | None:
    """The decision stored for a pseudonymised user key, or None."""
    client = redis.Redis.from_url(redis_url)
    try:
        h = client.hgetall(prefix + user_key)
    finally:
        client.close()
    return decision_from_hash(user_key, h) if h else None


def main(args) -> int:
    cfg = settings(args)
    key = Pseudonymiser(key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key))(
        args.user_id)
    t0 = time.perf_counter()
    d = lookup(cfg.redis.url, cfg.redis.key_prefix, key)
    ms = (time.perf_counter() - t0) * 1000
    if d is None:
        print(f"no decision for {args.user_id!r} (key {cfg.redis.key_prefix}{key})", file=sys.stderr)
        return 1
    print(json.dumps(d, indent=2))
    print(f"(looked up in {ms:.2f} ms)", file=sys.stderr)
    return 0
