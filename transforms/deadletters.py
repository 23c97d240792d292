"""Dead letters: records that could not be processed, with the reason, and nothing of the payload but its hash.

A payload that could not be processed cannot be trusted to say where its user id is (a foreign schema, a flipped
length byte, an id pasted into a URL), so no byte of it is kept: the sha256, the length and the source position
(partition, offset) are enough to find it again at the source, where access to raw data is already controlled.
The detail names fields, lengths and positions only, never a field's value."""
from __future__ import annotations

import hashlib

from shiftstream.schemas.errors import DecodeError


def dead_letter(error: Exception, payload: bytes | None, source: str, partition: int | None = None,
                offset: int | None = None, at_ms: int | None = None) -> dict:
    """A dead-letter record: reason code, detail, where it came from, and the payload's sha256 and length."""
    reason = error.reason if isinstance(error, DecodeError) else type(error).__name__
    return {
        "reason": reason,
        "detail": str(error),
        "source": source,
        "partition": partition,
        "offset": offset,
        "payload_sha256": hashlib.sha256(payload).hexdigest() if payload is not None else None,
        "payload_length": len(payload) if payload is not None else None,
        "at": at_ms,
    }
