"""Avro object container files (`.avro`): write with our schemas' headers, read back with int timestamps."""
from __future__ import annotations

import hashlib
import io
import json
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator

import fastavro
from fastavro import schemaless_reader
from fastavro.schema import to_parsing_canonical_form

from .avro import AvroCodec, codec
from .errors import BadValue, Truncated
from .varint import read_long_from


def write_container(dest: str | Path | IO[bytes], schema: str | AvroCodec, records: Iterable[dict],
                    seed: int | None = None, codec_name: str = "null") -> None:
    """Write records to an `.avro` file; with a seed the file's bytes are reproducible (fixed sync marker)."""
    c = codec(schema) if isinstance(schema, str) else schema
    marker = hashlib.sha256(f"shiftstream-sync-{seed}".encode()).digest()[:16] if seed is not None else None
    if isinstance(dest, (str, Path)):
        with open(dest, "wb") as fo:
            fastavro.writer(fo, c.parsed_with_logical, records, codec=codec_name, sync_marker=marker)
    else:
        fastavro.writer(dest, c.parsed_with_logical, records, codec=codec_name, sync_marker=marker)


def read_container(src: str | Path | IO[bytes], schema: str | AvroCodec | None = None) -> Iterator[dict]:
    """Records of an `.avro` file, resolved to `schema` when given, timestamps as int milliseconds.

    Blocks are read here and records decoded with fastavro's schemaless reader, which keeps timestamps as
    ints and runs about twice as fast as `fastavro.reader` with a reader schema.
    """
    if isinstance(src, (str, Path)):
        with open(src, "rb") as fo:
            yield from _records(fo, schema)
    else:
        yield from _records(src, schema)


def _long(fo: IO[bytes]) -> int | None:
    try:
        return read_long_from(fo)
    except Truncated:
        raise Truncated("container file cut short inside a block header") from None


def _header(fo: IO[bytes]) -> tuple[dict, str, bytes]:
    if fo.read(4) != b"Obj\x01":
        raise BadValue("not an Avro object container file (bad magic)")
    meta: dict[str, bytes] = {}
    while True:
        n = _long(fo)
        if not n:
            break
        if n < 0:
            n = -n
            _long(fo)
        for _ in range(n):
            key = fo.read(_long(fo)).decode()
            meta[key] = fo.read(_long(fo))
    sync = fo.read(16)
    return json.loads(meta["avro.schema"]), meta.get("avro.codec", b"null").decode(), sync


def _records(fo: IO[bytes], schema: str | AvroCodec | None) -> Iterator[dict]:
    writer_json, codec_name, sync = _header(fo)
    if codec_name not in ("null", "deflate"):
        raise BadValue(f"container codec {codec_name!r} is not supported (null, deflate)")
    writer = AvroCodec(writer_json)
    reader = None
    if schema is not None:
        reader = codec(schema) if isinstance(schema, str) else schema
        if to_parsing_canonical_form(reader.schema) == to_parsing_canonical_form(writer_json):
            reader = None
    w, r = writer._parsed, (reader._parsed if reader is not None else None)
    read = schemaless_reader
    while True:
        count = _long(fo)
        if count is None:
            return
        size = _long(fo)
        data = fo.read(size)
        if len(data) != size:
            raise Truncated(f"container block of {size} bytes cut short at {len(data)}")
        if codec_name == "deflate":
            data = zlib.decompress(data, -15)
        if fo.read(16) != sync:
            raise BadValue("container block does not end with the file's sync marker (corrupt file)")
        bio = io.BytesIO(data)
        for _ in range(count):
            yield read(bio, w, r)


def container_schema(src: str | Path) -> dict:
    """The writer schema in an `.avro` file's header."""
    with open(src, "rb") as fo:
        return _header(fo)[0]
