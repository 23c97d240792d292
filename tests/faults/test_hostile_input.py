"""Hostile input: non-finite numbers, huge strings, evolved and foreign schemas, and bytes fuzzed at random.
Whatever arrives, the job neither crashes nor keeps a raw id in a dead letter, and good events still arrive."""
from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shiftstream.jobs.testing import run_reference
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.schemas.avro import AvroCodec, load_schema
from shiftstream.schemas.registry import FileRegistry, registry_from_url
from shiftstream.transforms.config import load_config
from shiftstream.transforms.ingest import Arrival, Ingest
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

TS = 1_767_571_200_000
NULLS = {k: None for k in ("session_hint", "item_id", "category", "price", "dwell_ms", "scroll_depth", "hover_ms",
                           "page_url", "query", "variant", "device")}


def _rec(i, user="user-1", **kw):
    return {**NULLS, "event_id": f"e-{i}", "user_id": user, "event_type": "purchase", "ts": TS + i * 1000,
            "category": "books", "price": 10.0, **kw}


def _ingest(cfg=None, decode=None):
    cfg = cfg or load_config()
    return Ingest(cfg, Pseudonymiser(DEV_KEY), decode or WireCodec(MemoryRegistry(), "interaction").decode,
                  lambda: TS / 1000 + 86_400, lambda: 0.0)


@pytest.mark.parametrize("price", [math.nan, math.inf, -math.inf])
def test_a_non_finite_price_is_a_dead_letter_and_the_profile_stays_finite(price):
    events = [_rec(i) for i in range(5)] + [_rec(5, price=price)] + [_rec(i) for i in range(6, 9)]
    job, sink, cap = run_reference(events)
    assert [d["reason"] for d in cap.dead_letters] == ["non_finite"]
    assert "not a finite number" in cap.dead_letters[0]["detail"]
    (decision,) = sink.decisions.values()
    assert all(math.isfinite(v) for v in decision["features"].values())
    assert decision["features"]["monetary_total"] == 80.0  # the 8 good purchases


def test_a_non_finite_scroll_depth_is_a_dead_letter():
    _, _, cap = run_reference([_rec(0, scroll_depth=math.nan, event_type="scroll")])
    assert [d["reason"] for d in cap.dead_letters] == ["non_finite"]


def test_over_long_ids_and_strings_are_refused_and_counted_and_state_stays_small():
    huge = "x" * 5_000_000
    events = [_rec(0, user="u" * 10_000), _rec(1, page_url=huge), _rec(2, query="q" * 9000)]
    events += [_rec(10 + i, category=f"{i:03d}" + "c" * 1_000_000) for i in range(30)]  # 30 categories of 1 MB
    events += [_rec(100 + i) for i in range(5)]
    job, sink, cap = run_reference(events)
    assert [d["reason"] for d in cap.dead_letters] == ["too_long"] * 33
    assert job.stats["dead_letters.too_long"] == 33
    assert "user_id is 10000 characters, over limits.max_id_length (128)" in cap.dead_letters[0]["detail"]
    (decision,) = sink.decisions.values()
    assert len(json.dumps(decision)) < 10_000
    assert job.stats["events"] == 5


def test_an_over_large_message_is_refused_before_decoding():
    wire = WireCodec(MemoryRegistry(), "interaction")
    a = _ingest().message(wire.encode(_rec(0, page_url="p" * 70_000)))
    assert a.reason == "too_large" and "limits.max_message_bytes" in a.record["detail"]


def test_limits_are_configurable(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("limits:\n  max_label_length: 8\n")
    cfg = load_config(p)
    assert type(_ingest(cfg).record(_rec(0, category="ninechars"))) is not Arrival
    assert type(_ingest().record(_rec(0, category="ninechars"))) is Arrival


def _evolved():
    s = load_schema("interaction")
    s["fields"].append({"name": "referrer", "type": ["null", "string"], "default": None})
    return s


def test_an_evolved_writer_schema_is_resolved_through_a_shared_file_registry(tmp_path):
    producer = WireCodec(FileRegistry(tmp_path / "reg"), AvroCodec(_evolved()))
    msgs = [producer.encode({**_rec(i), "referrer": "https://example.com"}) for i in range(50)]
    consumer = WireCodec(registry_from_url(f"file://{tmp_path / 'reg'}"), "interaction")  # another process's view
    arrivals = [_ingest(decode=consumer.decode).message(m) for m in msgs]
    assert all(type(a) is Arrival for a in arrivals)
    assert [a.event.event_id for a in arrivals] == [f"e-{i}" for i in range(50)]


def test_writer_schemas_in_the_config_are_resolved_with_the_memory_registry(tmp_path):
    path = tmp_path / "evolved.avsc"
    path.write_text(json.dumps(_evolved()))
    (tmp_path / "c.yaml").write_text(f"kafka:\n  writer_schemas: [{path}]\n")
    cfg = load_config(tmp_path / "c.yaml")
    from shiftstream.jobs.ingest import ingest_for

    producer = WireCodec(MemoryRegistry(), AvroCodec(_evolved()))  # the producer's process: ids are fingerprints
    msgs = [producer.encode({**_rec(i), "referrer": None}) for i in range(50)]
    assert all(type(ingest_for(cfg, Pseudonymiser(DEV_KEY)).message(m)) is Arrival for m in msgs)
    assert all(ingest_for(load_config(), Pseudonymiser(DEV_KEY)).message(m).reason == "unknown_schema_id"
               for m in msgs[:1])  # without it: unknown


def test_an_incompatible_writer_schema_is_a_dead_letter_that_says_why(tmp_path):
    s = load_schema("interaction")
    s["fields"] = [f for f in s["fields"] if f["name"] != "event_type"]  # a required field without a default
    reg = FileRegistry(tmp_path / "reg")
    msg = WireCodec(reg, AvroCodec(s)).encode({k: v for k, v in _rec(0).items() if k != "event_type"})
    a = _ingest(decode=WireCodec(reg, "interaction").decode).message(msg)
    assert a.reason == "missing_field" and "event_type" in a.record["detail"]
    s2 = load_schema("interaction")
    for f in s2["fields"]:
        if f["name"] == "ts":
            f["type"] = "string"
    msg = WireCodec(reg, AvroCodec(s2)).encode({**_rec(0), "ts": "yesterday"})
    a = _ingest(decode=WireCodec(reg, "interaction").decode).message(msg)
    assert a.reason == "incompatible_schema" and a.record["detail"]


def test_bad_config_for_writer_schemas_is_one_problem_line(tmp_path):
    from shiftstream.transforms.config import ConfigError

    (tmp_path / "c.yaml").write_text("kafka:\n  writer_schemas: [/nonexistent.avsc]\n")
    with pytest.raises(ConfigError, match="kafka.writer_schemas: /nonexistent.avsc"):
        load_config(tmp_path / "c.yaml")


# -- no raw id in any dead letter, whatever the bytes ----------------------------------------------------------

def _forms(raw: str) -> list[bytes]:
    """The ways an id could hide in a JSON dead letter: as text, base64 (at any alignment), hex."""
    b = raw.encode()
    out = [b, b.hex().encode()]
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + b)[4:-4]
        if len(enc) >= 8:
            out.append(enc)
    return out


def _leaks(record: dict, raw: str) -> bool:
    blob = json.dumps(record).encode()
    return any(f in blob for f in _forms(raw))


ID = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=12, max_size=40).map(lambda s: "id-" + s)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ID, flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 400)))
def test_a_mangled_message_never_crashes_ingest_nor_leaks_the_id(raw, flips, cut):
    """The id is planted in every string field; bits are flipped anywhere (length bytes included) and the message
    may be cut short. Ingest returns an arrival or a dead letter, never raises, and no dead letter holds the id."""
    wire = WireCodec(MemoryRegistry(), "interaction")
    rec = _rec(1, user=raw, event_id=raw, category=raw, item_id=raw, page_url=f"https://x/?u={raw}", query=raw,
               variant=raw, session_hint=raw)
    data = bytearray(wire.encode(rec))
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    data = bytes(data if cut is None else data[:cut])
    a = _ingest().message(data)
    if type(a) is not Arrival:
        assert not _leaks(a.record, raw)
        assert a.record["payload_length"] == len(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_become_a_typed_dead_letter(data):
    from shiftstream.schemas.errors import DecodeError

    wire = WireCodec(MemoryRegistry(), "interaction")
    try:
        wire.decode(b"\0" + wire._prefix[1:] + data)
    except DecodeError:
        pass
    a = _ingest().message(data)
    assert type(a) is Arrival or a.reason


def test_a_foreign_schema_whose_first_string_is_the_user_id_leaks_nothing():
    foreign = {"type": "record", "name": "Other", "fields": [{"name": "uid", "type": "string"},
                                                           {"name": "note", "type": "string"}]}
    reg = MemoryRegistry()
    consumer = WireCodec(reg, "interaction")
    msgs = [WireCodec(reg, AvroCodec(foreign)).encode({"uid": f"alice-{i:04d}@example.com", "note": "x"})
            for i in range(20)]
    for i, m in enumerate(msgs):
        a = _ingest(decode=consumer.decode).message(m)
        assert type(a) is not Arrival
        assert not _leaks(a.record, f"alice-{i:04d}@example.com")


def test_a_privacy_request_dated_far_ahead_or_with_an_over_long_id_is_a_dead_letter():
    from shiftstream.jobs.reference import ReferenceJob
    from shiftstream.jobs.testing import Captured, MemorySink

    pwire = WireCodec(MemoryRegistry(), "privacy_request")
    cap = Captured()
    job = ReferenceJob(load_config(), MemorySink(), Pseudonymiser(DEV_KEY), cap.outputs(), clock=lambda: TS / 1000)
    far = {"request_id": "r1", "user_id": "user-1", "kind": "erasure", "ts": TS + 400 * 86_400_000, "source": None}
    job.on_privacy_message(pwire.encode(far))
    job.on_privacy_message(pwire.encode({**far, "ts": TS, "user_id": "u" * 500}))
    assert [d["reason"] for d in cap.dead_letters] == ["bad_value", "too_long"]
    assert job.stats.get("privacy_requests", 0) == 0
    job.on_record(_rec(0))  # the user is not blocked by the refused erasure
    assert job.stats.get("blocked", 0) == 0


def test_a_registered_schema_that_is_not_a_record_is_a_dead_letter_not_a_crash(tmp_path):
    reg = FileRegistry(tmp_path / "reg")
    sid = reg.register("keys", "string")
    msg = b"\0" + sid.to_bytes(4, "big") + b"\x02a"
    a = _ingest(decode=WireCodec(reg, "interaction").decode).message(msg)
    assert a.reason == "incompatible_schema" and "not a record schema" in a.record["detail"]


def test_a_file_registry_entry_left_unreadable_is_rewritten(tmp_path):
    reg = FileRegistry(tmp_path / "reg")
    sid = reg.register("x", _evolved())
    (tmp_path / "reg" / f"{sid}.avsc").write_text("")  # a crash mid-write
    FileRegistry(tmp_path / "reg").register("x", _evolved())
    assert FileRegistry(tmp_path / "reg").schema(sid)["fields"][-1]["name"] == "referrer"
