"""The Avro contract: schemas (`*.avsc`) and their codecs for files and Kafka messages.

The names below load on first use, so the pure parts (`errors`, `varint`) import without fastavro."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "AvroCodec": "avro", "codec": "avro", "load_schema": "avro", "read_container": "container",
    "write_container": "container", "read_frames": "frames", "write_frames": "frames", "DecodeError": "errors",
    "EncodeError": "errors", "SchemaRegistry": "registry", "MemoryRegistry": "registry", "HttpRegistry": "registry",
    "registry_from_url": "registry", "WireCodec": "wire", "wire_codec": "wire",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'shiftstream.schemas' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
