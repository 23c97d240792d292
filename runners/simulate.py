"""`shiftstream simulate`: write simulated events, privacy requests, broken messages and the ground truth."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import fields
from pathlib import Path

from shiftstream.schemas import MemoryRegistry, WireCodec, write_container, write_frames

from . import logs
from .errors import usage
from .simulator import SimConfig, Simulation, simulate, wire_messages


def sidecar_paths(out: Path) -> dict[str, Path]:
    """Where the files beside an output go: truth, privacy requests, broken messages."""
    stem = out.with_suffix("")
    ext = out.suffix or ".avro"
    return {"truth": Path(f"{stem}.truth.json"), "privacy": Path(f"{stem}.privacy{ext}"),
            "bad": Path(f"{stem}.bad.frames")}


def write_outputs(sim: Simulation, out: Path, seed: int) -> dict[str, Path]:
    """Write a simulation to files: `.avro` (container, broken messages beside it) or `.frames` (all in one)."""
    paths = sidecar_paths(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".frames":
        wire = WireCodec(MemoryRegistry(), "interaction")
        write_frames(out, wire_messages(sim, wire))
        pwire = WireCodec(MemoryRegistry(), "privacy_request")
        write_frames(paths["privacy"], (pwire.encode(p) for p in sim.privacy))
        paths.pop("bad")
    else:
        write_container(out, "interaction", sim.events, seed=seed)
        write_container(paths["privacy"], "privacy_request", sim.privacy, seed=seed)
        write_frames(paths["bad"], (m for _, m in sim.malformed))
    paths["truth"].write_text(json.dumps(sim.truth, separators=(",", ":")))
    paths["events"] = out
    return paths


def produce(sim: Simulation, bootstrap: str, topic: str, privacy_topic: str, rate: float | None,
            progress: bool = True) -> int:
    """Produce the simulation to Kafka in the wire format, optionally at `rate` events/s; returns messages sent."""
    from confluent_kafka import Producer
    from tqdm import tqdm

    from shiftstream.jobs.kafka import client_config, produce_waiting

    wire = WireCodec(MemoryRegistry(), "interaction")
    pwire = WireCodec(MemoryRegistry(), "privacy_request")
    # at least once, in order: not idempotent (a broker restart that forgets producer ids would make librdkafka's
    # idempotent producer fail for good, OUT_OF_ORDER_SEQUENCE_NUMBER); a failed delivery is produced again, and a
    # redelivered event is a duplicate the job drops by event_id. One request in flight keeps the order.
    producer = Producer(client_config(bootstrap, **{"linger.ms": 5, "queue.buffering.max.messages": 1_000_000,
                                                    "enable.idempotence": False, "acks": "all",
                                                    "max.in.flight.requests.per.connection": 1,
                                                    "message.timeout.ms": 30_000, "retry.backoff.ms": 200}))
    failed: list[tuple[str, bytes]] = []
    # A broker without replication can lose the tail it had acknowledged when it restarts (noida-db does): seen
    # as offsets that go back. What was acknowledged at or after the reused offset is then sent again.
    acked: dict[tuple[str, int], dict[int, bytes]] = {}
    lost = [0]

    def delivered(err, msg) -> None:
        if err is not None:
            failed.append((msg.topic(), msg.value()))
            return
        book = acked.setdefault((msg.topic(), msg.partition()), {})
        off = msg.offset()
        if book and off <= next(reversed(book)):
            gone = [o for o in book if o >= off]
            lost[0] += len(gone)
            failed.extend((msg.topic(), book.pop(o)) for o in gone)
        book[off] = msg.value()
        if len(book) > 500_000:  # a window far longer than any restart's loss
            del book[next(iter(book))]

    def send(t: str, value: bytes) -> None:
        produce_waiting(producer, t, value, on_delivery=delivered)

    sent = 0
    t0 = time.monotonic()
    bar = tqdm(total=len(sim.events) + len(sim.malformed), desc="produce", unit="msg", disable=not progress,
               file=sys.stderr)
    for msg in wire_messages(sim, wire):
        send(topic, msg)
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
            while failed:  # what the broker refused or lost: again, now (the job drops redeliveries by id)
                send(*failed.pop(0))
            bar.update(1000)
            if rate:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    for p in sim.privacy:
        send(privacy_topic, pwire.encode(p))
    deadline = time.monotonic() + 120
    left = producer.flush(60)
    while time.monotonic() < deadline:
        if not (failed or left):
            _lost_tail(bootstrap, acked, failed, lost)  # a loss with nothing produced after it: end offsets say
            if not failed:
                break
        again, failed[:] = list(failed), []  # the broker was away or lost them: send them again
        for t, value in again:
            send(t, value)
        left = producer.flush(30)
    bar.update(sent % 1000)
    bar.close()
    if lost[0]:
        logs.get("simulate").warning("the broker lost %d acknowledged messages (a restart); they were sent again", lost[0])
    if left or failed:
        from .errors import UserError

        raise UserError(f"{left + len(failed)} messages were not delivered to {bootstrap} within 120s (is the broker "
                        "still up?)")
    return sent


def _lost_tail(bootstrap: str, acked: dict, failed: list, lost: list) -> None:
    """Acknowledged messages at or past a partition's end offset: the broker lost them (nothing came after them
    to reuse their offsets). They go to `failed`, to be sent again."""
    from confluent_kafka import Consumer, TopicPartition

    from shiftstream.jobs.kafka import client_config

    c = Consumer(client_config(bootstrap, **{"group.id": "shiftstream-simulate-check", "enable.auto.commit": False}))
    try:
        for (t, p), book in acked.items():
            if not book:
                continue
            high = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            gone = [o for o in book if o >= high]
            lost[0] += len(gone)
            failed.extend((t, book.pop(o)) for o in gone)
    finally:
        c.close()


def add_arguments(p) -> None:
    defaults = SimConfig()
    p.add_argument("--users", type=int, default=defaults.users)
    p.add_argument("--events", type=int, default=defaults.events)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", type=Path, help="events file: .avro (container) or .frames (wire-format messages)")
    p.add_argument("--days", type=float, default=defaults.days)
    for f in fields(SimConfig):
        if f.name in ("users", "events", "seed", "days"):
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=float, default=f.default, dest=f.name)
    p.add_argument("--kafka-bootstrap", help="also produce to this Kafka bootstrap address")
    p.add_argument("--topic", default="interactions")
    p.add_argument("--privacy-topic", default="privacy-requests")
    p.add_argument("--rate", type=float, help="events/s when producing to Kafka (default: as fast as possible)")
    p.add_argument("--config", type=Path, help="the config whose Kafka security settings the producer uses")
    p.add_argument("--quiet", action="store_true")


def main(args) -> int:
    from tqdm import tqdm

    if not args.out and not args.kafka_bootstrap:
        raise usage("give --out FILE and/or --kafka-bootstrap HOST:PORT")
    if args.out and args.out.suffix not in (".avro", ".frames"):
        raise usage(f"--out {args.out}: give a .avro (container) or .frames (wire-format messages) file name")
    if args.kafka_bootstrap:
        from shiftstream.jobs.kafka import kafka_reachable
        from shiftstream.transforms.config import load_config

        from .run import use_kafka_security

        use_kafka_security(load_config(args.config))
        kafka_reachable(args.kafka_bootstrap)  # before minutes of simulation, not after
    cfg = SimConfig(**{f.name: getattr(args, f.name) for f in fields(SimConfig)})
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.events, desc="simulate", unit="ev", disable=args.quiet, file=sys.stderr, mininterval=0.5)
    sim = simulate(cfg, progress=bar.update)
    bar.close()
    t_gen = time.perf_counter() - t0
    written = {}
    if args.out:
        written = write_outputs(sim, args.out, cfg.seed)
    sent = None
    if args.kafka_bootstrap:
        sent = produce(sim, args.kafka_bootstrap, args.topic, args.privacy_topic, args.rate, not args.quiet)
    elapsed = time.perf_counter() - t0
    c = sim.truth["counts"]
    print(f"simulated {c['events']:,} events ({c['deliveries']:,} deliveries) for {c['users']:,} users "
          f"in {elapsed:.1f}s ({c['events'] / max(elapsed, 1e-9):,.0f} events/s; generation {t_gen:.1f}s)")
    print(f"  sessions {c['sessions']:,}  shifts {c['shifts']:,}  late {c['late']:,}  duplicates {c['duplicates']:,}  "
          f"malformed {c['malformed']:,}  privacy requests {c['privacy']:,}")
    types: dict[str, int] = {}
    for u in sim.truth["users"].values():
        types[u["type"]] = types.get(u["type"], 0) + 1
    print("  behaviour types: " + ", ".join(f"{k} {v}" for k, v in sorted(types.items())))
    for name, path in written.items():
        print(f"  {name:<8} {path}")
    if sent is not None:
        print(f"  produced {sent:,} messages to {args.kafka_bootstrap} topic {args.topic}")
    return 0
