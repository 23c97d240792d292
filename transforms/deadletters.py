"""Dead letters: records that could not be processed, with the reason, and no raw user id inside."""
from __future__ import annotations

import base64
import hashlib
from typing import Callable

from schemas.errors import DecodeError


def _zigzag(n: int) -> bytes:
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


def _string_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """(start, end) of an Avro string at pos, or None if it does not fit."""
    shift = acc = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            n = (acc >> 1) ^ -(acc & 1)
            return (pos, pos + n) if 0 <= n and pos + n <= len(data) else None
        shift += 7
    return None


def redact(payload: bytes, pseudonymise: Callable[[str], str]) -> bytes | None:
    """The payload with its user id pseudonymised, or None when the user id cannot be located with certainty.

    Only a Confluent wire-format message (magic byte 0) is trusted to hold an Interaction or PrivacyRequest whose
    second string is the user id; one cut short inside the user id is cut before it. Anything else (plain Avro
    without the header, a wrong magic byte, garbage) could hold a raw id anywhere, so it is not kept."""
    if len(payload) < 5 or payload[0] != 0:
        return None
    first = _string_at(payload, 5)
    if first is None:
        return payload if len(payload) == 5 else None
    second = _string_at(payload, first[1])
    if second is None:
        return payload[:first[1]]  # the user id would be cut short: drop what is left of it
    start, end = second
    try:
        raw = payload[start:end].decode()
    except UnicodeDecodeError:
        return None
    p = ("pseudonym:" + pseudonymise(raw)).encode()
    return payload[:first[1]] + _zigzag(len(p)) + p + payload[end:]


def dead_letter(error: Exception, payload: bytes | None, pseudonymise: Callable[[str], str], source: str,
                partition: int | None = None, offset: int | None = None, at_ms: int | None = None) -> dict:
    """A dead-letter record: reason code, detail, where it came from, and the redacted payload (base64)."""
    reason = error.reason if isinstance(error, DecodeError) else type(error).__name__
    kept = redact(payload, pseudonymise) if payload is not None else None
    return {
        "reason": reason,
        "detail": str(error),
        "source": source,
        "partition": partition,
        "offset": offset,
        "payload_b64": base64.b64encode(kept).decode() if kept is not None else None,
        # what is known of a payload not kept: enough to find it again at the source
        "payload_sha256": hashlib.sha256(payload).hexdigest() if payload is not None else None,
        "payload_length": len(payload) if payload is not None else None,
        "at": at_ms,
    }
