"""Live-time latency: events stamped with the wall clock, produced to the local broker at a steady rate, and the
time from producing one to its user's decision in Redis covering it (the decision's `event_time` at or past the
event's), for the reference runner and the PyFlink job, at several allowed latenesses.

    python -m bench.live [--engines reference,flink] [--lateness 2m,10m] [--loads 0.25,0.5,0.8] [--seconds 10]

Per engine, its maximum rate is measured first on the same path, two ways: a burst of messages put on the topic
before the job starts (the burst over the time from the job's first decision in Redis to the decision covering
its last event: how fast it drains a backlog), then the live rate it sustains, stepped up from a third of that
until the latency of a step's last second grows, and at most the drain rate (`Live.sustained`). The loads are fractions of the sustained
rate. One long-running job per allowed lateness takes events at each load, two seconds to settle in, then
`--seconds` of sampling. The producer, the Redis poller, the broker and the job share this machine's cores: the
figures include that contention (on 2 cores the broker alone takes about half a core at 9,000 events/s).
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

from shiftstream.jobs.testing import create_topic
from shiftstream.runners.local import LocalKafka, LocalRedis
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.schemas.varint import encode_long
from shiftstream.transforms.config import load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

ROOT = Path(__file__).resolve().parent.parent
AIMS = {"reference": 50.0, "flink": 250.0}  # p99 ms at half load (issue 3/6)


class Live:
    """One long-running job on one topic, fed wall-clock-stamped events; samples produce -> decision latency."""

    def __init__(self, engine: str, lateness: str, bootstrap: str, redis_url: str, work: Path, events: list):
        import redis
        from confluent_kafka import Producer

        self.engine, self.lateness, self.events = engine, lateness, events
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.topic = f"live-{work.name}"
        create_topic(bootstrap, self.topic)
        self.bootstrap, self.redis_url = bootstrap, redis_url
        self.wire = WireCodec(MemoryRegistry(), "interaction")
        self.pseudo = Pseudonymiser(DEV_KEY)
        self.prefix = load_config().redis.key_prefix
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})  # librdkafka's default
        self.client = redis.Redis.from_url(redis_url)
        self.client.flushall()
        self.sent = 0
        self.templates = self._templates()
        self.job: subprocess.Popen | None = None

    def start(self) -> None:
        cfg = self.work / "live.yaml"
        cfg.write_text(f"event_time:\n  allowed_lateness: {self.lateness}\n"
                       f"engine:\n  checkpoint_dir: {self.work / 'ckpt'}\n"
                       f"kafka:\n  group_id: live-{self.work.name}\n  decisions_topic: live-decisions\n"
                       "  dead_letter_topic: live-dead\n  late_topic: live-late\n")
        self.log = self.work / "job.log"
        self.job = subprocess.Popen(
            [sys.executable, "-m", "shiftstream.runners.cli", "run", "--runner", self.engine, "--kafka-bootstrap",
             self.bootstrap, "--topic", self.topic, "--redis-url", self.redis_url, "--models", "none",
             "--config", str(cfg), "--out-dir", str(self.work / "out"), "--quiet"],
            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

    def stop(self) -> None:
        if self.job is not None and self.job.poll() is None:
            os.killpg(self.job.pid, signal.SIGKILL)
        if self.job is not None:
            self.job.wait()
        self.client.close()

    def _check(self) -> None:
        if self.job is not None and self.job.poll() is not None:
            raise RuntimeError(f"the {self.engine} job exited: {self.log.read_text()[-3000:]}")

    def _templates(self) -> list:
        """Each event encoded once, split around its id and its time, so that stamping one costs two byte joins
        rather than an Avro encode (about 19 us here, which the producer would take from the job's cores)."""
        out = []
        probe_id, probe_ts = "live-" + "7" * 12, 1_799_999_999_999
        for e in self.events:
            msg = self.wire.encode({**e, "event_id": probe_id, "ts": probe_ts})
            i = msg.index(probe_id.encode())
            t = msg.index(encode_long(probe_ts), i + len(probe_id))
            out.append((msg[:i], msg[i + len(probe_id):t], msg[t + len(encode_long(probe_ts)):],
                        self.pseudo(e["user_id"])))
        sample = self.events[0]
        head, mid, tail, _ = out[0]
        got = self.wire.decode(head + b"live-000000000001" + mid + encode_long(1_800_000_000_123) + tail)
        assert got == {**sample, "event_id": "live-000000000001", "ts": 1_800_000_000_123}, got
        return out

    def send(self) -> tuple[str, int]:
        """Produce the next event, stamped now; its (user key, event time)."""
        head, mid, tail, key = self.templates[self.sent % len(self.templates)]
        ts = int(time.time() * 1000)
        self.producer.produce(self.topic, b"".join((head, b"live-%012d" % self.sent, mid, encode_long(ts), tail)))
        self.sent += 1
        return key, ts

    def covered(self, key: str, ts: int) -> bool:
        got = self.client.hget(self.prefix + key, "event_time")
        return got is not None and int(got) >= ts

    def max_rate(self, n: int, timeout: float = 600) -> float:
        """Put a burst of n events on the topic, start the job, and time it from its first decision to the
        decision covering the burst's last event."""
        for _ in range(n - 1):
            self.send()
            self.producer.poll(0)
        last = self.send()
        self.producer.flush(30)
        self.start()
        deadline = time.monotonic() + timeout
        while self.client.dbsize() == 0:
            self._check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no decision in {timeout:.0f}s: {self.log.read_text()[-3000:]}")
            time.sleep(0.002)
        t_first = time.perf_counter()
        while not self.covered(*last):
            self._check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the burst was not decided in {timeout:.0f}s")
            time.sleep(0.002)
        return n / (time.perf_counter() - t_first)

    def run(self, rate: float, seconds: float, warm: float = 2.0) -> dict:
        """Produce at `rate` for warm + seconds; the latency of sampled events (about 2,000 of them)."""
        if self.job is None:  # a fresh job: warm it up first (JIT, Python workers, caches) before sampling
            self.start()
            warm = max(warm, 10.0)
        every = max(1, int(rate * seconds / 2000))
        pending: dict = {}
        lat: list[float] = []
        timeline: list = []
        self.timeline = timeline
        lock = threading.Lock()
        done = threading.Event()
        client = self.client
        prefix = self.prefix

        def poll():
            while not done.is_set() or pending:
                with lock:
                    items = list(pending.items())
                if items:
                    pipe = client.pipeline(transaction=False)
                    for _, (key, _, _) in items:
                        pipe.hget(prefix + key, "event_time")
                    got = pipe.execute()
                    now = time.perf_counter()
                    with lock:
                        for (i, (key, ts, t_sent)), g in zip(items, got):
                            if g is not None and int(g) >= ts:
                                lat.append(now - t_sent)
                                timeline.append((t_sent, now - t_sent))
                                del pending[i]
                            elif now - t_sent > 30:
                                del pending[i]  # not decided in 30 s: counted as missed
                time.sleep(0.0005)

        # wait for the job to take events (a Flink mini-cluster starts in seconds), then settle in at the rate
        t0 = time.perf_counter()
        n = 0
        deadline = time.monotonic() + 180
        while client.dbsize() == 0:
            self._check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no decision in 180s: {self.log.read_text()[-3000:]}")
            self.send()
            self.producer.poll(0)
            time.sleep(0.01)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.perf_counter()
        sample_from = t0 + warm
        stop_at = sample_from + seconds
        sampled = 0
        sent_at_sample = None
        try:
            while True:
                now = time.perf_counter()
                if now >= stop_at:
                    break
                if now >= sample_from and sent_at_sample is None:
                    sent_at_sample, t_sample = n, now
                t_sent = time.perf_counter()
                key, ts = self.send()
                n += 1
                self.producer.poll(0)
                if sent_at_sample is not None and n % every == 0:
                    with lock:
                        pending[n] = (key, ts, t_sent)
                    sampled += 1
                ahead = n / rate - (time.perf_counter() - t0)
                if ahead > 0.0005:
                    time.sleep(ahead)
            produced = (n - sent_at_sample) / (time.perf_counter() - t_sample)
            self.producer.flush(10)
            done.set()
            poller.join(40)
            self._check()
        finally:
            done.set()
        lat.sort()
        q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000) if lat else (lambda p: float("nan"))
        tail = sorted(x for t, x in timeline if t >= stop_at - 1.0)  # the last second: is a backlog growing?
        return {"engine": self.engine, "lateness": self.lateness, "rate": rate, "produced": produced,
                "sampled": sampled, "decided": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99),
                "max_ms": lat[-1] * 1000 if lat else float("nan"),
                "tail_p50_ms": tail[len(tail) // 2] * 1000 if tail else float("inf")}

    def sustained(self, start: float, step: float = 1.2, seconds: float = 4.0, cap: float | None = None) -> float:
        """The highest rate the job keeps up with while the producer and the broker share the machine: raised by
        `step` from `start` until the median latency of a step's last second passes 100 ms (a growing backlog),
        and never above `cap` (the rate it drains a backlog at: a short step can pass above what it sustains)."""
        best, rate, retried = 0.0, start, False
        time.sleep(3)  # the burst's backlog written, its checkpoint taken
        while True:
            res = self.run(rate, seconds, warm=1.0)
            print(f"bench.live: {self.engine} at {rate:,.0f} events/s: p50 of the last second "
                  f"{res['tail_p50_ms']:,.1f} ms", file=sys.stderr, flush=True)
            if res["tail_p50_ms"] > 100 or res["decided"] < res["sampled"]:
                if retried:
                    break
                retried = True  # once more, after a pause: a checkpoint or a collection can hit one step
                time.sleep(3)
                if not best:
                    rate /= step
                continue
            best, rate, retried = rate, rate * step, False
        time.sleep(3)  # let a backlog drain before the next run
        return min(best or rate, cap) if cap else best or rate


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench.live")
    ap.add_argument("--engines", default="reference,flink")
    ap.add_argument("--lateness", default="2m,10m", help="event_time.allowed_lateness values, comma-separated")
    ap.add_argument("--loads", default="0.25,0.5,0.8", help="fractions of each engine's measured maximum rate")
    ap.add_argument("--seconds", type=float, default=10, help="sampling time per load")
    ap.add_argument("--burst", type=int, default=0, help="messages for the maximum-rate burst (default: per engine)")
    a = ap.parse_args(argv)
    sim = simulate(SimConfig(users=1000, events=20_000, seed=11, privacy_rate=0, malformed=0, out_of_order=0,
                             too_late=0, duplicates=0))
    events = [e for e in sim.events if "event_id" in e]
    loads = [float(x) for x in a.loads.split(",")]
    rows, tops, bursts = [], {}, {}
    print(f"(cpus: {os.cpu_count()}; events stamped with the wall clock; 1,000 users; p50/p99/max over about 2,000 "
          f"sampled events per load, {a.seconds:g} s each)")
    print("\n| engine | allowed_lateness | load | produced events/s | p50 ms | p99 ms | max ms | decided/sampled |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as r, LocalKafka() as k:
        for engine in a.engines.split(","):
            for li, lateness in enumerate(a.lateness.split(",")):
                live = Live(engine, lateness, k.bootstrap, r.url, Path(tmp) / f"{engine}{li}", events)
                try:
                    if engine not in tops:
                        n = a.burst or (60_000 if engine == "reference" else 20_000)
                        print(f"bench.live: {engine}: maximum rate over a burst of {n:,} ...", file=sys.stderr,
                              flush=True)
                        bursts[engine] = live.max_rate(n)
                        print(f"bench.live: {engine}: drains a backlog at {bursts[engine]:,.0f} events/s; the "
                              "live rate it sustains ...", file=sys.stderr, flush=True)
                        tops[engine] = live.sustained(bursts[engine] / 3, cap=bursts[engine])
                    for load in loads:
                        print(f"bench.live: {engine}, lateness {lateness}, {load:g}x ...", file=sys.stderr,
                              flush=True)
                        res = live.run(tops[engine] * load, a.seconds)
                        res["load"] = load
                        rows.append(res)
                        print(f"| {engine} | {lateness} | {load:g}x | {res['produced']:,.0f} | {res['p50_ms']:,.1f} | "
                              f"{res['p99_ms']:,.1f} | {res['max_ms']:,.1f} | {res['decided']}/{res['sampled']} |",
                              flush=True)
                finally:
                    live.stop()
    print("\n| engine | drains a backlog at (events/s) | sustains live (events/s, the 1.0x) | p99 at 0.5x, worst "
          "lateness | aim |")
    print("|---|---|---|---|---|")
    for engine, top in tops.items():
        half = [x["p99_ms"] for x in rows if x["engine"] == engine and x["load"] == 0.5]
        worst = max(half) if half else float("nan")
        verdict = "met" if worst < AIMS[engine] else "missed"
        print(f"| {engine} | {bursts[engine]:,.0f} | {top:,.0f} | {worst:,.1f} ms | < {AIMS[engine]:g} ms: {verdict} |")
    return {"sustained": tops, "bursts": bursts, "runs": rows}


if __name__ == "__main__":
    main()
