"""Dead letters: records that could not be processed, with the reason, and no raw user id inside."""
from __future__ import annotations

import base64
import hashlib
from typing import Callable

from shiftstream.schemas.errors import DecodeError
from shiftstream.schemas.redact import redact


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
