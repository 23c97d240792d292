"""Frames files (`.frames`): Kafka message values on disk, each as a 4-byte big-endian length and the bytes.

A topic stand-in for files: unlike an `.avro` container it can hold malformed records, so file runs see
exactly what a Kafka consumer would.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import Truncated

_LEN = struct.Struct(">I")


def write_frames(dest: str | Path | IO[bytes], messages: Iterable[bytes]) -> int:
    """Append messages to a frames file; returns how many were written."""
    fo = open(dest, "wb") if isinstance(dest, (str, Path)) else dest
    n = 0
    try:
        for m in messages:
            fo.write(_LEN.pack(len(m)))
            fo.write(m)
            n += 1
    finally:
        if isinstance(dest, (str, Path)):
            fo.close()
    return n


def read_frames(src: str | Path | IO[bytes]) -> Iterator[bytes]:
    """Message values of a frames file, in order."""
    fo = open(src, "rb") if isinstance(src, (str, Path)) else src
    try:
        while True:
            head = fo.read(4)
            if not head:
                return
            if len(head) < 4:
                raise Truncated("frames file ends inside a length prefix")
            (n,) = _LEN.unpack(head)
            body = fo.read(n)
            if len(body) < n:
                raise Truncated(f"frames file ends inside a {n}-byte message")
            yield body
    finally:
        if isinstance(src, (str, Path)):
            fo.close()
