"""The running job's metrics: Prometheus text on a loopback port, and a snapshot in Redis for the API's dashboard.

    shiftstream run --kafka-bootstrap HOST:PORT --metrics-port 9108     (or metrics.port in the config)

Counters are read from the job's own `Counts` when scraped (nothing is counted twice on the per-event path):
events in, dead letters by reason, late, duplicates, blocked by reason, sessions, shifts, trigger actions by
name, outcomes, decisions written. Measured per decision written: the latency from the event's time to its
decision in Redis (wall clock: meaningful for live traffic, whose event times follow the clock). Gauges at scrape:
watermark lag, consumer lag (Kafka runs), users in state, Redis retries, the model version in force; outcomes and
their reward by slot and experiment arm (engagement, for alerts: config/prometheus-alerts.yml).

`snapshot()` is what the dashboard draws (`shiftstream serve` reads it from Redis, `metrics.stats_key`): the
counters, p50 / p99 of the latest decisions' latencies, decisions by segment, choices per slot and variant, and
per experiment arm the outcomes' mean reward with a 95% confidence interval."""
from __future__ import annotations

import math
import time
from collections import Counter, deque

from shiftstream.transforms.experiments import count, reward_interval
from shiftstream.transforms.outputs import COUNTERS
from shiftstream.transforms.watermarks import NO_WATERMARK

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RECENT = 4096  # latencies kept for the dashboard's p50 / p99 (the latest decisions')
SERIES = 300   # points of history in the snapshot (one a publish: 5 minutes at 1 s)


def quantile(sorted_values, q: float):
    """The q-quantile of sorted values (nearest rank), None for none."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


class JobMetrics:
    """Metrics of one ReferenceJob (attach with `JobMetrics(job)`); thread-safe to scrape while the job runs."""

    def __init__(self, job, clock=time.time):
        from prometheus_client import CollectorRegistry, Histogram

        self.job, self.clock = job, clock
        self.registry = CollectorRegistry()
        self.latency = Histogram("shiftstream_job_decision_latency_seconds",
                                 "From an event's time to its decision written to Redis", buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.registry.register(_Collector(self))
        self.recent: deque = deque(maxlen=RECENT)  # ms, the latest decisions'
        self.segments: Counter = Counter()          # decisions written, by segment
        self.choices: dict[str, Counter] = {}       # slot -> variant -> decisions choosing it
        self.arms: dict[str, dict] = {}             # slot -> experiment arm ("-": none) -> counts, the layout of
                                                    # transforms.experiments.count
        self.model_version = None
        self.lag_probe = None                       # () -> {partition name: messages behind}, set by Kafka runs
        self.series: deque = deque(maxlen=SERIES)   # a point per publish: the dashboard's history on page load
        job.writer.on_written = self.written
        job.on_outcome = self.outcome
        job.metrics = self

    def written(self, decisions: list) -> None:
        now = self.clock() * 1000
        observe, recent, segments, choices = self.latency.observe, self.recent, self.segments, self.choices
        for d in decisions:
            ms = max(0.0, now - d["event_time"])
            observe(ms / 1000)
            recent.append(ms)
            segments[d["segment"]] += 1
            for slot, c in d["content"].items():
                got = choices.get(slot)
                if got is None:
                    got = choices[slot] = Counter()
                got[c["variant"]] += 1
        if decisions and decisions[-1]["model_version"]:
            self.model_version = decisions[-1]["model_version"]

    def outcome(self, o) -> None:
        count(self.arms.setdefault(o.slot, {}), o.arm or "-", o.reward, o.first)

    def watermark_lag_s(self):
        wm = self.job.applied_through
        return None if wm == NO_WATERMARK or wm > 10**15 else max(0.0, self.clock() - wm / 1000)

    def point(self) -> None:
        """Add a point of history: cumulative counts, the latency quantiles now, the choices so far."""
        s = self.job.stats
        lat = sorted(self.recent)
        self.series.append({"at": int(self.clock() * 1000), "events": s.get("events", 0),
                            "decisions": s.get("decisions_written", 0), "shifts": s.get("shifts", 0),
                            "dead_letters": s.get("dead_letters", 0), "actions": s.get("actions", 0),
                            "p50": quantile(lat, 0.5), "p99": quantile(lat, 0.99),
                            "choices": {k: dict(v) for k, v in self.choices.items()}})

    def snapshot(self) -> dict:
        """Plain data for the dashboard (JSON)."""
        lat = sorted(self.recent)
        arms = []
        for slot, by_arm in sorted(dict(self.arms).items()):
            for arm, c in sorted(dict(by_arm).items()):
                mean, lo, hi = reward_interval(c)
                arms.append({"slot": slot, "arm": arm, "n": c[0], "mean": mean, "lo": lo, "hi": hi})
        lag = self.lag_probe() if self.lag_probe is not None else None
        return {"at": int(self.clock() * 1000), "counts": dict(self.job.stats), "users": len(self.job.states),
                "latency_ms": {"p50": quantile(lat, 0.5), "p99": quantile(lat, 0.99), "n": len(lat)},
                "segments": dict(self.segments), "choices": {k: dict(v) for k, v in self.choices.items()},
                "arms": arms, "watermark_lag_s": self.watermark_lag_s(), "consumer_lag": sum(lag.values()) if lag is not None else None,
                "model_version": self.model_version, "series": list(self.series)}


class _Collector:
    """Reads the job's counters and gauges when Prometheus scrapes (never on the per-event path)."""

    def __init__(self, m: JobMetrics):
        self.m = m

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self.m
        stats = dict(m.job.stats)  # (one C-level copy: the job thread may be counting meanwhile)
        totals, reasons = dict.fromkeys(COUNTERS, 0), {}  # every counter from 0, so a rate is 0, never absent
        for name, v in stats.items():
            base, _, reason = name.partition(".")
            if reason:
                reasons.setdefault(base, []).append((reason, v))
            else:
                totals[base] = v
        for base, v in sorted(totals.items()):
            yield CounterMetricFamily(f"shiftstream_job_{base}", f"The job's {base.replace('_', ' ')}", value=v)
        for base, items in sorted(reasons.items()):
            label = "name" if base == "actions" else "reason"
            f = CounterMetricFamily(f"shiftstream_job_{base}_by_{label}",
                                    f"The job's {base.replace('_', ' ')} by {label}", labels=[label])
            for reason, v in sorted(items):
                f.add_metric([reason], v)
            yield f
        sink = m.job.sink
        yield CounterMetricFamily("shiftstream_job_redis_retries", "Redis batches resent after an error",
                                  value=getattr(sink, "retries", 0))
        yield GaugeMetricFamily("shiftstream_job_users", "Users with state in the job", value=len(m.job.states))
        lag = m.watermark_lag_s()
        if lag is not None:
            yield GaugeMetricFamily("shiftstream_job_watermark_lag_seconds",
                                    "Wall clock minus the job's watermark", value=lag)
        if m.lag_probe is not None:
            g = GaugeMetricFamily("shiftstream_job_consumer_lag", "Messages behind the end of each partition",
                                  labels=["partition"])
            for part, n in sorted(m.lag_probe().items()):
                g.add_metric([part], n)
            yield g
        outcomes = CounterMetricFamily("shiftstream_job_slot_outcomes", "Exposures whose outcome is exact, by slot "
                                       "and experiment arm ('-': none)", labels=["slot", "arm"])
        reward = CounterMetricFamily("shiftstream_job_slot_reward", "Their reward (a click 1, a purchase "
                                     "content.purchase_reward), by slot and experiment arm", labels=["slot", "arm"])
        for slot, by_arm in sorted(dict(m.arms).items()):
            for arm, c in sorted(dict(by_arm).items()):
                outcomes.add_metric([slot, arm], c[0])
                reward.add_metric([slot, arm], c[2])
        yield outcomes
        yield reward
        if m.model_version:
            g = GaugeMetricFamily("shiftstream_job_model_info", "The model set in force", labels=["version"])
            g.add_metric([m.model_version], 1)
            yield g


class Publisher:
    """Puts the job's snapshot in Redis every `interval_s` (for `shiftstream serve`'s dashboard), when ticked."""

    def __init__(self, metrics: JobMetrics, sink, key: str, interval_s: float, monotonic=time.monotonic):
        self.metrics, self.sink, self.key, self.interval = metrics, sink, key, interval_s
        self.monotonic = monotonic
        self.last = -math.inf

    def tick(self, force: bool = False) -> None:
        now = self.monotonic()
        if force or now - self.last >= self.interval:
            import orjson

            self.last = now
            self.metrics.point()
            self.sink.put(self.key, orjson.dumps(self.metrics.snapshot()), max(60_000, int(self.interval * 10_000)))


def serve_metrics(metrics: JobMetrics, host: str, port: int):
    """Prometheus' text format on http://host:port/metrics, from a daemon thread (prometheus-client's server)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=metrics.registry)
