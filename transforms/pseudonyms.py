"""Pseudonymised user ids: keyed HMAC-SHA256, so raw ids never reach state, Redis, logs or dead letters."""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

DEV_KEY = b"shiftstream-development-key-do-not-use-in-production"


class PseudonymKeyError(ValueError):
    """No usable pseudonym key: too short, or none where `privacy.require_key` asks for one."""


MIN_KEY_BYTES = 16


class Pseudonymiser:
    """Maps raw user ids to stable pseudonyms (32 hex chars); `forget` drops a raw id from the cache."""

    def __init__(self, key: bytes, cache_size: int = 100_000):
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(f"the pseudonym key is {len(key)} bytes; it must be at least {MIN_KEY_BYTES} "
                                    "(e.g. `openssl rand -hex 32`)")
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
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise PseudonymKeyError(f"privacy.key_file {key_file}: {exc.strerror}") from None
        _check(key, f"privacy.key_file {key_file}")
        return key
    value = os.environ.get(key_env)
    if value:
        _check(value.encode(), f"${key_env}")
        return value.encode()
    if require_key:
        raise PseudonymKeyError(f"no pseudonym key: set {key_env} or privacy.key_file (privacy.require_key is true)")
    if not _warned:
        logging.getLogger("shiftstream.privacy").warning(
            "%s is not set, using the development pseudonym key", key_env)
        _warned.append(True)
    return DEV_KEY


def _check(key: bytes, where: str) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonym key in {where} is {len(key)} bytes; it must be at least "
                                f"{MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)")


_warned: list = []
