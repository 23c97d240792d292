"""`python -m bench.serve`: GET /v1/decisions over loopback at fixed rates and flat out, while the job writes.

    python -m bench.serve [--users N] [--seconds S] [--rates 500,1000,2000] [--no-writer] [--no-events]

A real redis-server holds N users' decisions; `shiftstream serve` runs as its own process in front of it; a second
process writes decisions into the same Redis flat out through the job's sink (as a running job would); this one
sends the requests. Fixed rates are open loop: request i is due at start + i / rate and its latency counts from
then, so a server that falls behind shows it (no coordinated omission). Keep-alive connections, raw HTTP/1.1.
Then POST /v1/events into a real broker: accepted events/s in batches of 100. On this 2-core machine the three
processes share the cores: read the figures as what one API process does beside a busy job.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.runners.local import LocalKafka, LocalRedis, free_port, wait_port
from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-api-key-0123456789abcdef"


def _decisions(users: int) -> list[dict]:
    from bench.lookup import _decision

    key = Pseudonymiser(key_from_settings("SHIFTSTREAM_PSEUDONYM_KEY", None, False))
    out = []
    for i in range(users):
        d = _decision(i)
        d["user_key"] = key(f"user-{i}")
        d["updated_at"] = int(time.time() * 1000)
        out.append(d)
    return out


def _writer(url: str, users: int, stop) -> None:
    sink = RedisSink(url)
    batch = _decisions(min(users, 256))
    while not stop.is_set():
        sink.write(batch)
    sink.flush()


class Client:
    """One keep-alive HTTP/1.1 connection: send a request, read one response (Content-Length framed)."""

    def __init__(self, port: int):
        self.port = port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self):
        self.writer.close()


def _get(i: int, users: int) -> bytes:
    return f"GET /v1/decisions/user-{i % users} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def _fixed_rate(port: int, users: int, rate: float, seconds: float, conns: int = 64) -> dict:
    pool = asyncio.Queue()
    clients = [await Client(port).open() for _ in range(conns)]
    for c in clients:
        pool.put_nowait(c)
    lat, errors = [], 0
    n = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(i):
        nonlocal errors
        due = start + i / rate
        c = await pool.get()
        try:
            status = await c.request(_get(i, users))
            if status != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            pool.put_nowait(c)
        lat.append(time.perf_counter() - due)

    tasks = []
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    took = time.perf_counter() - start
    for c in clients:
        c.close()
    return {"rate": rate, "done": len(lat) / took, "lat": np.array(lat), "errors": errors}


async def _flat_out(port: int, users: int, seconds: float, conns: int = 8) -> dict:
    lat, errors, count = [], 0, 0
    stop = time.perf_counter() + seconds

    async def worker(w):
        nonlocal errors, count
        c = await Client(port).open()
        i = w
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            if await c.request(_get(i, users)) != 200:
                errors += 1
            lat.append(time.perf_counter() - t0)
            count += 1
            i += conns
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conns)))
    return {"rate": None, "done": count / (time.perf_counter() - t0), "lat": np.array(lat), "errors": errors}


async def _events(port: int, seconds: float, batch: int = 100) -> tuple[float, int]:
    c = await Client(port).open()
    body = json.dumps({"events": [{"event_id": f"b-{i}", "user_id": f"user-{i % 500}", "event_type": "page_view",
                                   "ts": 1_767_000_000_000 + i, "category": "books"} for i in range(batch)]})
    raw = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
    sent = bad = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if await c.request(raw) == 202:
            sent += batch
        else:
            bad += 1
    c.close()
    return sent / (time.perf_counter() - t0), bad


def _start_server(port: int, redis_url: str, bootstrap: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "shiftstream.runners.cli", "serve", "--port", str(port), "--redis-url", redis_url]
    if bootstrap:
        cmd += ["--kafka-bootstrap", bootstrap]
    p = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "SHIFTSTREAM_API_KEY": API_KEY},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, p, "shiftstream serve", 30)
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="per rate (default 5)")
    ap.add_argument("--rates", default="500,1000,2000")
    ap.add_argument("--no-writer", action="store_true", help="no job writing into Redis meanwhile")
    ap.add_argument("--no-events", action="store_true", help="leave out POST /v1/events (it starts a broker)")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r]
    with LocalRedis() as redis_server:
        sink = RedisSink(redis_server.url)
        ds = _decisions(args.users)
        for i in range(0, len(ds), 500):
            sink.write(ds[i:i + 500])
        sink.flush()
        sink.close()
        kafka = None if args.no_events else LocalKafka().__enter__()
        port = free_port()
        server = _start_server(port, redis_server.url, kafka.bootstrap if kafka else None)
        stop = mp.Event()
        writer = None if args.no_writer else mp.Process(target=_writer, args=(redis_server.url, args.users, stop))
        try:
            if writer:
                writer.start()
            print(f"GET /v1/decisions/{{id}}, {args.users:,} users in Redis, {args.seconds:g} s per rate, "
                  f"{'a job writing decisions flat out meanwhile' if writer else 'Redis otherwise idle'}\n")
            print("| offered req/s | answered req/s | p50 ms | p99 ms | max ms | errors |")
            print("|---|---|---|---|---|---|")
            rows = [asyncio.run(_fixed_rate(port, args.users, r, args.seconds)) for r in rates]
            rows.append(asyncio.run(_flat_out(port, args.users, args.seconds)))
            for r in rows:
                lat = r["lat"] * 1000
                label = "flat out (8 connections)" if r["rate"] is None else f"{r['rate']:,.0f}"
                print(f"| {label} | {r['done']:,.0f} | {np.percentile(lat, 50):.2f} | {np.percentile(lat, 99):.2f} | "
                      f"{lat.max():.2f} | {r['errors']} |")
            at = {r["rate"]: r for r in rows}
            if 1000.0 in at:
                lat = at[1000.0]["lat"] * 1000
                p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
                print(f"\nat 1k req/s: p50 {p50:.2f} ms (aim <= 1: {'met' if p50 <= 1 else 'missed'}), "
                      f"p99 {p99:.2f} ms (aim <= 5: {'met' if p99 <= 5 else 'missed'})")
            if kafka:
                eps, bad = asyncio.run(_events(port, args.seconds))
                print(f"POST /v1/events, batches of 100, one connection: {eps:,.0f} events/s accepted "
                      f"({bad} requests refused)")
        finally:
            stop.set()
            if writer:
                writer.join(10)
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(15)
            if kafka:
                kafka.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
