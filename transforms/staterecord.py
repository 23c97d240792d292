"""The compact record of a user's state for an engine's keyed state: `pack(UserState.to_dict(...))` -> bytes,
`unpack(bytes)` -> the same dict.

`UserState.to_dict` stays the contract by name; this is only how it is stored. A record is b"S", the state version
(one byte), then a pickle (protocol 5) of the values alone, in the order `FIELDS[version]` names: the names are
not repeated per user (about a third of a pickled dict, see bench/flink_state.py). A dict whose names are not the
version's (a state of another shape) is stored as a plain pickle, and a plain pickle is read as it is. (The PyFlink
job keeps the record in a pickled-bytes state, so one stored as a pickled dict before the record reads back as that
dict, which it takes as it is.)
"""
from __future__ import annotations

import pickle

MAGIC = 0x53  # "S"; a pickle starts with 0x80

FIELDS = {
    4: ("actions", "armed", "attributed", "base", "decided_at", "erased_at", "exposures", "fired", "granted_at",
        "held", "last_ts", "level", "level_at", "off_at", "pending", "profile", "recency_ms", "revoked_at",
        "seen_slots", "session", "session_open", "settled", "shift", "v", "watermark", "windows"),
}
_SETS = {v: frozenset(names) for v, names in FIELDS.items()}


def pack(d: dict) -> bytes:
    """The record of a state dict (see the module doc)."""
    v = d.get("v")
    names = FIELDS.get(v)
    if names is None or len(d) != len(names) or not _SETS[v].issuperset(d):
        return pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)
    return bytes((MAGIC, v)) + pickle.dumps(tuple([d[k] for k in names]), protocol=pickle.HIGHEST_PROTOCOL)


def unpack(b: bytes) -> dict:
    """The state dict of a record (or of a plain pickle of it)."""
    if b[0] != MAGIC:
        return pickle.loads(b)
    names = FIELDS.get(b[1])
    if names is None:
        raise ValueError(f"a state record of version {b[1]}, which this code does not know: upgrade it")
    return dict(zip(names, pickle.loads(b[2:])))
