"""Randomness from hashes of the inputs, never from a global generator: a replay, and every engine, draws the same.

`unit(*parts)` is one uniform in [0, 1) from BLAKE2b of the parts (e.g. slot, user pseudonym, event time, snapshot
version), so the same parts give the same number in any process and in any order of calls across users.
`generator(*parts)` is a private `random.Random` seeded the same way, for work that needs many draws from one
seed: its algorithms are pure Python (Mersenne Twister), so no numeric library's build
changes what it draws."""
from __future__ import annotations

import random
from hashlib import blake2b

_SCALE = 1.0 / (1 << 53)


def seed_of(*parts) -> bytes:
    """A 16-byte seed naming the parts (length-prefixed: no part's text can fake a boundary)."""
    h = blake2b(digest_size=16)
    for p in parts:
        b = str(p).encode()
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)
    return h.digest()


def unit(*parts) -> float:
    """One uniform in [0, 1) from the parts (53 bits)."""
    return (int.from_bytes(seed_of(*parts)[:8], "big") >> 11) * _SCALE


def generator(*parts) -> random.Random:
    """A private generator seeded by the parts."""
    return random.Random(int.from_bytes(seed_of(*parts), "big"))
