import copy

import fastavro
import pytest

from shiftstream.schemas import AvroCodec, EncodeError, MemoryRegistry, WireCodec, codec, load_schema, read_container, write_container
from shiftstream.schemas import errors
from shiftstream.schemas.registry import fingerprint_id

EVENT = {"event_id": "e1", "user_id": "u1", "event_type": "click", "ts": 1_767_571_200_123, "category": "books",
         "price": 12.5, "dwell_ms": 300, "scroll_depth": 0.5, "device": "mobile", "variant": "books-v1"}


def full(ev):
    out = {f["name"]: None for f in load_schema("interaction")["fields"]}
    out.update(ev)
    return out


def test_round_trip_keeps_ints_and_defaults():
    c = codec("interaction")
    got = c.decode(c.encode(EVENT))
    assert got == full(EVENT)
    assert isinstance(got["ts"], int)


def test_every_schema_round_trips():
    pr = {"request_id": "r1", "user_id": "u1", "kind": "erasure", "ts": 5, "source": None, "level": None}
    assert codec("privacy_request").decode(codec("privacy_request").encode(pr)) == pr
    d = {"user_key": "k", "segment": "general", "ml_segment": None,
         "shift": {"detected": True, "from_category": "a", "to_category": "b", "score": 0.5, "at": 9},
         "top_categories": ["b", "a"], "features": {"x": 1.0}, "scores": {"propensity": 0.25},
         "next_interest": "b", "chosen_content": "hero-a", "experiment_arm": "bandit", "model_version": None,
         "content": {"hero": {"variant": "hero-a", "propensity": 0.25, "policy": "thompson", "version": 29,
                              "arm": "bandit", "reason": "policy", "paused": ["hero-b"]}}, "policy_version": 29,
         "actions": [{"name": "show_reviews", "at": 1}], "event_time": 1, "settled_through": None, "provisional": 1,
         "updated_at": 2, "personalization": "basic"}
    assert codec("decision").decode(codec("decision").encode(d)) == d


def test_a_decision_written_before_content_choices_reads_with_todays_schema():
    """The decision schema grew compatibly: a record of the schema without `content`, `policy_version` and
    `personalization` reads with today's (the defaults fill in)."""
    import io

    new = load_schema("decision")
    old = copy.deepcopy(new)
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("content", "policy_version", "personalization")]
    d = {"user_key": "k", "segment": "general", "ml_segment": None,
         "shift": {"detected": False, "from_category": None, "to_category": None, "score": 0.0, "at": None},
         "top_categories": [], "features": {}, "scores": {}, "next_interest": None, "chosen_content": None,
         "experiment_arm": None, "model_version": None, "actions": [], "event_time": 1, "settled_through": None,
         "provisional": 0, "updated_at": 2}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(old), d)
    buf.seek(0)
    got = fastavro.schemaless_reader(buf, fastavro.parse_schema(old), fastavro.parse_schema(new),
                                     return_record_name_override=False, return_named_type_override=False)
    got = {**got, "event_time": d["event_time"], "updated_at": d["updated_at"]} if not isinstance(got["event_time"], int) else got
    assert got == {**d, "content": {}, "policy_version": None, "personalization": "full"}


def _evolved(extra_field):
    s = copy.deepcopy(load_schema("interaction"))
    s["fields"].append(extra_field)
    return AvroCodec(s)


def test_old_data_reads_with_newer_schema_that_adds_a_defaulted_field():
    old, new = codec("interaction"), _evolved({"name": "locale", "type": "string", "default": "en"})
    got = new.decode(old.encode(EVENT), writer=old)
    assert got["locale"] == "en" and got["event_id"] == "e1"


def test_new_data_reads_with_the_older_schema():
    old, new = codec("interaction"), _evolved({"name": "locale", "type": "string", "default": "en"})
    got = old.decode(new.encode({**EVENT, "locale": "fr"}), writer=new)
    assert "locale" not in got and got["category"] == "books"


def test_evolution_through_the_wire_format_and_registry():
    reg = MemoryRegistry()
    new = _evolved({"name": "locale", "type": ["null", "string"], "default": None})
    producer = WireCodec(reg, new, subject="shiftstream.interaction")
    consumer = WireCodec(reg, "interaction")
    assert producer.schema_id != consumer.schema_id
    assert consumer.decode(producer.encode({**EVENT, "locale": "de"}))["event_id"] == "e1"


def test_registry_ids_are_the_same_in_every_process():
    assert MemoryRegistry().register("s", load_schema("interaction")) == fingerprint_id(load_schema("interaction"))
    assert WireCodec(MemoryRegistry(), "interaction").schema_id == WireCodec(MemoryRegistry(), "interaction").schema_id


@pytest.mark.parametrize("mangle, error, words", [
    (lambda b: b[:-3], errors.Truncated, "at variant"),
    (lambda b: b"\x07" + b[1:], errors.BadMagicByte, "first byte is 7"),
    (lambda b: b"\x00\x00\x0f\x42\x3f" + b[5:], errors.UnknownSchemaId, "999999"),
    (lambda b: b[:2], errors.Truncated, "shorter than the 5-byte"),
    (lambda b: b + b"\x00\x01", errors.TrailingBytes, "2 bytes left"),
])
def test_bad_wire_bytes_give_typed_errors(mangle, error, words):
    wire = WireCodec(MemoryRegistry(), "interaction")
    with pytest.raises(error) as exc:
        wire.decode(mangle(wire.encode(EVENT)))
    assert words in str(exc.value)
    assert isinstance(exc.value, errors.DecodeError)


def test_unknown_enum_symbol_names_the_field():
    c = codec("interaction")
    body = c.encode(EVENT)
    # event_type's varint comes after event_id ("e1") and user_id ("u1"): 1+2 bytes each
    bad = body[:6] + bytes([0x7E]) + body[7:]  # index 63
    with pytest.raises(errors.UnknownEnumSymbol) as exc:
        c.decode(bad)
    assert "event_type" in str(exc.value) and "63" in str(exc.value)


def test_missing_required_field_is_named_on_decode_and_encode():
    older = copy.deepcopy(load_schema("interaction"))
    older["fields"] = [f for f in older["fields"] if f["name"] != "user_id"]
    writer = AvroCodec(older)
    data = writer.encode({k: v for k, v in EVENT.items() if k != "user_id"})
    with pytest.raises(errors.MissingField) as exc:
        codec("interaction").decode(data, writer=writer)
    assert "user_id" in str(exc.value)
    with pytest.raises(EncodeError) as exc2:
        codec("interaction").encode({k: v for k, v in EVENT.items() if k != "user_id"})
    assert "user_id" in str(exc2.value)


def test_garbage_never_escapes_as_an_untyped_error():
    import random

    c = codec("interaction")
    rng = random.Random(0)
    for _ in range(2000):
        blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        try:
            c.decode(blob)
        except errors.DecodeError:
            pass


def test_container_files_are_reproducible_and_read_by_plain_fastavro(tmp_path):
    recs = [dict(full(EVENT), event_id=f"e{i}", ts=EVENT["ts"] + i) for i in range(50)]
    a, b = tmp_path / "a.avro", tmp_path / "b.avro"
    write_container(a, "interaction", recs, seed=1)
    write_container(b, "interaction", recs, seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert list(read_container(a)) == recs
    with open(a, "rb") as fo:
        plain = list(fastavro.reader(fo, reader_schema=fastavro.schema.load_schema("schemas/interaction.avsc")))
    assert len(plain) == 50 and plain[0]["ts"].year == 2026


def test_container_read_resolves_an_older_writer(tmp_path):
    older = copy.deepcopy(load_schema("interaction"))
    older["fields"] = [f for f in older["fields"] if f["name"] != "variant"]
    p = tmp_path / "old.avro"
    write_container(p, AvroCodec(older), [{k: v for k, v in full(EVENT).items() if k != "variant"}])
    (got,) = list(read_container(p, "interaction"))
    assert got["variant"] is None and got["event_id"] == "e1"


def test_corrupt_container_is_a_typed_error(tmp_path):
    p = tmp_path / "x.avro"
    write_container(p, "interaction", [full(EVENT)] * 10)
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(errors.DecodeError):
        list(read_container(p))


def test_a_record_that_does_not_fit_is_named_by_its_field():
    c = codec("interaction")
    good = {"event_id": "e", "user_id": "u", "event_type": "click", "ts": 1}
    assert c.problem(good) is None
    assert c.problem({**good, "ts": "yesterday"}) == "ts: expected long, got str 'yesterday'"
    assert c.problem({**good, "colour": "red"}) == "colour: not a field of the Interaction schema"
    assert c.problem({k: v for k, v in good.items() if k != "user_id"}) == "user_id: required (expected string)"
    assert c.problem({**good, "event_type": "dance"}).startswith("event_type: expected one of page_view, click")
