"""`shiftstream serve`: decisions over HTTP, for a site's or an app's backend.

    GET /v1/decisions/{user_id}   the user's decision (the id pseudonymised here, one Redis round trip), with its
                                  freshness; a fallback decision (each slot's configured fallback) when there is
                                  none, or when Redis is slow (`serve.redis_timeout`) or down, flagged as such:
                                  never a 500 for a missing user
    GET /healthz                  the process answers
    GET /readyz                   Redis answers within the timeout (503 otherwise)

Starlette on uvicorn: an ASGI application with nothing between the route and the Redis read (FastAPI adds
request models on top of the same Starlette core; this API's one input is a path segment), redis-py's asyncio
client (no thread per request), orjson for the bodies. Loopback by default.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import orjson

from shiftstream.jobs.redis_sink import _secret, decision_from_hash, parse_url, redact_url
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

from .errors import UserError, usage
from .run import settings

MAX_ID = 256  # bytes of a raw user id


def add_arguments(p) -> None:
    p.add_argument("--config")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--host", help="address to listen on (default: serve.host, loopback)")
    p.add_argument("--port", type=int, help="port (default: serve.port)")


def _json(body, status: int = 200):
    from starlette.responses import Response

    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def fallback_decision(cfg, user_key: str, why: str) -> dict:
    """What a caller shows when there is no decision to read: each slot's fallback, flagged with the reason."""
    return {"user_key": user_key, "fallback": why, "segment": cfg.segments.default, "top_categories": [],
            "chosen_content": cfg.content.slots[0].variants[cfg.content.slots[0].fallback_index].id
            if cfg.content.slots else None,
            "content": {s.name: {"variant": s.variants[s.fallback_index].id, "reason": "fallback"}
                        for s in cfg.content.slots},
            "actions": [], "freshness": None}


def app(cfg, key: bytes, clock=time.time):
    """The ASGI application (a Starlette app) for a config and pseudonym key."""
    import redis.asyncio as aioredis
    from starlette.applications import Starlette
    from starlette.routing import Route

    r = cfg.redis
    scheme, user, password, host, port, db = parse_url(r.url)
    secret = _secret(r.password_env, r.password_file)
    r_timeout = cfg.serve.redis_timeout / 1000
    kwargs = {"host": host, "port": port, "db": db, "username": user, "password": secret or password,
              "socket_connect_timeout": r_timeout}
    if scheme == "rediss":
        kwargs.update(ssl=True, ssl_ca_certs=r.ca_file)
    client = aioredis.Redis(**kwargs)
    pseudonymise = Pseudonymiser(key)
    prefix = r.key_prefix

    async def decision(request):
        raw = request.path_params["user_id"]
        if not raw or len(raw.encode()) > MAX_ID:
            return _json({"error": f"user_id: expected 1 to {MAX_ID} bytes"}, 400)
        k = pseudonymise(raw)
        try:
            h = await asyncio.wait_for(client.hgetall(prefix + k), r_timeout)
        except asyncio.TimeoutError:
            return _json(fallback_decision(cfg, k, "redis_timeout"))
        except (OSError, aioredis.RedisError):
            return _json(fallback_decision(cfg, k, "redis_unavailable"))
        if not h:
            return _json(fallback_decision(cfg, k, "no_decision"))
        d = decision_from_hash(k, h)
        d["fallback"] = None
        d["freshness"] = {"age_ms": max(0, int(clock() * 1000) - d["updated_at"]),
                          "settled": d["provisional"] == 0, "settled_through": d["settled_through"],
                          "provisional_events": d["provisional"]}
        return _json(d)

    async def healthz(request):
        return _json({"status": "ok"})

    async def readyz(request):
        try:
            await asyncio.wait_for(client.ping(), r_timeout)
        except (asyncio.TimeoutError, OSError, aioredis.RedisError) as exc:
            return _json({"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"[:200]}, 503)
        return _json({"status": "ok", "redis": "ok"})

    async def not_found(request, exc):
        return _json({"error": f"no such resource: {request.url.path}"}, exc.status_code)

    routes = [Route("/v1/decisions/{user_id:path}", decision), Route("/healthz", healthz), Route("/readyz", readyz)]
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, lifespan=lifespan)


def main(args) -> int:
    cfg = settings(args)
    host = args.host or cfg.serve.host
    port = args.port if args.port is not None else cfg.serve.port
    if not 0 < port < 65536:
        raise usage(f"--port {port}: expected 1 to 65535")
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    try:
        import uvicorn
    except ImportError:
        raise UserError("the API needs uvicorn and starlette: run `make setup` (they are in requirements.lock)") \
            from None
    application = app(cfg, key)
    try:  # bound here, so that a taken port is one line of ours, not the server's log
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    reuse_port=False)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(f"cannot listen on {host}:{port}: {why} (is the port taken? --port)") from None
    config = uvicorn.Config(application, log_level="warning", access_log=False, lifespan="on", loop="asyncio",
                            http="h11")
    print(f"shiftstream serve: http://{host}:{port}/v1/decisions/USER_ID (decisions in "
          f"{redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*)", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
