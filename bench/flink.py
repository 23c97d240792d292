"""PyFlink job benchmark: events/s per task slot (thread and process mode) against the reference runner on the same
messages, and event-to-decision latency (produced to Kafka -> decision visible in Redis) at half the thread-mode rate.

    python -m bench.flink [--events 40000] [--latency-seconds 20]

Throughput is taken from two runs of each mode (N and 3N messages, parallelism 1, local mini-cluster): the slope
(2N messages / the extra seconds) leaves the mini-cluster's start-up out. Figures are one run on this machine: read
the ratios.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from shiftstream.jobs.redis_sink import RedisSink
from shiftstream.jobs.testing import create_topic, run_reference
from shiftstream.runners.local import LocalKafka, LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec, write_frames
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          **kw)


def throughput(msgs: list[bytes], redis_url: str, work: Path, modes=("thread", "process")) -> dict[str, float]:
    """Messages/s of the reference runner and of the Flink job per mode (slope of two sizes)."""
    n = len(msgs) // 3
    small, big = work / "small.frames", work / "big.frames"
    write_frames(small, msgs[:n])
    write_frames(big, msgs[:3 * n])
    cfg = load_config().replace(**{"redis.url": redis_url})
    t0 = time.perf_counter()
    run_reference(msgs[:3 * n], cfg, sink=RedisSink(redis_url), messages=True)
    out = {"reference": 3 * n / (time.perf_counter() - t0)}
    for mode in modes:
        took = []
        for path in (small, big):
            t0 = time.perf_counter()
            r = _cli("run", "--runner", "flink", "--input", str(path), "--flink-mode", mode, "--models", "none",
                     "--redis-url", redis_url, "--out-dir", str(work / "out"), timeout=1800)
            if r.returncode:
                raise RuntimeError(r.stderr[-3000:])
            took.append(time.perf_counter() - t0)
            print(f"  flink {mode}: {path.name} in {took[-1]:.1f}s", file=sys.stderr, flush=True)
        out[f"flink_{mode}"] = 2 * n / max(took[1] - took[0], 1e-9)
        out[f"flink_{mode}_startup_s"] = took[0] - n / out[f"flink_{mode}"]
    return out


def latency(sim, bootstrap: str, redis_url: str, rate: float, seconds: float, work: Path,
            lateness: str = "5s") -> dict:
    """p50/p99 ms from producing an event to Kafka to its user's decision in Redis covering that event's time.

    Events are stamped with the wall clock as they are sent (live traffic), never with the simulator's times,
    which run far ahead of the clock and would let the watermark race past every event at once. A decision
    settles when the watermark passes its event, so the latency is at least `event_time.allowed_lateness`
    (set to `lateness` here; the default 2 min would put every figure above two minutes)."""
    import redis
    from confluent_kafka import Producer

    from shiftstream.transforms.config import parse_duration

    work.mkdir(parents=True, exist_ok=True)
    wire = WireCodec(MemoryRegistry(), "interaction")
    pseudo = Pseudonymiser(DEV_KEY)
    events = sim.events
    lateness_s = parse_duration(lateness) / 1000
    topic = f"lat-events-{work.name}"
    create_topic(bootstrap, topic)
    cfg = work / "lat.yaml"
    cfg.write_text(f"event_time:\n  allowed_lateness: {lateness}\n"
                   f"batching:\n  flush_interval: 20ms\nengine:\n  checkpoint_dir: {work / 'ckpt'}\n"
                   f"kafka:\n  group_id: lat-{work.name}\n  decisions_topic: lat-decisions\n  dead_letter_topic: lat-dead\n"
                   "  late_topic: lat-late\n")
    job = subprocess.Popen([sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", "flink", "--kafka-bootstrap",
                            bootstrap, "--topic", topic, "--redis-url", redis_url, "--models", "none",
                            "--config", str(cfg)], cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=open(work / "lat.log", "w"))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    client = redis.Redis.from_url(redis_url)
    client.flushall()  # each rate's run starts from an empty Redis (the same events are sent again)
    prefix = load_config().redis.key_prefix
    pending: dict = {}
    lat: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def poll():
        while not done.is_set() or pending:
            with lock:
                items = list(pending.items())
            if not items:
                time.sleep(0.001)
                continue
            pipe = client.pipeline(transaction=False)
            for (key, _), _ in items:
                pipe.hget(prefix + key, "event_time")
            now = time.perf_counter()
            for ((key, ts), t_sent), got in zip(items, pipe.execute()):
                if got is not None and int(got) >= ts:
                    lat.append(now - t_sent)
                    with lock:
                        pending.pop((key, ts), None)
                elif now - t_sent > lateness_s + 30:
                    with lock:
                        pending.pop((key, ts), None)  # not decided in time: left out (the table shows how many)
            time.sleep(0.001)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sent = sampled = 0
    t0 = time.perf_counter()
    stop_at = None
    try:
        deadline = time.monotonic() + 180
        while stop_at is None or time.perf_counter() < stop_at:
            ev = {**events[sent % len(events)], "event_id": f"lat-{sent}", "ts": int(time.time() * 1000)}
            producer.produce(topic, wire.encode(ev))
            producer.poll(0)
            sent += 1
            if stop_at is None and sent % 200 == 0:
                # sampling starts once the job writes and a lateness has passed (events before settle meanwhile)
                if client.dbsize() > 0 and time.perf_counter() - t0 > lateness_s + 2:
                    stop_at = time.perf_counter() + seconds
                    t_sampling, sent_at_start = time.perf_counter(), sent
                elif job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((work / "lat.log").read_text()[-3000:])
            if stop_at is not None and sent % 50 == 0:
                producer.flush(1)
                with lock:
                    pending[(pseudo(ev["user_id"]), ev["ts"])] = time.perf_counter()
                sampled += 1
            ahead = sent / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
        sent_rate = (sent - sent_at_start) / (time.perf_counter() - t_sampling)
        # keep the stream going while the last samples settle: the watermark moves only with new events
        settle_until = time.perf_counter() + lateness_s + 5
        while time.perf_counter() < settle_until and pending:
            producer.produce(topic, wire.encode({**events[sent % len(events)], "event_id": f"lat-{sent}",
                                                 "ts": int(time.time() * 1000)}))
            producer.poll(0)
            sent += 1
            time.sleep(1 / rate)
        done.set()
        poller.join(lateness_s + 40)
    finally:
        done.set()
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        client.close()
    lat.sort()
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000) if lat else (lambda p: float("nan"))
    return {"rate": sent_rate, "sampled": sampled, "measured": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99),
            "lateness": lateness}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.flink")
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--modes", default="thread,process")
    ap.add_argument("--lateness", default="5s", help="event_time.allowed_lateness for the latency runs")
    ap.add_argument("--latency-rates", help="events/s, comma-separated: only the latency runs, at these rates")
    a = ap.parse_args(argv)
    if a.latency_rates:
        sim = simulate(SimConfig(users=1000, events=20_000, seed=11, privacy_rate=0, malformed=0))
        print("\n| produced at | p50 ms | p99 ms | sampled | allowed_lateness |\n|---|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r, LocalKafka() as k:
            for rate in (float(x) for x in a.latency_rates.split(",")):
                lat = latency(sim, k.bootstrap, r.url, rate, a.latency_seconds, Path(tmp) / f"lat{rate:g}",
                              a.lateness)
                print(f"| {lat['rate']:,.0f} events/s | {lat['p50_ms']:,.0f} | {lat['p99_ms']:,.0f} | "
                      f"{lat['measured']}/{lat['sampled']} | {a.lateness} |", flush=True)
        return {}
    sim = simulate(SimConfig(users=1000, events=max(a.events, 60_000), seed=11, privacy_rate=0))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))[:a.events]
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r, LocalKafka() as k:
        work = Path(tmp)
        print(f"bench.flink: throughput over {len(msgs):,} messages (and a third of them) ...", file=sys.stderr)
        t = throughput(msgs, r.url, work, tuple(a.modes.split(",")))
        ref = t["reference"]
        print(f"\n| engine | events/s per slot | vs reference |\n|---|---|---|\n| reference | {ref:,.0f} | 1.00x |")
        for m in a.modes.split(","):
            print(f"| flink {m} mode | {t['flink_' + m]:,.0f} | {t['flink_' + m] / ref:.3f}x |")
        print("\n" + "  ".join(f"start-up {m}: {t[f'flink_{m}_startup_s']:.1f}s" for m in a.modes.split(",")))
        top = t.get("flink_thread", t[f"flink_{a.modes.split(',')[0]}"])
        print("\n| produced at | vs thread-mode file rate | p50 ms | p99 ms | sampled |\n|---|---|---|---|---|")
        lats = []
        for frac in (0.125, 0.25, 0.5):
            print(f"bench.flink: latency at {top * frac:,.0f} events/s for {a.latency_seconds:.0f}s ...",
                  file=sys.stderr)
            lat = latency(sim, k.bootstrap, r.url, top * frac, a.latency_seconds, work / f"lat{frac}", a.lateness)
            lats.append(lat)
            print(f"| {lat['rate']:,.0f} events/s | {frac:g}x | {lat['p50_ms']:,.0f} | {lat['p99_ms']:,.0f} | "
                  f"{lat['measured']}/{lat['sampled']} |", flush=True)
    return {"throughput": t, "latency": lats}


if __name__ == "__main__":
    main()
