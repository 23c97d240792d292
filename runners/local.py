"""Local servers for the demo and the tests: a redis-server and a Kafka-protocol broker on loopback ports."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float) -> None:
    """Until something listens on 127.0.0.1:port; an error if proc exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s}s")


def process_tree(root: int) -> set[int]:
    """A process and all its descendants (from /proc), e.g. a run and the JVM and workers it started."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += kids.get(p, [])
    return out


class LocalRedis:
    """A throwaway redis-server on a free loopback port, no persistence; use as a context manager."""

    def __init__(self, port: int | None = None, binary: str = "redis-server"):
        self.port = port or free_port()
        self.binary = shutil.which(binary) or binary
        self.dir = tempfile.mkdtemp(prefix="shiftstream-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "LocalRedis":
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_port(self.port, self.proc, "redis-server", 10)
        return self

    def halt(self, save: bool = True) -> None:
        """Stop the server but keep its directory; with `save` its data is written first, so `start()` brings it
        back with the same keys (a restart, as a deployment with persistence would see it)."""
        if self.proc and self.proc.poll() is None:
            if save:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                        s.sendall(b"SHUTDOWN SAVE\r\n")
                        s.recv(100)
                except OSError:
                    pass
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        self.halt(save=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _noida_binary() -> str:
    try:
        import noida_db
    except ImportError as exc:
        raise RuntimeError("noida-db is not installed (pip install noida-db)") from exc
    return str(Path(noida_db.__file__).resolve().parent / "noida-db")


class LocalKafka:
    """A Kafka-protocol broker (noida-db) on a free loopback port, data in a temp dir; a context manager."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="shiftstream-kafka-")
        self.proc: subprocess.Popen | None = None
        self.log = Path(self.dir) / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "LocalKafka":
        binary = _noida_binary()
        self._log_fo = open(self.log, "ab")
        # the binary itself, not the wrapper script: it stops cleanly on SIGINT
        self.proc = subprocess.Popen(
            [binary, "start", "--only", "kafka", "--kafka-port", str(self.port), "--host", "127.0.0.1",
             "--data-dir", str(Path(self.dir) / "data")],
            stdout=self._log_fo, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, self.proc, "noida-db (kafka)", 20)
        return self

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)

    def halt(self) -> None:
        """Stop the broker but keep its data directory: `start()` brings it back with its topics and offsets."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        if getattr(self, "_log_fo", None):
            self._log_fo.close()

    def __enter__(self) -> "LocalKafka":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # a quick manual check: start both, print where they are, stop on Enter
    with LocalRedis() as r, LocalKafka() as k:
        print(r.url, k.bootstrap)
        sys.stdin.readline()
