"""Kafka message values in the Confluent wire format: magic byte 0, 4-byte schema id, Avro binary."""
from __future__ import annotations

import struct

from .avro import AvroCodec, codec
from .errors import BadMagicByte, IncompatibleSchema, Truncated, UnknownSchemaId
from .registry import SchemaRegistry

_HEADER = struct.Struct(">bI")


class WireCodec:
    """Frames one schema's records for Kafka and reads back any registered version of it."""

    def __init__(self, registry: SchemaRegistry, schema: str | AvroCodec, subject: str | None = None):
        self.registry = registry
        self.codec = codec(schema) if isinstance(schema, str) else schema
        self.subject = subject or f"shiftstream.{self.codec.name}"
        self.schema_id = registry.register(self.subject, self.codec.schema)
        self._prefix = _HEADER.pack(0, self.schema_id)
        self._writers: dict[int, AvroCodec] = {self.schema_id: self.codec}

    def encode(self, record: dict) -> bytes:
        return self._prefix + self.codec.encode(record)

    def decode(self, data: bytes) -> dict:
        if len(data) < 5:
            raise Truncated(f"{len(data)} bytes is shorter than the 5-byte wire-format header")
        if data[0] != 0:
            raise BadMagicByte(f"first byte is {data[0]}, the wire format needs 0")
        sid = int.from_bytes(data[1:5], "big")
        writer = self._writers.get(sid)
        if writer is None:
            writer = self._writer_for(sid)
        return self.codec.decode(data[5:], writer)

    def _writer_for(self, sid: int) -> AvroCodec:
        try:
            schema = self.registry.schema(sid)
        except UnknownSchemaId:
            raise
        except Exception as exc:  # a registry that cannot be reached is not the message's fault
            raise UnknownSchemaId(f"schema id {sid} could not be fetched: {exc}") from None
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise IncompatibleSchema(f"schema id {sid} is not a record schema (a key schema?)")
        try:
            writer = AvroCodec(schema)
        except Exception as exc:  # fastavro cannot parse it: the message is unreadable, not the job broken
            raise IncompatibleSchema(f"schema id {sid} cannot be parsed: {type(exc).__name__}") from None
        self._writers[sid] = writer
        return writer


def wire_codec(registry_url: str, schema: str, writer_schemas: tuple | list = ()) -> WireCodec:
    """The codec for one of our schemas on the registry a config names (`kafka.schema_registry_url`, and the
    evolved writer schemas `kafka.writer_schemas` lists)."""
    from .registry import registry_from_url

    return WireCodec(registry_from_url(registry_url, writer_schemas), schema)
