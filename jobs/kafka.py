"""Kafka delivery for the jobs: the reference runner's consumer loop and commit points, and the admin helpers
(end offsets, committed offsets) that runs and tests share. Offsets are committed only with a checkpoint of the
runner's state, after the decisions before them are in Redis."""
from __future__ import annotations

import logging
import os
import signal
import time

from shiftstream.transforms.config import Config

from .collector import Freezer
from .reference import ReferenceJob

_LOG = logging.getLogger("shiftstream.kafka")
BATCH = 1000  # messages taken from the consumer per loop, at most


class OffsetOutOfRange(RuntimeError):
    """A partition's offset to resume from is beyond the log (the message says what to do)."""


class KafkaUnreachable(ConnectionError):
    """No broker answered at the bootstrap address (the message says where, and what to check)."""


def client_config(bootstrap: str, **extra) -> dict:
    """librdkafka settings for our clients: the config's security settings (jobs/kafka_security.py: `use`), and
    its log lines to the `shiftstream.kafka` logger (quiet unless --debug) instead of pages on stderr."""
    from .kafka_security import current

    return {"bootstrap.servers": bootstrap, "logger": _LOG, **current(), **extra}


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


class Durable:
    """A side output that can be synced and rewound (the reference runner's JSON-lines files)."""

    def sync(self) -> int: ...          # flush and fsync; returns the length to rewind to

    def rewind(self, length: int) -> None: ...


def run_kafka(job: ReferenceJob, cfg: Config, bootstrap: str, topic: str, privacy_topic: str,
              idle_exit: float | None, progress: bool, group: str | None = None,
              outputs: dict[str, Durable] | None = None) -> dict:
    """Consume events and privacy requests until stopped (SIGTERM, Ctrl-C) or, with `idle_exit`, until the topics
    are quiet that long (then the input counts as ended: every buffered event applies, as a Flink drain).

    Every `engine.checkpoint_interval` (and on a stop or a rebalance) the runner checkpoints: decisions flushed to
    Redis (every reply read), side outputs synced, its state written atomically with the next offset of every
    partition (jobs/snapshots.py), then those offsets committed. A failed commit loses nothing (the checkpoint holds
    the offsets; the next one commits again). On start it restores the checkpoint and seeks to its offsets.
    One reference runner per group (it assigns itself every partition; it is the oracle, not the scale-out
    form). Returns what happened (counts)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

    from . import snapshots

    group = group or cfg.kafka.group_id
    outputs = outputs or {}
    path = snapshots.path_for(cfg.engine.checkpoint_dir, group)
    snap = snapshots.load(path)
    positions: dict[tuple[str, int], int] = {}
    report = {"restored": False, "checkpoints": 0, "commit_failures": 0, "partitions": 0}
    if snap is not None:
        if snap["topics"] != sorted([topic, privacy_topic]):
            raise snapshots.CheckpointError(f"the checkpoint {path} is for topics {', '.join(snap['topics'])}: pass the same topics, "
                             "another --group-id, or delete it to start over")
        job.restore(snap["job"])
        positions = dict(snap["offsets"])
        for name, out in outputs.items():
            if name in snap["outputs"]:  # an output the checkpoint does not know is left as it is
                out.rewind(snap["outputs"][name])
        report["restored"] = True
        _LOG.info("restored %s: %d users, %d partitions", path, len(job.states), len(positions))

    def committed_cb(err, partitions) -> None:
        if err is not None:  # the broker away or restarting: the checkpoint has the offsets
            report["commit_failures"] += 1
            _LOG.warning("offset commit failed (%s); the checkpoint holds the offsets, the next one commits again",
                         err.str() if hasattr(err, "str") else err)

    # the partitions are assigned, not subscribed: one reference runner reads every partition of both topics, so a
    # restart resumes at once (no wait for a dead member's session to lapse) and a broker restart costs no
    # rebalance; the group id is still where offsets are committed, for lag monitoring and `committed_total`
    # auto.offset.reset error: a checkpoint offset past the log's end (a broker that lost acknowledged messages,
    # retention) must stop the run, not silently replay the partition from its start
    consumer = Consumer(client_config(bootstrap, **{"group.id": group, "auto.offset.reset": "error",
                                                    "enable.auto.commit": False, "on_commit": committed_cb}))
    held: set[tuple[str, int]] = set()
    listed = {"at": 0.0}

    def lag() -> dict[str, int]:
        """Messages behind each partition's end, from what the fetches last said (no request to the broker)."""
        out = {}
        for t, p in list(held):
            _, hi = consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
            pos = positions.get((t, p))
            if hi is not None and hi >= 0 and pos is not None:
                out[f"{t}/{p}"] = max(0, hi - pos)
        return out

    if job.metrics is not None:
        job.metrics.lag_probe = lag

    def assign_new() -> None:
        """Take every partition of the two topics not held yet (a topic created later, partitions added), at the
        checkpoint's offset, else the group's committed offset, else the beginning."""
        listed["at"] = time.monotonic()
        try:
            md = consumer.list_topics(timeout=5)
            new = [TopicPartition(t, p) for t in (topic, privacy_topic)
                   if (tm := md.topics.get(t)) is not None and tm.error is None
                   for p in tm.partitions if (t, p) not in held]
            if not new:
                return
            starts = consumer.committed(new, timeout=10)
        except KafkaException as exc:
            _LOG.warning("cannot list partitions (%s); trying again", exc.args[0].str() if exc.args else exc)
            return
        for tp in starts:
            pos = positions.get((tp.topic, tp.partition))
            tp.offset = pos if pos is not None else (tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
        consumer.incremental_assign(starts)
        held.update((tp.topic, tp.partition) for tp in starts)
        # every partition of the events topic holds the watermark back from the start, not from its first event
        job.watermarks.expect([tp.partition for tp in starts if tp.topic == topic], job.monotonic())
        report["partitions"] = len(held)

    def commit(wait: bool = False, offsets: dict | None = None) -> bool:
        """The checkpoint's offsets, asynchronously: a commit never blocks the job; one that fails is reported to
        committed_cb and repeated by the next checkpoint. wait: synchronously; returns whether it succeeded."""
        due = [TopicPartition(t, p, o) for (t, p), o in (positions if offsets is None else offsets).items()]
        if not due:
            return True
        try:
            consumer.commit(offsets=due, asynchronous=not wait)
            return True
        except KafkaException as exc:
            committed_cb(exc.args[0] if exc.args else exc, due)
            return False

    def broker_up() -> bool:
        try:
            consumer.list_topics(timeout=2)
            return True
        except KafkaException:
            return False

    forked: dict = {"pid": None, "offsets": None}
    fork = cfg.engine.checkpoint_fork and hasattr(os, "fork")

    def reap(block: bool = False) -> None:
        """A checkpoint written by a forked child finished: commit its offsets (a failed one: the next
        checkpoint is taken again; nothing is committed past what a checkpoint holds)."""
        pid = forked["pid"]
        if pid is None:
            return
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not done:
            return
        forked["pid"] = None
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            report["checkpoints"] += 1
            commit(offsets=forked["offsets"])
        else:
            report["checkpoint_failures"] = report.get("checkpoint_failures", 0) + 1
            _LOG.warning("a background checkpoint failed (exit %s); the next one is taken at its interval", code)

    def checkpoint(background: bool = False) -> None:
        """background: the state is written by a forked child from its copy-on-write image of this process, so the
        loop does not pause to serialize every user's pending events (a second with minutes of lateness)."""
        if background and forked["pid"] is not None:
            reap()
            if forked["pid"] is not None:  # the last one still writing: skip this one rather than wait for it
                report["checkpoints_skipped"] = report.get("checkpoints_skipped", 0) + 1
                return
        reap(block=True)  # a foreground checkpoint waits for one in the background first
        job.flush()
        job.sink.flush()  # every reply read: what the state says is written is in Redis
        lengths = {name: out.sync() for name, out in outputs.items()}
        if background and fork:
            # the child serializes every user touched since the last foreground checkpoint (its incremental
            # bookkeeping stays in the child), at the lowest priority, off the loop
            offsets = dict(positions)
            parent = os.getpid()
            try:
                pid = os.fork()
            except OSError as exc:  # no memory or process for a child: take this one in process
                _LOG.warning("cannot fork a background checkpoint (%s); writing it in process", exc)
                background = False
        if background and fork:
            if pid == 0:  # the child: writes the file, touches neither Kafka nor Redis, and leaves at once
                code = 1
                try:
                    os.nice(19)  # the loop comes first for the CPU (on a small machine they share it)
                    snapshots.save(path, job.snapshot(), offsets, lengths, [topic, privacy_topic], parent=parent)
                    code = 0
                except BaseException as exc:  # noqa: B902 (the parent reports the exit code)
                    os.write(2, f"background checkpoint: {type(exc).__name__}: {exc}\n".encode())
                finally:
                    os._exit(code)
            forked.update(pid=pid, offsets=offsets)
        else:
            snapshots.save(path, job.snapshot(), dict(positions), lengths, [topic, privacy_topic])
            report["checkpoints"] += 1
            commit()
        if time.monotonic() - listed["at"] >= 10:  # partitions added, a topic created since
            assign_new()

    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    # SIGTERM and Ctrl-C only set a flag: the loop stops between messages, never inside the core's calls (a
    # KeyboardInterrupt raised mid-update would leave a half-applied state for the last checkpoint)
    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    interval = cfg.engine.checkpoint_interval / 1000
    drained = failed = False
    freezer = Freezer(cfg.engine.gc_freeze_interval)
    try:
        assign_new()
        checkpoint()  # before the first message: a kill -9 from here on rewinds the side outputs to this point
        last_msg = last_cp = time.monotonic()
        while not stop["now"]:
            # whatever is fetched already, without waiting; else wait for the next message (returns as it comes)
            msgs = consumer.consume(BATCH, 0)
            if not msgs:
                m = consumer.poll(0.2)
                msgs = consumer.consume(BATCH - 1, 0) if m is not None else ()
                if m is not None:
                    msgs.insert(0, m)
            now = time.monotonic()
            got = False
            for m in msgs:
                if m.error():
                    err = m.error()
                    if err.code() == KafkaError._AUTO_OFFSET_RESET:
                        raise OffsetOutOfRange(f"{m.topic()} [{m.partition()}]: the offset to resume from is out of "
                                               f"range ({err.str()}): the broker lost messages or retention removed "
                                               f"them; delete {path} to start from the committed offsets")
                    continue
                got = True
                if m.topic() == privacy_topic:
                    job.on_privacy_message(m.value(), m.partition(), m.offset())
                else:
                    job.on_message(m.value(), m.partition(), m.offset())
                positions[(m.topic(), m.partition())] = m.offset() + 1
            if got:
                last_msg = now
                if len(msgs) < BATCH:  # caught up: write the due decisions now, not a flush interval later
                    job.caught_up()
            else:
                job.idle()  # on the job's own clock
                if idle_exit is not None and held and now - last_msg >= idle_exit:
                    if broker_up():  # quiet, not cut off: a broker outage is not the end of the input
                        drained = True
                        break
                    last_msg = now
            if now - last_cp >= interval:
                checkpoint(background=True)
                last_cp = time.monotonic()
            elif forked["pid"] is not None:
                reap()
            freezer.tick()
    except BaseException:
        failed = True  # e.g. Redis gone past redis.retry_for: no checkpoint, no commit past what is written
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        try:
            if forked["pid"] is not None:
                reap(block=True)  # (a finished child's offsets are covered by its file: committed)
            if failed:
                pass
            elif drained:  # the input ended: apply everything, commit all, and leave no state to resume
                checkpoint()  # first a resumable one, kept should the final commit fail
                job.finish()
                if commit(wait=True):
                    snapshots.remove(path)
                else:
                    _LOG.warning("the final offset commit failed: %s is kept, a restart resumes from it", path)
            else:  # stopped: keep every buffered event in the checkpoint, to resume exactly
                checkpoint()
        finally:
            freezer.close()
            consumer.close()  # on every exit path, a failed write included (pending commits are sent first)
    return report


def produce_waiting(producer, topic: str, value: bytes, **kw) -> None:
    """producer.produce, waiting (polling its deliveries) while librdkafka's local queue is full."""
    while True:
        try:
            producer.produce(topic, value, **kw)
            return
        except BufferError:
            producer.poll(0.05)


def ensure_topic(bootstrap: str, topic: str, why: str) -> bool:
    """Create `topic` (one partition, the broker's default replication) unless it exists; True if created. For the
    topics a job must read from the start, such as the privacy topic: a request produced before the job found the
    topic must not be missed."""
    from confluent_kafka.admin import AdminClient, NewTopic

    if topic_ends(bootstrap, [topic])[topic] >= 0:
        return False
    admin = AdminClient(client_config(bootstrap))
    try:
        admin.create_topics([NewTopic(topic, 1, -1)])[topic].result(15)
    except Exception as exc:  # created meanwhile by another client: as good
        if "exist" not in str(exc).lower():
            raise
        return False
    logging.getLogger("shiftstream.kafka").info("created topic %s at %s (%s)", topic, bootstrap, why)
    return True


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
