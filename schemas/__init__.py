"""The Avro contract: schemas (`*.avsc`) and their codecs for files and Kafka messages."""
from .codec import AvroCodec, codec, load_schema
from .container import read_container, write_container
from .errors import DecodeError, EncodeError
from .frames import read_frames, write_frames
from .registry import HttpRegistry, MemoryRegistry, SchemaRegistry, registry_from_url
from .wire import WireCodec

__all__ = [
    "AvroCodec", "codec", "load_schema", "read_container", "write_container", "read_frames", "write_frames", "DecodeError", "EncodeError",
    "SchemaRegistry", "MemoryRegistry", "HttpRegistry", "registry_from_url", "WireCodec",
]
