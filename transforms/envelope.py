"""The envelope: which messages count towards their partition's watermark frontier (transforms/watermarks.py).

A message's envelope is the start of its Avro record after the Confluent header (magic byte 0, a 4-byte schema
id): event_id (string), user_id (string), event_type (an enum index), ts (long). A message counts towards its
partition's frontier when it is at most `limits.max_message_bytes` long and its envelope is readable and plausible:
both ids non-empty and at most `limits.max_id_length` characters, 0 < ts <= the processing clock plus
`event_time.max_future_skew`. Whether the rest of the record is valid does not matter: the watermark is the
source's, not the payload's, so an engine that reads only the envelope where it keys (the PyFlink job's Java front,
jobs/flink/java/Front.java, which applies this rule) and decodes the rest later, elsewhere, tracks the same frontier
as one that decodes everything at once (the reference runner, through `Ingest`).

Accepted events are plausible by construction (check_record is stricter); only a dead letter needs a look here.
"""
from __future__ import annotations

from shiftstream.schemas.errors import DecodeError
from shiftstream.schemas.varint import read_long

HEADER = 5        # magic byte + schema id
EVENT_TYPES = 8   # Interaction.event_type symbols (the Java front is given the same number)


def chars(b: bytes) -> int:
    """Characters of UTF-8 bytes, valid or not: the bytes that do not continue a character (the Java front's count)."""
    return sum(1 for x in b if x & 0xC0 != 0x80)


def plausible(event_id: int, user_id: int, ts: int, latest_ms: int, max_id: int) -> bool:
    """Ids of these lengths (characters) and this time count towards the frontier."""
    return 0 < event_id <= max_id and 0 < user_id <= max_id and 0 < ts <= latest_ms


def envelope_ts(data: bytes, latest_ms: int, max_id: int, max_bytes: int) -> int | None:
    """The ts of a message whose envelope counts (see the module doc), else None. Never raises."""
    if len(data) > max_bytes or len(data) < HEADER + 1 or data[0] != 0:
        return None
    try:
        n, pos = read_long(data, HEADER)
        if n < 0 or n > len(data) - pos:
            return None
        eid = chars(data[pos:pos + n])
        n, pos = read_long(data, pos + n)
        if n < 0 or n > len(data) - pos:
            return None
        uid = chars(data[pos:pos + n])
        e, pos = read_long(data, pos + n)
        if not 0 <= e < EVENT_TYPES:
            return None
        ts, pos = read_long(data, pos)
    except DecodeError:
        return None
    return ts if plausible(eid, uid, ts, latest_ms, max_id) else None
