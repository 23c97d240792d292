"""Schemaless Avro codec for one schema, fast on the hot path, precise on bad bytes."""
from __future__ import annotations

import ast
import copy
import io
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from .diagnose import diagnose
from .errors import DecodeError, EncodeError, IncompatibleSchema, MissingField, TrailingBytes, Truncated

SCHEMA_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def _load_text(name: str) -> str:
    return (SCHEMA_DIR / f"{name}.avsc").read_text()


def load_schema(name: str) -> dict:
    """The JSON form of one of our schemas by file stem: 'interaction', 'privacy_request', 'decision'."""
    return json.loads(_load_text(name))


def strip_logical_types(schema: Any) -> Any:
    """The same schema without logicalType annotations: same bytes, but timestamps stay plain ints (faster)."""
    if isinstance(schema, list):
        return [strip_logical_types(s) for s in schema]
    if isinstance(schema, dict):
        out = {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
        return out
    return schema


class AvroCodec:
    """Encodes and decodes records of one schema as schemaless Avro binary (timestamps as int ms)."""

    def __init__(self, schema: dict | str):
        self.schema: dict = load_schema(schema) if isinstance(schema, str) else copy.deepcopy(schema)
        self.name: str = self.schema.get("name", "?")
        self._raw_json = strip_logical_types(self.schema)
        self._parsed = parse_schema(copy.deepcopy(self._raw_json))
        self.parsed_with_logical = parse_schema(copy.deepcopy(self.schema))

    def encode(self, record: dict) -> bytes:
        bio = io.BytesIO()
        try:
            schemaless_writer(bio, self._parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{self.name}: {exc}") from None
        return bio.getvalue()

    def problem(self, record: dict) -> str | None:
        """What keeps a record from this schema, naming the field ("ts: expected long, got str 'x'"), or None."""
        from fastavro.validation import ValidationError, validate

        unknown = sorted(set(record) - {f["name"] for f in self._raw_json["fields"]})
        if unknown:
            return f"{unknown[0]}: not a field of the {self.name} schema"
        try:
            validate(record, self._parsed, raise_errors=True)
        except ValidationError as exc:
            return _field_error(exc)
        return None

    def decode(self, data: bytes, writer: "AvroCodec | None" = None) -> dict:
        """One record from `data`; `writer` is the codec of the schema the bytes were written with, if different."""
        bio = io.BytesIO(data)
        w = writer or self
        try:
            if w is self:
                rec = schemaless_reader(bio, self._parsed, None)
            else:
                rec = schemaless_reader(bio, w._parsed, self._parsed)
        except SchemaResolutionError as exc:
            msg = str(exc)
            if msg.startswith("No default value for field"):
                raise MissingField(f"{msg} (the writer's schema lacks a required field)") from None
            raise IncompatibleSchema(msg) from None
        except Exception as exc:  # fastavro raises IndexError/EOFError/UnicodeDecodeError...: say what it was
            raise w.explain(data, exc) from None
        if bio.tell() != len(data):
            raise TrailingBytes(f"{len(data) - bio.tell()} bytes left after a {w.name} record")
        return rec

    def explain(self, data: bytes, exc: BaseException | None = None) -> DecodeError:
        """The typed error for bytes this codec could not read."""
        found = diagnose(data, self._raw_json)
        if found is not None:
            return found
        if isinstance(exc, EOFError):
            return Truncated(f"{self.name} record cut short")
        # the library's message can quote the bytes (a raw id among them): only the kind of failure is kept
        return DecodeError(f"{self.name}: {type(exc).__name__} while decoding")

    def encode_many(self, records: Iterable[dict]) -> list[bytes]:
        return [self.encode(r) for r in records]


@lru_cache(maxsize=None)
def _field_error(exc) -> str:
    """fastavro's validation message as "<field>: expected <type>, got <value>"."""
    text = str(exc)
    try:
        text = json.loads(exc.args[0])[0] if exc.args and isinstance(exc.args[0], str) else text
    except (ValueError, IndexError, TypeError):
        pass
    m = re.match(r"^Field\(([\w.]+)\) is None expected (.*)$", text)
    if m:
        return f"{m.group(1).split('.')[-1]}: required (expected {m.group(2)})"
    m = re.match(r"^([\w.]+) is <(.*)> of type <class '(\w+)'> expected (.*)$", text, re.S)
    if m:
        name, value, got, want = m.groups()
        try:
            w = ast.literal_eval(want)
            want = f"one of {', '.join(w['symbols'])}" if isinstance(w, dict) and "symbols" in w else \
                (w.get("type") if isinstance(w, dict) else want)
        except (ValueError, SyntaxError):
            pass
        return f"{name.split('.')[-1]}: expected {want}, got {got} {value[:60]!r}"
    return text[:300]


def codec(name: str) -> AvroCodec:
    """The shared codec for one of our schemas by file stem."""
    return AvroCodec(name)
