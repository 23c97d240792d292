"""Avro's zig-zag varints (longs and lengths), the one implementation every byte walker here uses."""
from __future__ import annotations

from typing import IO

from .errors import BadValue, Truncated


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the zig-zag varint at `pos`; Truncated if cut short, BadValue past 10 bytes."""
    shift = acc = 0
    n = len(data)
    while True:
        if pos >= n:
            raise Truncated(f"varint cut short at offset {pos}")
        b = data[pos]
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7
        if shift > 63:
            raise BadValue(f"varint longer than 10 bytes before offset {pos}")


def read_long_from(fo: IO[bytes]) -> int | None:
    """The next varint of a stream; None at a clean end of the stream (nothing read)."""
    shift = acc = 0
    while True:
        b = fo.read(1)
        if not b:
            if shift == 0:
                return None
            raise Truncated("stream cut short inside a varint")
        acc |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return (acc >> 1) ^ -(acc & 1)
        shift += 7
        if shift > 63:
            raise BadValue("varint longer than 10 bytes")


def encode_long(n: int) -> bytes:
    """The zig-zag varint of n."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """(start, end) of the Avro string or bytes at `pos`, or None when it does not fit in `data`."""
    try:
        n, start = read_long(data, pos)
    except (Truncated, BadValue):
        return None
    return (start, start + n) if 0 <= n and start + n <= len(data) else None
