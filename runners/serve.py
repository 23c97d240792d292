"""`shiftstream serve`: decisions over HTTP, for a site's or an app's backend.

    GET /v1/decisions/{user_id}   the user's decision (the id pseudonymised here, one Redis round trip), with its
                                  freshness; a fallback decision (each slot's configured fallback) when there is
                                  none, or when Redis is slow (`serve.redis_timeout`) or down, flagged as such:
                                  never a 500 for a missing user
    POST /v1/events               a site's tag sends a batch of interaction events as JSON ({"events": [...]} or a
                                  list): each is checked against the Avro contract and produced to the events
                                  topic in the wire format; 202 with the accepted count and an error per bad
                                  event (its index and what is wrong). Needs `Authorization: Bearer <key>`
                                  (`serve.api_key_env`) and `--kafka-bootstrap`
    POST /v1/privacy              consent grants and revokes, erasure requests (one object, a list, or
                                  {"requests": [...]}; `request_id` and `ts` filled in when left out), to the
                                  privacy topic the job reads; the same key and answers as /v1/events
    PUT /v1/users/{user_id}/personalization
                                  {"level": "off" | "basic" | "full"}: the user's personalization level, to the
                                  privacy topic; GET answers "off" users with the fallback (flagged
                                  personalization_off) and "basic" ones with the segment and content only
    GET /metrics                  Prometheus text: requests by route and status, latency histograms (buckets
                                  from 0.25 ms), fallbacks by reason, Redis errors, records posted, produce
                                  failures
    GET /dashboard                the live dashboard (one page, assets inline), polling GET /v1/dashboard: the
                                  job's snapshot (jobs/metrics.py, published to Redis) and the API's counters
    GET /healthz                  the process answers
    GET /readyz                   Redis answers within the timeout (503 otherwise)

Starlette on uvicorn: an ASGI application with nothing between the route and the Redis read (FastAPI adds
request models on top of the same Starlette core; this API's one input is a path segment), redis-py's asyncio
client (no thread per request), orjson for the bodies. Loopback by default.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import orjson

from shiftstream.jobs.redis_sink import _secret, decision_from_hash, parse_url, redact_url
from shiftstream.transforms.core import LEVELS
from shiftstream.transforms.decisions import basic, fallback_decision
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

from .errors import UserError, usage
from .run import settings

MAX_ID = 256  # bytes of a raw user id
_LOG = logging.getLogger("shiftstream.serve")


def add_arguments(p) -> None:
    p.add_argument("--config")
    p.add_argument("--redis-url", help="overrides redis.url")
    p.add_argument("--host", help="address to listen on (default: serve.host, loopback)")
    p.add_argument("--port", type=int, help="port (default: serve.port)")
    p.add_argument("--kafka-bootstrap", help="the broker POST /v1/events produces to (its topic: kafka.events_topic)")


def _json(body, status: int = 200):
    from starlette.responses import Response

    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The API's metrics, in Prometheus' conventions (prometheus-client, a registry of the app's own)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter("shiftstream_api_requests", "HTTP requests answered", ["route", "status"],
                                registry=r)
        self.latency = Histogram("shiftstream_api_request_seconds", "Time to answer a request (in the process)",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.fallbacks = Counter("shiftstream_api_fallbacks", "Decisions answered with the fallback", ["reason"],
                                 registry=r)
        self.records = Counter("shiftstream_api_records", "Records posted to a write endpoint",
                               ["endpoint", "result"], registry=r)
        self.produce_failures = Counter("shiftstream_api_produce_failures",
                                        "Records the broker refused after the producer's retries", registry=r)
        self.redis_errors = Counter("shiftstream_api_redis_errors", "Redis reads that failed or timed out",
                                    ["kind"], registry=r)

        for reason in ("no_decision", "personalization_off", "redis_timeout", "redis_unavailable"):
            self.fallbacks.labels(reason)  # every series from 0: a rate is 0, never absent
        for kind in ("redis_timeout", "redis_unavailable"):
            self.redis_errors.labels(kind)

    def summary(self) -> dict:
        """Requests by route, fallbacks by reason, and decision reads' p50 / p99 (from the histogram's buckets:
        the bucket bound the quantile falls under), for the dashboard."""
        requests, fallbacks, buckets = {}, {}, []
        for fam in self.registry.collect():
            for s in fam.samples:
                if s.name == "shiftstream_api_requests_total":
                    requests[s.labels["route"]] = requests.get(s.labels["route"], 0) + s.value
                elif s.name == "shiftstream_api_fallbacks_total":
                    fallbacks[s.labels["reason"]] = s.value
                elif s.name == "shiftstream_api_request_seconds_bucket" and s.labels["route"] == "decisions":
                    buckets.append((float(s.labels["le"]), s.value))
        q = {}
        total = buckets[-1][1] if buckets else 0
        for name, p in (("p50", 0.5), ("p99", 0.99)):
            q[name] = next((le * 1000 for le, n in buckets if n >= p * total and le != float("inf")), None) \
                if total else None
        return {"requests": requests, "fallbacks": fallbacks, "decision_ms": q}

    def timed(self, route: str, handler, access_log: bool = False):
        async def wrapped(request):
            t0 = time.perf_counter()
            response = await handler(request)
            took = time.perf_counter() - t0
            self.latency.labels(route).observe(took)
            self.requests.labels(route, str(response.status_code)).inc()
            if access_log:
                _LOG.info("request", extra={"fields": {
                    "method": request.method, "route": route, "status": response.status_code,
                    "ms": round(took * 1000, 3), "client": request.client.host if request.client else None}})
            return response
        return wrapped


class Produced:
    """What a write endpoint does with a batch: check each record against its Avro schema, encode it in the wire
    format and hand it to the producer. Returns (accepted, [{index, error}])."""

    def __init__(self, cfg, producer, topic: str, schema: str = "interaction", fill=None, metrics=None):
        from shiftstream.schemas import codec, wire_codec

        self.codec = codec(schema)
        self.kind = schema.replace("_", " ")
        self.fill = fill  # defaults for fields a caller may leave out: record -> record
        self.wire = wire_codec(cfg.kafka.schema_registry_url, schema,
                               cfg.kafka.writer_schemas if schema == "interaction" else ())
        self.producer, self.topic = producer, topic
        self.failed = 0  # deliveries the broker refused (after librdkafka's retries)
        self.metrics = metrics

    def _delivered(self, err, msg):
        if err is not None:
            self.failed += 1
            if self.metrics is not None:
                self.metrics.produce_failures.inc()

    def __call__(self, events: list) -> tuple[int, list]:
        errors, accepted = [], 0
        for i, ev in enumerate(events):
            if not isinstance(ev, dict):
                errors.append({"index": i, "error": f"expected a JSON object ({self.kind}), got {type(ev).__name__}"})
                continue
            if self.fill is not None:
                ev = self.fill(ev)
            problem = self.codec.problem(ev)
            if problem is not None:
                errors.append({"index": i, "error": problem})
                continue
            # keyed by the user: each user's records in one partition, in order. The record timestamp stays the
            # producer's clock: one set to an old event's ts is deleted at once by the broker's time retention
            self.producer.produce(self.topic, self.wire.encode(ev), key=str(ev["user_id"]).encode(),
                                  on_delivery=self._delivered)
            accepted += 1
        self.producer.poll(0)
        return accepted, errors


def app(cfg, key: bytes, clock=time.time, producer=None):
    """The ASGI application (a Starlette app) for a config and pseudonym key; `producer` (a confluent-kafka
    Producer) takes POST /v1/events (None: that endpoint answers 503)."""
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
    metrics = Metrics()

    def fallback(k, why, written=None):
        metrics.fallbacks.labels(why).inc()
        if why.startswith("redis_"):
            metrics.redis_errors.labels(why).inc()
        d = fallback_decision(cfg, k, why)
        if written is not None:  # the user turned personalization off: the job wrote the fallback, as of when
            d["personalization"] = written["personalization"]
            d["freshness"] = {"age_ms": max(0, int(clock() * 1000) - written["updated_at"]), "settled": True,
                              "settled_through": written["settled_through"], "provisional_events": 0}
        return _json(d)
    prefix = r.key_prefix

    async def decision(request):
        raw = request.path_params["user_id"]
        if not raw or len(raw.encode()) > MAX_ID:
            return _json({"error": f"user_id: expected 1 to {MAX_ID} bytes"}, 400)
        k = pseudonymise(raw)
        try:
            h = await asyncio.wait_for(client.hgetall(prefix + k), r_timeout)
        except asyncio.TimeoutError:
            return fallback(k, "redis_timeout")
        except (OSError, aioredis.RedisError):
            return fallback(k, "redis_unavailable")
        if not h:
            return fallback(k, "no_decision")
        d = decision_from_hash(k, h)
        level = d["personalization"]
        if level == "off":
            return fallback(k, "personalization_off", d)
        if level == "basic":
            d = basic(d)
        d["fallback"] = None
        d["freshness"] = {"age_ms": max(0, int(clock() * 1000) - d["updated_at"]),
                          "settled": d["provisional"] == 0, "settled_through": d["settled_through"],
                          "provisional_events": d["provisional"]}
        return _json(d)

    events_in = Produced(cfg, producer, cfg.kafka.events_topic, metrics=metrics) if producer is not None else None

    def _defaults(req):  # a request without an id or a time gets them here
        return {"request_id": str(uuid.uuid4()), "ts": int(clock() * 1000), "source": "api", **req}

    privacy_in = Produced(cfg, producer, cfg.kafka.privacy_topic, "privacy_request", _defaults, metrics) \
        if producer is not None else None
    api_key = os.environ.get(cfg.serve.api_key_env) or None

    def _refused(request, sink):
        """The write endpoints' gate: a key set, the caller's key, a producer; a response if refused, else None."""
        if api_key is None:
            return _json({"error": f"writes are off: set ${cfg.serve.api_key_env} to the API key callers send "
                                   "as `Authorization: Bearer <key>`"}, 503)
        given = request.headers.get("authorization", "")
        if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), api_key.encode())):
            return _json({"error": "authorization: expected `Bearer <API key>`"}, 401)
        if sink is None:
            return _json({"error": "no Kafka to produce to: start `shiftstream serve --kafka-bootstrap HOST:PORT`"},
                         503)
        return None

    async def _body(request):
        """(the JSON body, None) or (None, an error response): the size limit, then the parse."""
        limit = cfg.serve.max_body
        if int(request.headers.get("content-length") or 0) > limit:
            return None, _json({"error": f"body: more than {limit:,} bytes"}, 413)
        body = await request.body()
        if len(body) > limit:
            return None, _json({"error": f"body: more than {limit:,} bytes"}, 413)
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError as exc:
            return None, _json({"error": f"body: not JSON ({exc})"}, 400)

    def _sent(sink, field: str, records: list):
        accepted, errors = sink(records)
        metrics.records.labels(field, "accepted").inc(accepted)
        metrics.records.labels(field, "rejected").inc(len(errors))
        return _json({"accepted": accepted, "rejected": len(errors), "errors": errors}, 202)

    async def _admitted(request, sink):
        """(the JSON body, None) for a caller let in, else (None, the response): the gate, then the body."""
        refused = _refused(request, sink)
        if refused is not None:
            return None, refused
        return await _body(request)

    async def _write(request, sink, field: str):
        """The write endpoints' common path: the key, the limits, the JSON, then each record to the topic."""
        data, bad = await _admitted(request, sink)
        if bad is not None:
            return bad
        records = data.get(field) if isinstance(data, dict) and field in data else \
            [data] if isinstance(data, dict) and field == "requests" else data
        if not isinstance(records, list):
            return _json({"error": f"{field}: expected a list of {sink.kind} records"}, 400)
        if len(records) > cfg.serve.max_events:
            return _json({"error": f"{field}: more than {cfg.serve.max_events:,} in one request"}, 413)
        return _sent(sink, field, records)

    async def put_level(request):
        """PUT /v1/users/{user_id}/personalization {"level": "off" | "basic" | "full"}: a personalization request
        to the privacy topic (the job applies it in order with the user's other requests)."""
        data, bad = await _admitted(request, privacy_in)
        if bad is not None:
            return bad
        level = data.get("level") if isinstance(data, dict) else None
        if level not in LEVELS:
            return _json({"error": f"level: expected one of {', '.join(LEVELS)}, got {level!r}"}, 400)
        raw = request.path_params["user_id"]
        if not raw or len(raw.encode()) > MAX_ID:
            return _json({"error": f"user_id: expected 1 to {MAX_ID} bytes"}, 400)
        extra = {k: data[k] for k in ("request_id", "ts", "source") if k in data}
        return _sent(privacy_in, "requests", [{"user_id": raw, "kind": "personalization", "level": level, **extra}])

    async def post_events(request):
        return await _write(request, events_in, "events")

    async def post_privacy(request):
        return await _write(request, privacy_in, "requests")

    async def prometheus(request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    page = (Path(__file__).with_name("dashboard.html")).read_bytes()

    async def dashboard_page(request):
        from starlette.responses import Response

        return Response(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def dashboard_data(request):
        """What the dashboard polls: the job's latest snapshot (Redis, `metrics.stats_key`) and the API's own."""
        job = None
        try:
            raw = await asyncio.wait_for(client.get(cfg.metrics.stats_key), r_timeout)
            job = orjson.loads(raw) if raw else None
        except (asyncio.TimeoutError, OSError, aioredis.RedisError, orjson.JSONDecodeError):
            pass
        return _json({"at": int(clock() * 1000), "job": job, "api": metrics.summary()})

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

    def t(route, handler):
        return metrics.timed(route, handler, cfg.serve.access_log)

    routes = [Route("/v1/decisions/{user_id:path}", t("decisions", decision)),
              Route("/v1/events", t("events", post_events), methods=["POST"]),
              Route("/v1/privacy", t("privacy", post_privacy), methods=["POST"]),
              Route("/v1/users/{user_id:path}/personalization", t("personalization", put_level), methods=["PUT"]),
              Route("/metrics", prometheus), Route("/healthz", t("healthz", healthz)),
              Route("/dashboard", dashboard_page), Route("/v1/dashboard", dashboard_data),
              Route("/readyz", t("readyz", readyz))]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()
        if producer is not None:
            producer.flush(5)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, lifespan=lifespan)


def main(args) -> int:
    cfg = settings(args)
    host = args.host or cfg.serve.host
    port = args.port if args.port is not None else cfg.serve.port
    if not 0 < port < 65536:
        raise usage(f"--port {port}: expected 1 to 65535")
    key = key_from_settings(cfg.privacy.key_env, cfg.privacy.key_file, cfg.privacy.require_key)
    try:
        parse_url(cfg.redis.url)
    except ValueError as exc:
        raise UserError(f"redis.url / --redis-url: {exc}") from None
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("uvicorn", "starlette")):
        raise UserError("the API needs uvicorn and starlette: run `make setup` (they are in requirements.lock)")
    producer = None
    if args.kafka_bootstrap:
        from confluent_kafka import Producer

        from shiftstream.jobs import kafka_security
        from shiftstream.jobs.kafka import client_config, kafka_reachable

        try:
            kafka_security.use(cfg)
        except kafka_security.KafkaSecurityError as exc:
            raise UserError(str(exc)) from None
        kafka_reachable(args.kafka_bootstrap)
        idem = cfg.serve.idempotent_producer
        producer = Producer(client_config(args.kafka_bootstrap, **{
            "linger.ms": 5, "acks": "all", "enable.idempotence": idem, "message.timeout.ms": 30_000,
            **({} if idem else {"max.in.flight.requests.per.connection": 1})}))
    serve_forever(cfg, key, host, port, producer)
    return 0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free one); a taken port is one line of ours, not the server's log."""
    try:
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    reuse_port=False)
        # no Nagle: a response goes out as it is written (accepted sockets inherit this), or a keep-alive
        # client's delayed ACK holds every second write for 40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # (getaddrinfo's codes are negative)
            raise UserError(f"cannot listen on {host}: not an address of this machine (--host)") from None
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = "is the port taken? --port" if exc.errno == errno.EADDRINUSE else "--host / --port"
        raise UserError(f"cannot listen on {host}:{port}: {why} ({hint})") from None
    return sock


def serve_forever(cfg, key: bytes, host: str, port: int, producer=None, sock=None, banner: bool = True) -> None:
    """Serve until SIGINT / SIGTERM (uvicorn's handlers: in-flight requests finish, the Redis client and the
    producer close)."""
    import uvicorn

    _Server = _server_class()
    sock = sock or bind(host, port)
    # uvicorn's own messages through our handler (text, or JSON lines with --log-format json), not its formatters
    config = uvicorn.Config(app(cfg, key, producer=producer), log_level="warning", access_log=False, lifespan="on",
                            loop="asyncio", http="h11", log_config=None)
    if banner:
        print(f"shiftstream serve: http://{host}:{sock.getsockname()[1]}/v1/decisions/USER_ID (decisions in "
              f"{redact_url(cfg.redis.url)} under {cfg.redis.key_prefix}*)", flush=True)
    _Server(config).run(sockets=[sock])
    print("shiftstream serve: stopped", flush=True)


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopped by SIGINT / SIGTERM as the normal end: it finishes the requests in flight,
        closes the Redis client and the producer, and returns (uvicorn's own handlers raise the signal again
        afterwards, which would end the process as interrupted, mid-shutdown)."""

        @contextlib.contextmanager
        def capture_signals(self):
            def stop(signum, frame):
                self.should_exit = True

            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

    return Server
