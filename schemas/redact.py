"""Payloads kept in dead letters without a raw user id: the id is located in the wire bytes and pseudonymised."""
from __future__ import annotations

from typing import Callable

from .varint import encode_long, string_at


def redact(payload: bytes, pseudonymise: Callable[[str], str]) -> bytes | None:
    """The payload with its user id pseudonymised, or None when the user id cannot be located with certainty.

    Only a Confluent wire-format message (magic byte 0) is trusted to hold an Interaction or PrivacyRequest whose
    second string is the user id; one cut short inside the user id is cut before it. Anything else (plain Avro
    without the header, a wrong magic byte, garbage) could hold a raw id anywhere, so it is not kept."""
    if len(payload) < 5 or payload[0] != 0:
        return None
    first = string_at(payload, 5)
    if first is None:
        return payload if len(payload) == 5 else None
    second = string_at(payload, first[1])
    if second is None:
        return payload[:first[1]]  # the user id would be cut short: drop what is left of it
    start, end = second
    try:
        raw = payload[start:end].decode()
    except UnicodeDecodeError:
        return None
    p = ("pseudonym:" + pseudonymise(raw)).encode()
    return payload[:first[1]] + encode_long(len(p)) + p + payload[end:]
