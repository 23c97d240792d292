"""Ingest: the one way every engine takes a message in, before anything is keyed.

    bytes -> decode -> (bad: a dead letter with the reason) -> check_record -> pseudonymise -> watermark stamp

A dead letter whose envelope is readable and plausible still counts towards its partition's watermark
(transforms/envelope.py), so an engine that keys on the envelope alone tracks the same watermarks.

`Ingest.message(data, partition, offset)` returns an `Arrival` (the user's pseudonym, the core's event tuple and
the source's watermark at its arrival) or a `DeadLetter`. An engine forwards `Arrival.key/event/watermark` to the
user's `Core.accept`, and sends a `DeadLetter.record` to its dead-letter output. Decoding is the engine's to supply
(a `WireCodec.decode`), so this module needs no Avro library.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from shiftstream.schemas.errors import DecodeError, TooLarge

from .deadletters import dead_letter
from .envelope import envelope_ts, plausible
from .events import Ev, Limits, check_record, from_record
from .pseudonyms import Pseudonymiser
from .watermarks import Watermarks


class Arrival(NamedTuple):
    """An accepted message: the user's pseudonym, the event, the source watermark at its arrival (what timers
    follow), and its partition's own watermark then (what it is judged late against: `Core.accept`'s watermark).
    `user_id` is the raw id, for `Pseudonymiser.forget` only: never forward it into state or across an edge."""
    key: str
    event: Ev
    watermark: int
    user_id: str
    own: int


class DeadLetter(NamedTuple):
    """A message that cannot be processed: the dead-letter record (reason, detail, redacted payload)."""
    record: dict
    reason: str


class Ingest:
    """Turns one source's messages into arrivals or dead letters, stamping the source's watermark at arrival.

    `clock()` is the processing clock in seconds (for `event_time.max_future_skew` and the dead letters' `at`);
    `monotonic()` drives partition idleness. Both are the engine's to give, so tests can fix them."""

    def __init__(self, cfg, pseudonymise: Pseudonymiser, decode: Callable[[bytes], dict], clock: Callable[[], float],
                 monotonic: Callable[[], float], source: str = "events"):
        et = cfg.event_time
        self.pseudonymise = pseudonymise
        self.decode = decode
        self.clock = clock
        self.monotonic = monotonic
        self.source = source
        self.max_future_ms = et.max_future_skew
        lim = cfg.limits
        self.limits = Limits(lim.max_id_length, lim.max_label_length, lim.max_text_length)
        self.max_bytes = lim.max_message_bytes
        self.watermarks = Watermarks(et.allowed_lateness, et.watermark_idleness, et.outlier_tolerance,
                                     et.outlier_window)

    def message(self, data: bytes, partition: int = 0, offset: int | None = None) -> Arrival | DeadLetter:
        """One message value (Confluent wire format)."""
        rec = self._decoded(data, partition, offset, True)
        return rec if type(rec) is DeadLetter else self.record(rec, partition, offset, data)

    def _decoded(self, data: bytes, partition, offset, envelope: bool) -> dict | DeadLetter:
        """The decoded record, or a DeadLetter (too large, not decodable). `envelope`: the time of a message that
        does not decode past a readable envelope still counts towards its partition (transforms/envelope.py)."""
        if len(data) > self.max_bytes:
            return self.dead(TooLarge(f"{len(data)} bytes, over limits.max_message_bytes ({self.max_bytes})"), data,
                             partition, offset)
        try:
            return self.decode(data)
        except DecodeError as exc:
            if envelope:
                ts = envelope_ts(data, int(self.clock() * 1000) + self.max_future_ms, self.limits.max_id,
                                 self.max_bytes)
                if ts is not None:
                    self.watermarks.observe(ts, partition, self.monotonic())
            return self.dead(exc, data, partition, offset)

    def record(self, rec: dict, partition: int = 0, offset: int | None = None,
               payload: bytes | None = None) -> Arrival | DeadLetter:
        """One decoded Interaction record (from a container file, or `message` after decoding)."""
        latest = int(self.clock() * 1000) + self.max_future_ms
        problem = check_record(rec, latest, self.limits)
        if problem is not None:
            ts = rec["ts"]
            if plausible(len(rec["event_id"] or ""), len(rec["user_id"] or ""), ts, latest, self.limits.max_id):
                self.watermarks.observe(ts, partition, self.monotonic())  # (transforms/envelope.py)
            return self.dead(problem, payload, partition, offset)
        ev = from_record(rec)
        raw = rec["user_id"]
        wm = self.watermarks
        return Arrival(self.pseudonymise(raw), ev, wm.observe(ev.ts, partition, self.monotonic()), raw, wm.own(partition))

    def event(self, data: bytes, partition: int = 0, offset: int | None = None) -> Ev | DeadLetter:
        """One message value checked and decoded as `message` does, for an engine that keyed it and stamped its
        watermarks from the envelope already (the PyFlink job's Java front): the event, or a DeadLetter."""
        rec = self._decoded(data, partition, offset, False)
        if type(rec) is DeadLetter:
            return rec
        problem = check_record(rec, int(self.clock() * 1000) + self.max_future_ms, self.limits)
        return from_record(rec) if problem is None else self.dead(problem, data, partition, offset)

    def privacy_message(self, data: bytes, decode: Callable[[bytes], dict], partition: int | None = 0,
                        offset: int | None = None):
        """One message of the privacy topic: its PrivacyRequest record, or a DeadLetter (source "privacy") for bytes
        that do not decode or a request that must not be applied (`privacy_problem`)."""
        try:
            rec = decode(data)
        except DecodeError as exc:
            return self.dead(exc, data, partition, offset, source="privacy")
        problem = self.privacy_problem(rec, len(data))
        if problem is not None:  # e.g. an erasure dated years ahead would block the user's events for good
            return self.dead(problem, data, partition, offset, source="privacy")
        return rec

    def privacy_problem(self, rec: dict, size: int | None = None):
        """A BadValue error for a decoded PrivacyRequest that must not be applied (over-long ids or message, a time
        beyond the processing clock plus `max_future_skew`), else None."""
        from shiftstream.schemas.errors import BadValue, TooLong

        if size is not None and size > self.max_bytes:
            return TooLarge(f"{size} bytes, over limits.max_message_bytes ({self.max_bytes})")
        for name in ("request_id", "user_id"):
            v = rec.get(name)
            if not v:
                return BadValue(f"{name} is empty")
            if len(v) > self.limits.max_id:
                return TooLong(f"{name} is {len(v)} characters, over limits.max_id_length ({self.limits.max_id})")
        if (rec["kind"] == "personalization") != (rec.get("level") is not None):
            return BadValue("level: a personalization request needs one (off, basic or full), other kinds none")
        latest = int(self.clock() * 1000) + self.max_future_ms
        if not 0 < rec["ts"] <= latest:
            return BadValue(f"ts {rec['ts']} is not a plausible time in ms (at most {latest}, the processing clock "
                            "plus event_time.max_future_skew)")
        return None

    def dead(self, error: Exception, payload: bytes | None, partition: int | None = 0,
             offset: int | None = None, source: str | None = None) -> DeadLetter:
        """A dead letter for a message of this source (or `source`, e.g. the privacy topic)."""
        d = dead_letter(error, payload, source or self.source, partition, offset,
                        int(self.clock() * 1000))
        return DeadLetter(d, d["reason"])

    def idle(self) -> int:
        """The watermark after idle partitions are released (call when the source is quiet)."""
        return self.watermarks.idle_check(self.monotonic())


class PrivacySchedule:
    """A file run's privacy requests, applied as event time reaches them: before a message, every request dated at
    or before the latest event time seen so far (`due(high)`); at the end, the rest (`rest()`). The one rule the
    reference runner's and the Flink job's file runs, and the conformance suite, apply."""

    def __init__(self, requests):
        self.pending = sorted(requests, key=lambda r: r["ts"])
        self.next = 0

    def due(self, high: int) -> list:
        i, pending = self.next, self.pending
        j = i
        while j < len(pending) and pending[j]["ts"] <= high:
            j += 1
        self.next = j
        return pending[i:j]

    def rest(self) -> list:
        out = self.pending[self.next:]
        self.next = len(self.pending)
        return out

    def __bool__(self) -> bool:
        return self.next < len(self.pending)
