"""Decision-lookup latency from Redis as a serving layer sees it: HGETALL of one user's hash over loopback.

    python -m bench.lookup [--users N --lookups M]

Measured idle, then while a second process writes decisions flat out through the job's sink.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import time

import redis

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.runners.local import LocalRedis


def _decision(i: int) -> dict:
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.features import feature_names

    names = feature_names(load_config())
    return {"user_key": f"{i:032x}", "segment": "general", "ml_segment": None,
            "shift": {"detected": False, "from_category": None, "to_category": None, "score": 0.1, "at": None},
            "top_categories": ["books", "home", "toys"], "features": {n: j * 1.5 for j, n in enumerate(names)},
            "scores": {}, "chosen_content": None, "experiment_arm": None, "model_version": None,
            "actions": [], "event_time": 1, "settled_through": None, "provisional": 0, "updated_at": 2}


def _writer(url: str, users: int, stop) -> None:
    sink = RedisSink(url)
    batch = [_decision(i) for i in range(256)]
    while not stop.is_set():
        sink.write(batch)
    sink.flush()


def _lookups(url: str, users: int, n: int) -> list[float]:
    client = redis.Redis.from_url(url)
    rng = random.Random(0)
    out = []
    for _ in range(n):
        k = f"ss:d:{rng.randrange(users):032x}"
        t = time.perf_counter()
        client.hgetall(k)
        out.append((time.perf_counter() - t) * 1e6)
    client.close()
    return out


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=1000)[int(q * 1000) - 1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    a = ap.parse_args(argv)
    with LocalRedis() as r:
        sink = RedisSink(r.url)
        for i in range(0, a.users, 500):
            sink.write([_decision(j) for j in range(i, min(a.users, i + 500))])
        sink.flush()
        idle = _lookups(r.url, a.users, a.lookups)
        stop = mp.Event()
        w = mp.Process(target=_writer, args=(r.url, a.users, stop))
        w.start()
        time.sleep(0.3)
        busy = _lookups(r.url, a.users, a.lookups)
        stop.set()
        w.join()
    print(f"HGETALL of a decision hash (the job's 51 features), {a.lookups:,} lookups, redis-py over loopback")
    print("| condition | p50 (us) | p99 (us) |")
    print("|---|---|---|")
    print(f"| idle | {pct(idle, .5):.0f} | {pct(idle, .99):.0f} |")
    print(f"| while a writer streams decisions | {pct(busy, .5):.0f} | {pct(busy, .99):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
