"""Checkpoint and savepoint folders: find the newest resumable one, refuse drained ones, stop with a savepoint."""
from __future__ import annotations

import time
from pathlib import Path

DRAINED = "DRAINED"  # marker written into a savepoint taken with a drain: its states are at the end of time


def savepoint_dir(checkpoint_dir: str) -> str:
    """Where savepoints go by default: `savepoints` beside the checkpoint folder."""
    if "://" in checkpoint_dir:
        return checkpoint_dir.rstrip("/") + "-savepoints"
    return str(Path(checkpoint_dir).resolve().parent / "savepoints")


def local_path(path: str) -> Path:
    """A checkpoint location as a local folder (a plain path or file:); other schemes are refused."""
    if path.startswith("file:"):
        return Path("/" + path[len("file:"):].lstrip("/"))
    if "://" in path:
        raise ValueError(f"{path}: only local paths (or file:) can be searched for checkpoints here")
    return Path(path)


def mark_drained(savepoint: str) -> None:
    """Note in a savepoint taken with a drain that it must not be resumed from (see `resumable`)."""
    p = local_path(savepoint)
    if p.is_dir():
        (p / DRAINED).write_text("taken with --drain: the end of event time; do not resume from it\n")


def resumable(path: str) -> str | None:
    """Why a checkpoint or savepoint cannot be resumed from (None: it can)."""
    p = local_path(path)
    if not (p / "_metadata").exists():
        return f"{path} has no _metadata: not a completed checkpoint or savepoint"
    if (p / DRAINED).exists():
        return (f"{path} was taken with a drain: every state in it is at the end of event time, so each later "
                f"event would be late. Start afresh (a new consumer group) instead")
    return None


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest resumable state: a completed checkpoint (chk-N with its _metadata) under checkpoint_dir, or a
    savepoint in the savepoint folder beside it (a stop with a savepoint ends the job, and Flink then discards
    that job's checkpoints). Drained savepoints are skipped. None when there is none."""
    found = [m.parent for m in local_path(checkpoint_dir).glob("*/chk-*/_metadata")]
    found += [m.parent for m in local_path(savepoint_dir(checkpoint_dir)).glob("savepoint-*/_metadata")]
    found = [p for p in found if resumable(str(p)) is None]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def stop_with_savepoint(client, drain: bool = False, directory: str | None = None, timeout_s: float = 120) -> str:
    """Stop a running job with a savepoint; drain: first move the watermark to the end of time. Returns the
    savepoint's path. (PyFlink 2.3's JobClient.stop_with_savepoint calls a Java signature that no longer exists.)"""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    fmt = jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    path = client._j_job_client.stopWithSavepoint(drain, directory, fmt).get(
        int(timeout_s * 1000), jvm.java.util.concurrent.TimeUnit.MILLISECONDS)
    if drain:
        mark_drained(path)
    return path


def wait_checkpoints(checkpoint_dir: str, job_id: str, n: int, client=None, timeout_s: float = 300,
                     stop=None) -> None:
    """Until the job `job_id` has completed n checkpoints of its own under checkpoint_dir (or `stop()` is true)."""
    folder = local_path(checkpoint_dir) / job_id
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob("chk-*/_metadata"))) < n:
        if stop is not None and stop():
            return
        if client is not None and client.get_job_status().result().is_globally_terminal_state():
            raise RuntimeError(f"the job ended before completing {n} checkpoints")
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} completed fewer than {n} checkpoints in {timeout_s}s")
        time.sleep(0.2)
