"""Decisions into Redis: one hash per user, RESP packed by hand, one pipelined batch in flight.

Faults: a lost connection (Redis restarted, a network cut, a timeout) is retried with exponential backoff (50 ms
doubling to 2 s) for up to `redis.retry_for`, resending every batch in flight (writes are idempotent). Meanwhile
the caller blocks, so nothing is consumed or committed past what is written (backpressure, no buffer grows); past
`retry_for`, `RedisUnavailable` is raised. Credentials Redis refuses are not retried: `RedisAuthError`.

URLs: `redis://[user:password@]host:port/db` and `rediss://...` (TLS; `redis.ca_file` names a CA bundle, else the
system's). A password in the URL can be replaced by `redis.password_env` / `redis.password_file`."""
from __future__ import annotations

import logging
import socket
import ssl
import time
from collections import deque
from urllib.parse import unquote, urlparse

from shiftstream.transforms.config import redact_url

import hiredis
import orjson

_pack = hiredis.pack_command
_NONE = b""


def _secret(env: str | None, path: str | None) -> str | None:
    """A secret from an environment variable or a file (stripped), never from the config file itself. A source
    that is named but empty is an error: connecting without the password would be the wrong user."""
    import os

    if env:
        value = os.environ.get(env)
        if not value:
            raise RedisAuthError(f"redis.password_env names ${env}, which is not set")
        return value
    if path:
        from pathlib import Path

        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise RedisAuthError(f"redis.password_file {path}: {exc.strerror}") from None
    return None


class RedisWriteError(RuntimeError):
    """Redis refused a write (the reply names why)."""


class RedisAuthError(RedisWriteError):
    """Redis refused the credentials (WRONGPASS, NOAUTH, NOPERM): check the URL's user and password."""


class RedisUnavailable(ConnectionError):
    """Redis could not be reached for longer than `redis.retry_for`."""


class RedisBusy(ConnectionError):
    """A reply that means "not now" (LOADING after a restart, READONLY during a failover, BUSY, TRYAGAIN,
    MASTERDOWN): retried like a lost connection, the batch resent."""


_TRANSIENT = ("LOADING", "READONLY", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN")


_LOG = logging.getLogger("shiftstream.redis")
_MARK = ("for i, k in ipairs(KEYS) do if redis.call('EXISTS', k) == 1 then "
         "redis.call('HSET', k, 'settled_through', ARGV[2 * i - 1], 'provisional', ARGV[2 * i]) end end "
         "return #KEYS")


def decision_fields(d: dict) -> list:
    """The hash fields of a decision, in a fixed order (values as bytes or str)."""
    return [
        "segment", d["segment"],
        "ml_segment", _NONE if d["ml_segment"] is None else str(d["ml_segment"]),
        "shift", orjson.dumps(d["shift"]),
        "top_categories", orjson.dumps(d["top_categories"]),
        "features", orjson.dumps(d["features"]),
        "scores", orjson.dumps(d["scores"]),
        "next_interest", d.get("next_interest") or _NONE,
        "chosen_content", d["chosen_content"] or _NONE,
        "experiment_arm", d["experiment_arm"] or _NONE,
        "content", orjson.dumps(d.get("content") or {}),
        "policy_version", _NONE if d.get("policy_version") is None else str(d["policy_version"]),
        "model_version", d["model_version"] or _NONE,
        "actions", orjson.dumps(d["actions"]),
        "event_time", str(d["event_time"]),
        "settled_through", _NONE if d["settled_through"] is None else str(d["settled_through"]),
        "provisional", str(d["provisional"]),
        "updated_at", str(d["updated_at"]),
        "personalization", d.get("personalization") or "full",
    ]


def decision_from_hash(user_key: str, h: dict) -> dict:
    """A decision record back from a Redis hash (bytes keys and values)."""
    g = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v for k, v in h.items()}
    return {
        "user_key": user_key,
        "segment": g["segment"],
        "ml_segment": int(g["ml_segment"]) if g.get("ml_segment") else None,
        "shift": orjson.loads(g["shift"]),
        "top_categories": orjson.loads(g["top_categories"]),
        "features": orjson.loads(g["features"]),
        "scores": orjson.loads(g.get("scores") or "{}"),
        "next_interest": g.get("next_interest") or None,
        "chosen_content": g.get("chosen_content") or None,
        "experiment_arm": g.get("experiment_arm") or None,
        "content": orjson.loads(g.get("content") or "{}"),
        "policy_version": int(g["policy_version"]) if g.get("policy_version") else None,
        "model_version": g.get("model_version") or None,
        "actions": orjson.loads(g.get("actions") or "[]"),
        "event_time": int(g["event_time"]),
        "settled_through": int(g["settled_through"]) if g.get("settled_through") else None,
        "provisional": int(g.get("provisional") or 0),
        "updated_at": int(g["updated_at"]),
        "personalization": g.get("personalization") or "full",
    }


def parse_url(url: str) -> tuple[str, str | None, str | None, str, int, int]:
    """(scheme, user, password, host, port, db) of a redis:// or rediss:// URL. The password may hold any
    character ('/', '#', '@'): the authority ends at the last '@'. Errors name the URL with the password masked."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ValueError(f"only redis:// and rediss:// URLs are supported, got {redact_url(url)!r}")
    userinfo, at, hostpath = rest.rpartition("@") if "@" in rest else ("", "", rest)
    user, colon, password = userinfo.partition(":")
    hostport, _, db = hostpath.partition("/")
    u = urlparse(f"{scheme}://{hostport}")
    try:
        port = u.port or 6379
        dbn = int(db or 0)
    except ValueError:
        raise ValueError(f"cannot read host, port and db from {redact_url(url)!r}") from None
    return (scheme, unquote(user) if user else None, unquote(password) if colon and password else None,
            u.hostname or "127.0.0.1", port, dbn)


class RedisSink:
    """Writes decision batches; `flush` waits for every reply. Writes are idempotent, so a resend is safe."""

    def __init__(self, url: str, key_prefix: str = "ss:d:", ttl_ms: int = 7 * 86_400_000, in_flight: int = 1,
                 timeout_s: float = 10.0, shadow_prefix: str = "ss:shadow:", retry_for_s: float = 300.0,
                 password: str | None = None, ca_file: str | None = None):
        scheme, user, url_password, self.host, self.port, self.db = parse_url(url)
        self.username = user
        self.password = password if password is not None else url_password
        self.tls = None
        if scheme == "rediss":
            self.tls = ssl.create_default_context(cafile=ca_file)
        self.where = f"{self.host}:{self.port}"
        self.prefix = key_prefix
        self.shadow_prefix = shadow_prefix
        self.ttl = str(int(ttl_ms))
        self.in_flight = in_flight
        self.timeout_s = timeout_s
        self.retry_for_s = retry_for_s
        self._sent: deque[tuple[bytes, int]] = deque()
        self.written = 0
        self.deleted = 0
        self.marked = 0
        self.retries = 0
        self._outage: list | None = None  # [when the current outage began, the next backoff delay]
        self._connect()

    @classmethod
    def from_config(cls, cfg) -> "RedisSink":
        """The sink the config's `redis` section describes (every engine builds it this way)."""
        r = cfg.redis
        return cls(r.url, r.key_prefix, r.ttl, r.in_flight_batches, shadow_prefix=r.shadow_prefix,
                   retry_for_s=r.retry_for / 1000, password=_secret(r.password_env, r.password_file),
                   ca_file=r.ca_file)

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
        self.reader = hiredis.Reader()
        hello = b""
        n = 0
        if self.password:
            hello += _pack(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
            n += 1
        if self.db:
            hello += _pack(("SELECT", self.db))
            n += 1
        if n:
            self.sock.sendall(hello)
            try:
                self._read(n)
            except RedisWriteError as exc:
                msg = str(exc)
                if any(w in msg for w in ("WRONGPASS", "NOAUTH", "NOPERM", "invalid password", "invalid username")):
                    raise RedisAuthError(f"Redis at {self.where} refused the credentials "
                                         f"({msg.split('first: ', 1)[-1]})") from None
                raise

    def key(self, user_key: str) -> str:
        return self.prefix + user_key

    def write(self, decisions: list[dict]) -> None:
        """Send HSET + PEXPIRE for each decision as one pipelined batch."""
        if not decisions:
            return
        prefix, ttl = self.prefix, self.ttl
        parts = []
        for d in decisions:
            k = prefix + d["user_key"]
            parts.append(_pack(("HSET", k, *decision_fields(d))))
            parts.append(_pack(("PEXPIRE", k, ttl)))
        self._send(b"".join(parts), 2 * len(decisions))
        self.written += len(decisions)

    def mark(self, marks) -> None:
        """Settled markers: (user key, settled_through, provisional) per decision already written; one script
        for the batch, which updates a hash only where it exists (never a half decision for a key gone)."""
        if not marks:
            return
        keys, args = [], []
        for key, through, provisional in marks:
            keys.append(self.prefix + key)
            args += [_NONE if through is None else str(through), str(provisional)]
        self._send(_pack(("EVAL", _MARK, len(keys), *keys, *args)), 1)
        self.marked += len(keys)

    def write_shadow(self, records: list[tuple[str, str, dict]]) -> None:
        """Shadow-model scores, kept apart from decisions: (user key, model-set label, scores) per record."""
        if not records:
            return
        parts = []
        for key, version, scores in records:
            k = self.shadow_prefix + key
            parts.append(_pack(("HSET", k, "model_version", version, "scores", orjson.dumps(scores))))
            parts.append(_pack(("PEXPIRE", k, self.ttl)))
        self._send(b"".join(parts), 2 * len(records))

    def put(self, key: str, value: bytes, px: int) -> None:
        """SET one key with a time to live in ms (the job's metrics snapshot: jobs/metrics.py)."""
        self._send(_pack(("SET", key, value, "PX", str(int(px)))), 1)

    def delete(self, user_keys) -> None:
        """Remove users' decisions (erasure, consent revoked)."""
        keys = [p + k for k in user_keys for p in (self.prefix, self.shadow_prefix)]
        if keys:
            self._send(_pack(("DEL", *keys)), 1)
            self.deleted += len(keys) // 2

    def _send(self, payload: bytes, replies: int) -> None:
        while True:
            try:
                self.sock.sendall(payload)
                break
            except OSError:
                self._reconnect_and_resend()  # resends what is in flight; this payload goes next
        self._sent.append((payload, replies))
        while len(self._sent) > self.in_flight:
            self._ack()

    def _ack(self) -> None:
        """Read the oldest batch's replies; a lost connection is re-opened and the batches in flight resent
        (writes are idempotent). A batch Redis refused is dropped from the queue before the error is raised."""
        while True:
            _, replies = self._sent[0]
            try:
                self._read(replies)
            except RedisWriteError:
                self._sent.popleft()
                raise
            except (OSError, ConnectionError):
                self._reconnect_and_resend()
                continue
            self._sent.popleft()
            self._outage = None  # a reply came back: the outage, if any, is over
            return

    def _reconnect_and_resend(self) -> None:
        """Re-open the connection and resend every batch in flight, retrying with backoff for `retry_for_s`,
        counted from the first failure of the outage (a connection that opens but whose reads keep failing, e.g.
        a proxy in front of a dead Redis, or a Redis still loading, is the same outage)."""
        now = time.monotonic()
        if self._outage is None:
            self._outage = [now, 0.05]  # [started, next delay]
        else:  # reconnected before, and it failed again: back off before the next try too
            time.sleep(self._outage[1])
            self._outage[1] = min(self._outage[1] * 2, 2.0)
        started = self._outage[0]
        deadline = started + self.retry_for_s
        last_log = 0.0
        while True:
            try:
                self.sock.close()
            except OSError:
                pass
            try:
                self._connect()
                for payload, _ in self._sent:
                    self.sock.sendall(payload)
                if time.monotonic() - started > 1:
                    _LOG.warning("redis at %s is back after %.1fs", self.where, time.monotonic() - started)
                return  # the outage ends when a reply is read (`_ack`)
            except RedisAuthError:
                raise
            except (OSError, ConnectionError, RedisWriteError) as exc:
                now = time.monotonic()
                delay = self._outage[1]
                if now + delay > deadline:
                    raise RedisUnavailable(f"redis at {self.where} unreachable for {now - started:.0f}s "
                                           f"(redis.retry_for): {exc}") from None
                if now - last_log >= 5:
                    _LOG.warning("redis at %s unreachable (%s); retrying for up to %.0fs", self.where, exc,
                                 self.retry_for_s)
                    last_log = now
                self.retries += 1
                time.sleep(delay)
                self._outage[1] = min(delay * 2, 2.0)

    def _read(self, n: int) -> None:
        errors = []
        got = 0
        reader, sock = self.reader, self.sock
        while got < n:
            r = reader.gets()
            if r is False:
                data = sock.recv(1 << 17)
                if not data:
                    raise ConnectionError("redis closed the connection")
                reader.feed(data)
                continue
            if isinstance(r, hiredis.ReplyError):
                errors.append(str(r))
            got += 1
        if errors:
            if any(e.startswith(_TRANSIENT) for e in errors):
                raise RedisBusy(f"redis answered {errors[0].split(' ', 1)[0]}")
            raise RedisWriteError(f"{len(errors)} of {n} commands failed, first: {errors[0]}")

    def flush(self) -> None:
        """Wait for every reply still outstanding."""
        while self._sent:
            self._ack()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.sock.close()
