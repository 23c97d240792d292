"""A testing kit: an in-memory decision sink and a one-call reference run, so tests read like the pipeline."""
from __future__ import annotations

import time
from typing import Iterable

from shiftstream.transforms.config import Config, load_config
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

from .reference import Outputs, ReferenceJob


class MemorySink:
    """Keeps the latest decision per user key, like Redis would; counts writes and deletes."""

    def __init__(self):
        self.decisions: dict[str, dict] = {}
        self.shadow: dict[str, tuple[str, dict]] = {}
        self.writes = 0
        self.deletes = 0

    def write(self, decisions: list[dict]) -> None:
        for d in decisions:
            self.decisions[d["user_key"]] = d
        self.writes += len(decisions)

    def mark(self, marks) -> None:
        for key, through, provisional in marks:
            d = self.decisions.get(key)
            if d is not None:
                self.decisions[key] = {**d, "settled_through": through, "provisional": provisional}

    def write_shadow(self, records) -> None:
        for key, version, scores in records:
            self.shadow[key] = (version, scores)

    def delete(self, keys) -> None:
        for k in keys:
            self.decisions.pop(k, None)
            self.shadow.pop(k, None)
        self.deletes += len(keys)

    def flush(self) -> None:
        pass

    def stable(self) -> dict[str, dict]:
        """Decisions without their processing-time field, for comparing runs."""
        return {k: {f: v for f, v in d.items() if f != "updated_at"} for k, d in self.decisions.items()}


class Captured:
    """Side outputs of a run, kept in lists."""

    def __init__(self):
        self.dead_letters: list = []
        self.late: list = []
        self.shifts: list = []
        self.sessions: list = []

    def outputs(self) -> Outputs:
        return Outputs(self.dead_letters.append, self.late.append, self.shifts.append, self.sessions.append)


def run_reference(events: Iterable[dict], cfg: Config | None = None, privacy: Iterable[tuple[int, dict]] = (),
                  sink=None, messages: bool = False, key: bytes = DEV_KEY, scorer=None):
    """Run records (or wire messages) through a ReferenceJob; privacy requests go in before the arrival index given.

    Returns (job, sink, captured)."""
    cfg = cfg or load_config()
    sink = sink if sink is not None else MemorySink()
    cap = Captured()
    job = ReferenceJob(cfg, sink, Pseudonymiser(key), cap.outputs(), scorer=scorer, clock=lambda: 1_800_000_000.0)
    priv = sorted(privacy, key=lambda p: p[0])
    pi = 0
    for i, ev in enumerate(events):
        while pi < len(priv) and priv[pi][0] <= i:
            job.on_privacy(priv[pi][1])
            pi += 1
        if messages:
            job.on_message(ev, 0, i)
        else:
            job.on_record(ev, 0, i)
    for _, p in priv[pi:]:
        job.on_privacy(p)
    job.finish()
    return job, sink, cap


def run_events(events: Iterable[dict], cfg: Config | None = None, key: bytes = DEV_KEY) -> dict[str, dict]:
    """The decisions for a batch of Interaction records, by user key (pseudonym): the core embedded in one call."""
    _, sink, _ = run_reference(events, cfg, key=key)
    return sink.decisions


def redis_decisions(url: str, prefix: str = "ss:d:") -> dict[str, dict]:
    """Every decision in a Redis, by user key, without the processing-time field (comparable with `stable()`)."""
    import redis

    from .redis_sink import decision_from_hash

    client = redis.Redis.from_url(url)
    try:
        out = {}
        for k in client.scan_iter(match=(prefix + "*").encode()):
            d = decision_from_hash(k.decode()[len(prefix):], client.hgetall(k))
            d.pop("updated_at")
            out[d["user_key"]] = d
        return out
    finally:
        client.close()


def shuffled_in_blocks(messages: list, block: int = 8, seed: int = 0) -> list:
    """Arrivals shuffled within consecutive blocks: out of order beyond what the simulator's delays give."""
    import random

    rng = random.Random(seed)
    out = list(messages)
    for i in range(0, len(out) - block, block):
        chunk = out[i:i + block]
        rng.shuffle(chunk)
        out[i:i + block] = chunk
    return out


def kafka_messages(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[bytes]:
    """Every message value of a topic, from the beginning to the end offsets seen now (partition by partition)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"shiftstream-kit-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return []
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions}
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        out: list[bytes] = []
        got = {p: 0 for p in ends}
        deadline = time.monotonic() + timeout_s
        while any(got[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    out.append(m.value())
                    got[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create a topic (nothing if it exists)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
    fut = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    try:
        fut.result(10)
    except Exception as exc:  # KafkaException(TOPIC_ALREADY_EXISTS) is fine
        if "exist" not in str(exc).lower():
            raise
