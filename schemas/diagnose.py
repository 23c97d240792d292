"""Slow path: walk Avro binary by hand to say exactly what is wrong with bytes fastavro rejected."""
from __future__ import annotations

from typing import Any

from .errors import BadUnionBranch, BadValue, DecodeError, Truncated, UnknownEnumSymbol
from .varint import read_long


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, where: str) -> bytes:
        if n < 0:
            raise BadValue(f"negative length {n} at {where}")
        end = self.pos + n
        if end > len(self.data):
            raise Truncated(f"needs {n} bytes at {where} (offset {self.pos}), only {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def long(self, where: str) -> int:
        try:
            value, self.pos = read_long(self.data, self.pos)
        except Truncated:
            raise Truncated(f"varint cut short at {where} (offset {self.pos})") from None
        except BadValue:
            raise BadValue(f"varint longer than 10 bytes at {where}") from None
        return value


def _walk(r: _Reader, schema: Any, where: str, named: dict) -> None:
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        idx = r.long(where)
        if not 0 <= idx < len(schema):
            raise BadUnionBranch(f"union branch {idx} out of range 0..{len(schema) - 1} at {where}")
        _walk(r, schema[idx], where, named)
        return
    t = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(t, (dict, list)):
        _walk(r, t, where, named)
        return
    if isinstance(schema, dict) and "name" in schema:
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
    if t == "null":
        return
    if t == "boolean":
        v = r.take(1, where)[0]
        if v > 1:
            raise BadValue(f"boolean byte {v} at {where}")
    elif t in ("int", "long"):
        r.long(where)
    elif t == "float":
        r.take(4, where)
    elif t == "double":
        r.take(8, where)
    elif t in ("bytes", "string"):
        raw = r.take(r.long(where), where)
        if t == "string":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadValue(f"invalid UTF-8 at {where}: {exc.reason}") from None
    elif t == "fixed":
        r.take(schema["size"], where)
    elif t == "enum":
        idx = r.long(where)
        symbols = schema["symbols"]
        if not 0 <= idx < len(symbols):
            raise UnknownEnumSymbol(f"enum index {idx} at {where}, {schema['name']} has {len(symbols)} symbols")
    elif t == "record":
        for f in schema["fields"]:
            _walk(r, f["type"], f"{where}.{f['name']}" if where else f["name"], named)
    elif t in ("array", "map"):
        while True:
            n = r.long(where)
            if n == 0:
                break
            if n < 0:
                n = -n
                r.long(where)
            for i in range(n):
                if t == "map":
                    r.take(r.long(where), where)
                _walk(r, schema["items" if t == "array" else "values"], f"{where}[{i}]", named)
    else:
        raise DecodeError(f"unsupported type {t!r} at {where}")


def diagnose(data: bytes, writer_schema: dict) -> DecodeError | None:
    """The first problem in `data` read as `writer_schema` (raw JSON form), or None if it reads cleanly."""
    r = _Reader(data)
    try:
        _walk(r, writer_schema, "", {})
    except DecodeError as exc:
        return exc
    if r.pos != len(data):
        from .errors import TrailingBytes

        return TrailingBytes(f"{len(data) - r.pos} bytes left after the record")
    return None
