"""The Kafka source and sinks of the PyFlink job, and the connector jars they need."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .environment import import_root
from .jars import check


@dataclass(frozen=True)
class KafkaInput:
    """Raw message values from a Kafka topic; bounded: stop at the end offsets seen at start."""
    bootstrap: str
    topic: str
    group_id: str
    bounded: bool = False
    privacy_topic: str | None = None  # consent, erasure and personalization requests (None: none read)


def flink_group(cfg) -> str:
    """The Flink job's consumer group: kafka.group_id with '-flink' appended, so the Flink and the reference
    runners never share committed offsets (a Flink run after a reference run would otherwise read nothing)."""
    return cfg.kafka.group_id + "-flink"


def jars_dir() -> Path:
    """Where the connector jars are: $SHIFTSTREAM_JARS_DIR, else `.jars` in a checkout (what `make setup` fills),
    else `.jars` in the working directory."""
    env = os.environ.get("SHIFTSTREAM_JARS_DIR")
    if env:
        return Path(env)
    checkout = import_root() / ".jars"
    return checkout if checkout.is_dir() else Path(".jars")


def add_jars(env) -> None:
    """The Kafka connector and client jars, hash-checked."""
    env.add_jars(*(p.as_uri() for p in check(jars_dir())))


def kafka_source(src: KafkaInput, properties: dict | None = None, deserializer=None):
    """A KafkaSource of the raw values, or of what `deserializer` (a Java KafkaRecordDeserializationSchema, e.g.
    jobs/flink/front.py's, which adds each record's partition and offset) makes of each record."""
    from pyflink.common.serialization import ByteArraySchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource
    from pyflink.java_gateway import get_gateway

    # committed offsets, else the earliest. PyFlink's own helper names the official connector's shaded Kafka
    # classes; the connector jar we load (jars.json) uses the plain kafka-clients ones.
    jvm = get_gateway().jvm
    start = KafkaOffsetsInitializer(jvm.org.apache.flink.connector.kafka.source.enumerator.initializer
                                    .OffsetsInitializer.committedOffsets(
                                        jvm.org.apache.kafka.clients.consumer.OffsetResetStrategy.EARLIEST))
    b = KafkaSource.builder().set_bootstrap_servers(src.bootstrap).set_topics(src.topic) \
        .set_group_id(src.group_id).set_starting_offsets(start) \
        .set_property("commit.offsets.on.checkpoint", "true") \
        .set_property("partition.discovery.interval.ms", "60000") \
        .set_property("fetch.max.wait.ms", "20")
    for k, v in (properties or {}).items():  # security (jobs/kafka_security.py: java_properties)
        b = b.set_property(k, v)
    if src.bounded:
        b = b.set_bounded(KafkaOffsetsInitializer.latest())
    if deserializer is None:
        b = b.set_value_only_deserializer(ByteArraySchema())
    else:  # (the Python builder has no setter for a record deserializer)
        b._j_builder.setDeserializer(deserializer)
    return b.build()


def kafka_sink(bootstrap: str, topic: str, properties: dict | None = None):
    """At-least-once byte sink: decisions are upserts; a replay after a restore may repeat a dead letter."""
    from pyflink.common.serialization import ByteArraySchema
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink

    b = KafkaSink.builder()
    for k, v in (properties or {}).items():
        b = b.set_property(k, v)
    return b.set_bootstrap_servers(bootstrap) \
        .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(topic)
                               .set_value_serialization_schema(ByteArraySchema()).build()) \
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE).build()
