"""Schema registries: ids for schemas in the Confluent wire format."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

from fastavro.schema import to_parsing_canonical_form

from .avro import load_schema
from .errors import UnknownSchemaId

PROJECT_SCHEMAS = ("interaction", "privacy_request", "decision")


class SchemaRegistry(Protocol):
    """Where schema ids come from: `register` a schema under a subject, look one up by `schema(id)`."""

    def register(self, subject: str, schema: dict) -> int: ...

    def schema(self, schema_id: int) -> dict: ...


def fingerprint_id(schema: dict) -> int:
    """A stable 31-bit id from the schema's Parsing Canonical Form, the same in every process."""
    canonical = to_parsing_canonical_form(schema)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:4], "big") & 0x7FFFFFFF


class MemoryRegistry:
    """An in-process registry whose ids are fingerprints, so separate processes agree without a server.

    Our own schemas are known from the start; others become known when registered.
    """

    def __init__(self, preload: bool = True):
        self._by_id: dict[int, dict] = {}
        self.subjects: dict[str, list[int]] = {}
        if preload:
            for name in PROJECT_SCHEMAS:
                self.register(f"shiftstream.{name}", load_schema(name))

    def register(self, subject: str, schema: dict) -> int:
        sid = fingerprint_id(schema)
        self._by_id[sid] = schema
        versions = self.subjects.setdefault(subject, [])
        if sid not in versions:
            versions.append(sid)
        return sid

    def schema(self, schema_id: int) -> dict:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the registry") from None


class HttpRegistry:
    """A client for a Confluent-compatible schema registry's REST API (register, fetch by id)."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return json.loads(resp.read())

    def register(self, subject: str, schema: dict) -> int:
        return int(self._call("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema)})["id"])

    def schema(self, schema_id: int) -> dict:
        try:
            return json.loads(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UnknownSchemaId(f"schema id {schema_id} is not in the registry at {self.url}") from None
            raise


class FileRegistry(MemoryRegistry):
    """A registry in a directory, shared by the processes of one host: ids are fingerprints (as `memory://`), and
    every registered schema is written to `<dir>/<id>.avsc` (atomically), so a consumer resolves a writer schema a
    producer in another process registered."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def register(self, subject: str, schema: dict) -> int:
        sid = super().register(subject, schema)
        path = self.dir / f"{sid}.avsc"
        if self._read(path) is None:  # absent, or left unreadable by a crash: (re)write it
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{sid}.", suffix=".tmp")  # unique per writer
            with os.fdopen(fd, "w") as fo:
                fo.write(json.dumps(schema))
                fo.flush()
                os.fsync(fo.fileno())
            os.replace(tmp, path)
        return sid

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def schema(self, schema_id: int) -> dict:
        try:
            return super().schema(schema_id)
        except UnknownSchemaId:
            schema = self._read(self.dir / f"{schema_id}.avsc")
            if schema is None:
                raise UnknownSchemaId(f"schema id {schema_id} is not in the registry at {self.dir}") from None
            self._by_id[schema_id] = schema
            return schema


def registry_from_url(url: str, writer_schemas: tuple | list = ()) -> SchemaRegistry:
    """`memory://` for the in-process registry, `file://DIR` for one shared through a directory, `http(s)://host:port`
    for a real one. `writer_schemas`: .avsc files of other (evolved) writer schemas to register at start, so
    messages written with them are resolved against our reader schema instead of refused."""
    if url.startswith("memory://"):
        reg: SchemaRegistry = MemoryRegistry()
    elif url.startswith("file://"):
        reg = FileRegistry(url[len("file://"):])
    elif url.startswith(("http://", "https://")):
        return HttpRegistry(url)  # a real registry knows its writers' schemas
    else:
        raise ValueError(f"schema registry url must start with memory://, file://, http:// or https://, got {url!r}")
    for path in writer_schemas:
        schema = json.loads(Path(path).read_text())
        reg.register(f"writer.{schema.get('name', 'schema')}", schema)
    return reg
