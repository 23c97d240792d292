"""Typed errors for bytes that are not a valid record of the expected schema."""
from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that could not be decoded; `reason` is a short machine-readable code."""

    reason = "undecodable"

    def __init__(self, detail: str):
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class Truncated(DecodeError):
    reason = "truncated"


class BadMagicByte(DecodeError):
    reason = "bad_magic_byte"


class UnknownSchemaId(DecodeError):
    reason = "unknown_schema_id"


class UnknownEnumSymbol(DecodeError):
    reason = "unknown_enum_symbol"


class BadUnionBranch(DecodeError):
    reason = "bad_union_branch"


class MissingField(DecodeError):
    reason = "missing_field"


class BadValue(DecodeError):
    reason = "bad_value"


class NonFinite(BadValue):
    reason = "non_finite"


class TooLong(BadValue):
    reason = "too_long"


class TooLarge(DecodeError):
    reason = "too_large"


class TrailingBytes(DecodeError):
    reason = "trailing_bytes"


class IncompatibleSchema(DecodeError):
    reason = "incompatible_schema"


class EncodeError(ValueError):
    """A record that does not fit its schema (missing field, wrong type, unknown symbol)."""
