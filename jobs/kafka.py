"""Kafka delivery for the jobs: the reference runner's consumer loop and commit points, and the admin helpers
(end offsets, committed offsets) that runs and tests share. Offsets are committed only past decisions in Redis."""
from __future__ import annotations

import logging
import signal
import time
from collections import deque

from shiftstream.transforms.config import Config
from shiftstream.transforms.watermarks import NO_WATERMARK

from .reference import ReferenceJob

_LOG = logging.getLogger("shiftstream.kafka")


class CommitPoints:
    """Per partition, the offsets consumed and their events' times. The safe commit point is the first offset
    whose event the watermark has not passed yet: every decision before it is written, none after it is assumed."""

    def __init__(self):
        self.parts: dict[tuple[str, int], deque] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def add(self, topic: str, partition: int, offset: int, ts: int | None) -> None:
        """ts None: done at once (a dead letter, a privacy request)."""
        self.parts.setdefault((topic, partition), deque()).append((offset, NO_WATERMARK if ts is None else ts))

    def due(self, watermark: int) -> list:
        from confluent_kafka import TopicPartition

        out = []
        for (topic, part), q in self.parts.items():
            last = None
            while q and q[0][1] <= watermark:
                last = q.popleft()[0]
            point = q[0][0] if q else (last + 1 if last is not None else None)
            if point is not None and point != self.committed.get((topic, part)):
                self.committed[(topic, part)] = point
                out.append(TopicPartition(topic, part, point))
        return out


class KafkaUnreachable(ConnectionError):
    """No broker answered at the bootstrap address (the message says where, and what to check)."""


def client_config(bootstrap: str, **extra) -> dict:
    """librdkafka settings for our clients: its log lines go to the `shiftstream.kafka` logger (quiet unless
    --debug) instead of pages of connection errors on stderr."""
    return {"bootstrap.servers": bootstrap, "logger": _LOG, **extra}


def kafka_reachable(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when no broker answers (before a consumer or producer would retry forever)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient(client_config(bootstrap)).list_topics(timeout=timeout_s)
    except KafkaException:
        raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap} within {timeout_s:g}s (is the broker running? "
                        "--kafka-bootstrap names it)") from None


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The sum of a group's committed offsets on a topic (0 where nothing is committed)."""
    from confluent_kafka import Consumer

    c = Consumer(client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return 0
        return _committed(c, topic, list(md.partitions))
    finally:
        c.close()


def _committed(consumer, topic: str, partitions: list[int]) -> int:
    from confluent_kafka import TopicPartition

    return sum(max(tp.offset, 0) for tp in consumer.committed([TopicPartition(topic, p) for p in partitions],
                                                              timeout=10))


def run_kafka(job: ReferenceJob, cfg: Config, bootstrap: str, topic: str, privacy_topic: str,
              idle_exit: float | None, progress: bool, group: str | None = None) -> None:
    """Consume events and privacy requests; offsets are committed only up to events whose decisions are written."""
    from confluent_kafka import Consumer

    consumer = Consumer(client_config(bootstrap, **{"group.id": group or cfg.kafka.group_id,
                                                    "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                                    "session.timeout.ms": 6000}))
    consumer.subscribe([topic, privacy_topic])
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    old = signal.signal(signal.SIGTERM, _stop)
    points = CommitPoints()

    def commit() -> None:
        job.sink.flush()  # every reply read: the decisions before the watermark are in Redis
        due = points.due(job.applied_through)
        if due:
            consumer.commit(offsets=due, asynchronous=False)

    job.on_flush = commit
    last_msg = time.monotonic()
    try:
        while not stop["now"]:
            msgs = consumer.consume(1000, 0.2)
            now = time.monotonic()
            if not msgs:
                job.idle()  # on the job's own clock
                if idle_exit is not None and now - last_msg >= idle_exit:
                    break
                continue
            last_msg = now
            for m in msgs:
                if m.error():
                    continue
                if m.topic() == privacy_topic:
                    job.on_privacy_message(m.value(), m.partition(), m.offset())
                    points.add(m.topic(), m.partition(), m.offset(), None)
                else:
                    ts = job.on_message(m.value(), m.partition(), m.offset())
                    points.add(m.topic(), m.partition(), m.offset(), ts)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        job.finish()
        commit()
        consumer.close()


def topic_ends(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Messages in each topic (the sum of its partitions' end offsets; -1 for a topic that does not exist)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(client_config(bootstrap, **{"group.id": "shiftstream-inspect", "enable.auto.commit": False}))
    try:
        md = c.list_topics(timeout=10)
        out = {}
        for t in topics:
            parts = md.topics.get(t)
            if parts is None or parts.error is not None:
                out[t] = -1
                continue
            out[t] = sum(c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1] for p in parts.partitions)
        return out
    finally:
        c.close()


def wait_committed(bootstrap: str, group: str, topic: str, end: int, client=None, poll_s: float = 0.5,
                   timeout_s: float | None = None, stop=None) -> None:
    """Until the group's committed offsets on topic add up to `end` (the Flink source commits on checkpoints), or
    `stop()` is true; client: a JobClient whose job ending first is an error."""
    from confluent_kafka import Consumer

    c = Consumer(client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            if _committed(c, topic, parts) >= end or (stop is not None and stop()):
                return
            if client is not None and client.get_job_status().result().is_globally_terminal_state():
                raise RuntimeError(f"the job ended before reaching offset {end} of {topic}")
            time.sleep(poll_s)
        raise TimeoutError(f"committed offsets of {group} on {topic} did not reach {end} within {timeout_s}s")
    finally:
        c.close()
