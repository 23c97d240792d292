"""The StreamExecutionEnvironment for our Python functions, and the Flink settings taken from our config."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def import_root() -> Path:
    """The folder that must be on PYTHONPATH for `import shiftstream` (a checkout's root, or site-packages)."""
    import shiftstream

    return Path(shiftstream.__file__).resolve().parent.parent


def prepare_process() -> str:
    """Before anything starts the Java gateway: the venv's bin on PATH (thread mode's embedded interpreter finds
    pemja there) and this project on PYTHONPATH (our functions are imported inside the Flink workers)."""
    root = str(import_root())
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    return root


def uri(path: str) -> str:
    """A path as a URI for Flink (URIs pass through)."""
    return path if "://" in path else Path(path).resolve().as_uri()


def flink_conf(cfg, mode: str = "thread", restore_from: str | None = None) -> dict[str, str]:
    """The Flink settings this job needs, from our config: execution mode, checkpoints, restore point."""
    from .savepoints import savepoint_dir

    e = cfg.engine
    conf = {
        "python.execution-mode": mode,
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "pipeline.auto-watermark-interval": f"{e.watermark_interval} ms",
        "execution.buffer-timeout.interval": f"{e.buffer_timeout} ms",
        "execution.checkpointing.interval": f"{e.checkpoint_interval} ms",
        "execution.checkpointing.mode": e.checkpoint_mode.upper(),
        "execution.checkpointing.dir": uri(e.checkpoint_dir),
        "execution.checkpointing.num-retained": str(e.checkpoints_retained),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.savepoint-dir": uri(savepoint_dir(e.checkpoint_dir)),
        # the local mini-cluster's servers on engine.bind_address only (loopback by default): the REST endpoint,
        # the BLOB server, and the TaskManager's (the collect sink of a file run listens there); with one
        # TaskManager there is no RPC or data port to bind
        "rest.bind-address": e.bind_address,
        "rest.address": e.bind_address,
        "jobmanager.bind-host": e.bind_address,
        "taskmanager.bind-host": e.bind_address,
        "taskmanager.host": e.bind_address,
    }
    if restore_from:
        conf["execution.state-recovery.path"] = uri(restore_from)
    return conf


def environment(cfg, mode: str = "thread", parallelism: int = 1, restore_from: str | None = None,
                checkpoints: bool = True):
    """A StreamExecutionEnvironment set up for our Python functions (mode: thread or process)."""
    root = prepare_process()
    if mode == "thread":
        # PyFlink starts a Beam "loopback worker pool" gRPC server on every local run, bound to all interfaces and
        # not configurable; thread mode never uses it (its Python runs embedded), and this PyFlink switch skips it.
        # Process mode needs it (and Beam's gRPC servers in the JVM bind all interfaces too: see the README).
        os.environ["_python_worker_execution_mode"] = "process"
    else:
        os.environ.pop("_python_worker_execution_mode", None)
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    conf = Configuration()
    for k, v in flink_conf(cfg, mode, restore_from).items():
        if checkpoints or not k.startswith("execution.checkpointing."):
            conf.set_string(k, v)
    conf.set_string("python.pythonpath", root)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism)
    return env
