"""The Flink job's counters in Flink's metric system (group `shiftstream` of each operator), for the cluster's
reporters (Prometheus, JMX, ...) and its web UI.

Each function counts in the engine-free vocabulary (`transforms.outputs`, a `Counts`); a `FlinkCounters` copies the
growth of each name into a Flink counter at the function's flushes (a micro-batch, every few thousand records, the
close), never per event: a Flink metric call from Python costs a crossing into Java. Names: `events`,
`dead_letters`, `dead_letters_<reason>`, `decisions_written`, ... (a dot becomes an underscore). Decisions written
also update `decision_latency_ms`, a distribution of the wall-clock time from each event to its decision."""
from __future__ import annotations

import time

SYNC_EVERY = 4096  # records between copies in functions without flushes of their own (the decoder)


class FlinkCounters:
    """Mirrors one function's `Counts` into counters of its metric group (`ctx.get_metrics_group()`)."""

    def __init__(self, metric_group, counts, clock=time.time):
        self.group = metric_group.add_group("shiftstream")
        self.counts, self.clock = counts, clock
        self.sent: dict[str, int] = {}
        self.counters: dict = {}
        self.latency = None

    def sync(self) -> None:
        """Copy what each counter gained since the last call."""
        sent, counters = self.sent, self.counters
        for name, v in list(self.counts.items()):
            d = v - sent.get(name, 0)
            if d:
                c = counters.get(name)
                if c is None:
                    c = counters[name] = self.group.counter(name.replace(".", "_"))
                c.inc(d)
                sent[name] = v

    def written(self, decisions: list) -> None:
        """A `DecisionWriter.on_written` hook: each decision's latency from its event time (ms, wall clock)."""
        if self.latency is None:
            self.latency = self.group.distribution("decision_latency_ms")
        now = int(self.clock() * 1000)
        update = self.latency.update
        for d in decisions:
            update(max(0, now - d["event_time"]))
