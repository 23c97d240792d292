"""The reference runner's checkpoints: its state, the next offset of every partition and the byte length of each
side-output file, in one file written atomically (temp file, fsync, rename), so a kill -9 at any moment leaves
either the previous checkpoint or the new one.

On start the runner restores the checkpoint, truncates its side-output files to the recorded lengths and seeks
every partition to the recorded offset: what follows is the same input in the same order, so Redis and the files
end as after an unbroken run (decision writes are idempotent; the files get each record once). The file holds
pseudonymised keys only, never a raw id, and is read back with pickle: keep it where the job's own checkpoints
are kept (`engine.checkpoint_dir`), not where others can write."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run (other topics, another version): the message says what to do."""


def path_for(checkpoint_dir: str, group: str) -> Path:
    """Where a consumer group's reference-runner checkpoint lives."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in group)
    return Path(checkpoint_dir) / "reference" / f"{safe}.snapshot"


def save(path: Path, job_state: dict, offsets: dict, outputs: dict, topics: list[str],
         parent: int | None = None) -> int:
    """Write a checkpoint atomically; returns its size in bytes. parent: written by a forked child of that
    process, which must still be alive when the file is put in place (a restarted job may own it by then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    data = pickle.dumps({"version": VERSION, "job": job_state, "offsets": offsets, "outputs": outputs,
                         "topics": sorted(topics)}, protocol=pickle.HIGHEST_PROTOCOL)
    with open(tmp, "wb") as fo:
        fo.write(data)
        fo.flush()
        os.fsync(fo.fileno())
    if parent is not None and os.getppid() != parent:
        os.unlink(tmp)
        raise CheckpointError("the job that forked this checkpoint is gone: not put in place")
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(data)


def load(path: Path) -> dict | None:
    """The checkpoint at path (None: there is none)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        snap = pickle.loads(data)
    except Exception as exc:  # cut short or not ours: say where and what to do, not a traceback
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}): delete it to start from "
                              "the committed offsets") from None
    if not isinstance(snap, dict) or snap.get("version") != VERSION:
        version = snap.get("version") if isinstance(snap, dict) else None
        raise CheckpointError(f"{path}: checkpoint version {version!r} is not {VERSION}: delete it to start over")
    return snap


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
