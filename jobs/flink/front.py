"""The Java front: a Kafka record deserializer that takes the user's pseudonym and the event time in Java, so that a
PyFlink job needs one Python operator per event (the keyed one). Source: jobs/flink/java/Front.java.

    python -m shiftstream.jobs.flink.front .jars      # compile it (what `make setup` runs; skipped when built)

Built with the JDK's `javac` against the pyflink wheel's `lib/` jars and the Kafka connector's (jobs/flink/jars.py),
into `<jars dir>/shiftstream-front.jar`, again only when the source or the jars it compiles against change.
`bench/flink_front.py` measures it against a Python front. The deployed Kafka job reads both topics through it
(jobs/flink/topology.py), keys by its RowKey, and decodes in the one keyed Python operator (functions.FrontCore).

What it reads: the Confluent wire-format header and the envelope of an Interaction or a PrivacyRequest (event_id or
request_id, user_id, event_type or kind, ts: transforms/envelope.py); the key is the same HMAC pseudonym as
`transforms.pseudonyms.Pseudonymiser`, and each event row carries its partition's own watermark, by the rule of
transforms/watermarks.py. A record it cannot read gets the key "!<partition>:<offset>", never an exception; a record
it can read may still be invalid past the envelope, so the Python side decodes the whole record and dead-letters on
its own judgement."""
from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "java" / "Front.java"
JAR = "shiftstream-front.jar"
PACKAGE = "io.shiftstream.flink"


class FrontBuildError(RuntimeError):
    """The Java front could not be compiled (no JDK, or javac failed: the message says which)."""


def _classpath(jars_dir: Path) -> list[Path]:
    import pyflink

    lib = Path(pyflink.__file__).resolve().parent / "lib"
    return sorted(lib.glob("*.jar")) + sorted(p for p in Path(jars_dir).glob("*.jar") if p.name != JAR)


def _stamp(jars_dir: Path) -> str:
    h = hashlib.sha256(SOURCE.read_bytes())
    for p in _classpath(jars_dir):
        h.update(p.name.encode())
    return h.hexdigest()


def build(jars_dir: str | Path) -> Path:
    """The jar, compiled if missing or stale; returns its path."""
    jars_dir = Path(jars_dir)
    jar, stamp_file = jars_dir / JAR, jars_dir / (JAR + ".sha256")
    want = _stamp(jars_dir)
    if jar.exists() and stamp_file.exists() and stamp_file.read_text().strip() == want:
        return jar
    if not any(p.name != JAR for p in jars_dir.glob("*.jar")):
        raise FrontBuildError(f"no Kafka connector jars in {jars_dir}: run `make setup` (the Java front compiles "
                              "against them)")
    javac = shutil.which("javac")
    if javac is None:
        raise FrontBuildError("no javac: the Java front needs a JDK (make setup installs openjdk-17-jdk-headless)")
    with tempfile.TemporaryDirectory(prefix="shiftstream-front-") as tmp:
        classes = Path(tmp) / "classes"
        cp = ":".join(str(p) for p in _classpath(jars_dir))
        r = subprocess.run([javac, "--release", "17", "-Xlint:all", "-Werror", "-cp", cp, "-d", str(classes),
                            str(SOURCE)], capture_output=True, text=True)
        if r.returncode:
            said = next((line for line in (r.stdout + r.stderr).splitlines() if "error:" in line), "no message")
            raise FrontBuildError(f"javac could not compile {SOURCE.name} (run `make setup`): {said.strip()}")
        part = jar.with_suffix(".part")
        # a jar is a zip; with an entry per folder, which py4j needs to see io.shiftstream.flink as a package
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for d in sorted({p for f in classes.rglob("*.class") for p in f.relative_to(classes).parents
                             if str(p) != "."}):
                z.writestr(d.as_posix() + "/", b"")
            for f in sorted(classes.rglob("*.class")):
                z.write(f, f.relative_to(classes).as_posix())
        part.replace(jar)
    stamp_file.write_text(want + "\n")
    return jar


def event_symbols() -> int:
    """The number of Interaction.event_type symbols (the front refuses an index beyond them)."""
    from shiftstream.schemas.avro import load_schema

    field = next(f for f in load_schema("interaction")["fields"] if f["name"] == "event_type")
    return len(field["type"]["symbols"])


def java_class(name: str):
    """A nested class of Front through py4j (the jar, and the Kafka connector's for the deserializer, must be on
    the gateway's class loader: `env.add_jars`; a class whose dependencies are missing reads as absent)."""
    from pyflink.java_gateway import get_gateway

    return getattr(get_gateway().jvm, f"{PACKAGE}.Front${name}")


EVENTS, PRIVACY = 0, 1  # the event row's source field: Front.EVENTS, Front.PRIVACY
EVENT_FIELDS = ["key", "ts", "partition", "offset", "payload", "event_ts", "own", "source"]


def deserializer(key: bytes, cfg=None, wrap: bool = True, source: int = EVENTS, packed: bool = False):
    """A Front.Deserializer for the pseudonym key: Row(key, event row) for a keyed Python operator (wrap), else the
    event row alone (`event_type()`); packed: Row(key, the event row as bytes, `unpack`), the job's form. `cfg` gives the watermark rule's settings (event_time, limits; the defaults'
    when None); `source` PRIVACY reads PrivacyRequest messages (same envelope, 4 kinds) and tracks no watermark."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import to_jarray

    from shiftstream.transforms.config import load_config

    cfg = cfg or load_config()
    et, lim = cfg.event_time, cfg.limits
    symbols = event_symbols() if source == EVENTS else privacy_kinds()
    d = java_class("Deserializer")(key, to_jarray(get_gateway().jvm.int, []), symbols, wrap or packed, source,
                                   et.allowed_lateness, et.outlier_tolerance, et.outlier_window,
                                   lim.max_message_bytes, lim.max_id_length, et.max_future_skew)
    return d.packed() if packed else d


# The packed event row (Front.Deserializer.pack): source, partition, offset, ts, event_ts, own, the key's length,
# the key, then the value
PACKED = struct.Struct(">biqqqqB")
NULL = -(2**63)  # Long.MIN_VALUE: a null event_ts or own


def unpack(b: bytes) -> tuple:
    """(key, source, partition, offset, ts, event_ts, own, value) of a packed event row; NULL where it has none."""
    source, partition, offset, ts, event_ts, own, n = PACKED.unpack_from(b)
    at = PACKED.size + n
    return b[PACKED.size:at].decode("ascii"), source, partition, offset, ts, event_ts, own, b[at:]


def privacy_kinds() -> int:
    """The number of PrivacyRequest.kind symbols."""
    from shiftstream.schemas.avro import load_schema

    field = next(f for f in load_schema("privacy_request")["fields"] if f["name"] == "kind")
    return len(field["type"]["symbols"])


def event_type():
    """The event row PyFlink's keyed Python function receives (typed: no pickling)."""
    from pyflink.common import Types

    return Types.ROW_NAMED(EVENT_FIELDS,
                           [Types.STRING(), Types.LONG(), Types.INT(), Types.LONG(),
                            Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.LONG(), Types.LONG(), Types.INT()])


def keyed_type(packed: bool = False):
    """Row(key, event row), or Row(key, packed bytes)."""
    from pyflink.common import Types

    return Types.ROW_NAMED(["key", "event"],
                           [Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE()) if packed else event_type()])


def watermarks(cfg=None, source: int = EVENTS):
    """The Flink WatermarkStrategy of a topic read through the front: for events, each split's watermark is the own
    watermark its rows carry (Front.OwnWatermarks), idle after `event_time.watermark_idleness`, event time the Avro
    ts; the privacy topic's holds nothing back."""
    from pyflink.common import WatermarkStrategy

    from shiftstream.transforms.config import load_config

    front = get_front()
    if source == PRIVACY:
        return WatermarkStrategy(front.privacyWatermarks())
    return WatermarkStrategy(front.eventWatermarks((cfg or load_config()).event_time.watermark_idleness))


def get_front():
    from pyflink.java_gateway import get_gateway

    return getattr(get_gateway().jvm, f"{PACKAGE}.Front")


def key_by_user(ds, packed: bool = False):
    """keyBy(Front.RowKey) over a stream of Row(key, event): a PyFlink KeyedStream whose `process` takes a Python
    KeyedProcessFunction over `event_type()` rows, or packed bytes (PyFlink's keyed Python operators want Row(key,
    event) on their input and a Row(STRING) key: they cast the current key to Row)."""
    from pyflink.common import Types
    from pyflink.datastream.data_stream import KeyedStream

    j_keyed = ds._j_data_stream.keyBy(java_class("RowKey")(), Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, Types.PRIMITIVE_ARRAY(Types.BYTE()) if packed else event_type(), ds)


def keyed_stream(env, kafka_source_builder, key: bytes, name: str, watermarks):
    """KafkaSource (the builder's settings, with the Java deserializer) -> keyBy(Front.RowKey) (see `key_by_user`);
    the builder has no Python setter for a record deserializer, so it goes through the Java builder."""
    kafka_source_builder._j_builder.setDeserializer(deserializer(key))
    ds = env.from_source(kafka_source_builder.build(), watermarks, name, type_info=keyed_type())
    return key_by_user(ds)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    jars_dir = Path(argv[0] if argv else ".jars")
    try:
        jar = build(jars_dir)
    except FrontBuildError as exc:
        print(f"front: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"front": str(jar), "bytes": jar.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
