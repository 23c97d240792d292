"""`shiftstream lookup USER_ID`: a user's decision from Redis, as JSON (the id is pseudonymised first)."""
from __future__ import annotations

import json
import sys
import time

import redis

from shiftstream.jobs.redis_sink import decision_from_hash, redact_url
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

from .errors import UserError
from .run import settings


def add_arguments(p) -> None:
    p.add_argument("user_id", help="the raw user id (it is pseudonymised with the configured key)")
    p.add_argument("--config")
    p.add_argument("--redis-url")


def _client(redis_url: str):
    if not redis_url.startswith("redis://"):
        raise UserError(f"--redis-url {redact_url(redis_url)}: give a redis://host:port/db URL")
    return redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)


def lookup(redis_url: str, prefix: str, user_key: str) -> dict | None:
    """The decision stored for a pseudonymised user key, or None."""
    client = _client(redis_url)
    try:
        h = client.hgetall(prefix + user_key)
    except redis.RedisError as exc:
        raise UserError(f"cannot read Redis at {redact_url(redis_url)}: {exc} (is redis-server running?)") from None
    finally:
        client.close()
    return decision_from_hash(user_key, h) if h else None


def _others(redis_url: str, prefix: str) -> bool:
    """Whether Redis holds any decision under the prefix."""
    client = _client(redis_url)
    try:
        return next(client.scan_iter(match=prefix + "*", count=1000), None) is not None
    finally:
        client.close()


def main(args) -> int:
    cfg = settings(args)
    key = Pseudonymiser(key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key))(
        args.user_id)
    t0 = time.perf_counter()
    d = lookup(cfg.redis.url, cfg.redis.key_prefix, key)
    ms = (time.perf_counter() - t0) * 1000
    if d is None:
        hint = ""
        if _others(cfg.redis.url, cfg.redis.key_prefix):
            hint = (f"; Redis holds other decisions under {cfg.redis.key_prefix}*: if they were written with another "
                    f"pseudonym key, set the same key (${cfg.privacy.key_env} or privacy.key_file)")
        raise UserError(f"no decision for {args.user_id!r} (key {cfg.redis.key_prefix}{key}){hint}")
    print(json.dumps(d, indent=2))
    print(f"(looked up in {ms:.2f} ms)", file=sys.stderr)
    return 0
