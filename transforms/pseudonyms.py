"""Pseudonymised user ids: keyed HMAC-SHA256, so raw ids never reach state, Redis, logs or dead letters."""
from __future__ import annotations

import hashlib
import hmac
import os
import sys
from pathlib import Path

DEV_KEY = b"shiftstream-development-key-do-not-use-in-production"


class Pseudonymiser:
    """Maps raw user ids to stable pseudonyms (32 hex chars); `forget` drops a raw id from the cache."""

    def __init__(self, key: bytes, cache_size: int = 100_000):
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def __call__(self, user_id: str) -> str:
        p = self._cache.get(user_id)
        if p is None:
            p = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:32]
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[user_id] = p
        return p

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    def cached_raw_ids(self) -> set[str]:
        return set(self._cache)


def key_from_settings(key_env: str, key_file: str | None, require_key: bool) -> bytes:
    """The HMAC key from the environment variable or the file; the development key only if allowed."""
    if key_file:
        return Path(key_file).read_bytes().strip()
    value = os.environ.get(key_env)
    if value:
        return value.encode()
    if require_key:
        raise RuntimeError(f"no pseudonym key: set {key_env} or privacy.key_file (privacy.require_key is true)")
    if not _warned:
        print(f"shiftstream: warning: {key_env} is not set, using the development pseudonym key", file=sys.stderr)
        _warned.append(True)
    return DEV_KEY


_warned: list = []
