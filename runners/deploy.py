"""`shiftstream deploy`: a standalone Flink cluster from the PyFlink wheel's distribution, and the job on it.

    shiftstream deploy start [--slots N] [--taskmanagers M]   JobManager + TaskManagers as separate processes, on loopback
    shiftstream deploy submit --kafka-bootstrap B --topic T [--from-savepoint PATH]   `flink run -d -py jobs/flink/main.py`
    shiftstream deploy list                            the cluster's jobs (REST)
    shiftstream deploy metrics JOB_ID                  its counters in Flink's metric system (group shiftstream)
    shiftstream deploy stop JOB_ID [--drain]          `flink stop --savepointPath ...`: prints the savepoint to resume from
    shiftstream deploy shutdown                        stop the TaskManager and the JobManager

The same `flink run -py jobs/flink/main.py -- ...` submits the job to any Flink 2.3 cluster whose Python has this
project installed (README: "Submitting to your own cluster").
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shiftstream.jobs.flink.environment import flink_conf, import_root
from shiftstream.jobs.flink.main import JOB_ARGUMENTS, add_job_arguments
from shiftstream.jobs.flink.savepoints import mark_drained, resumable
from shiftstream.runners.errors import UserError, first_line
from shiftstream.runners.local import free_port
from shiftstream.transforms.config import Config, load_config

ROOT = import_root()
JOB_SCRIPT = Path(__file__).resolve().parent.parent / "jobs" / "flink" / "main.py"


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


class ClusterError(RuntimeError):
    """The cluster did not start, or a command against it failed (the message has the tail of its log)."""


class Cluster:
    """A standalone session cluster: its config dir, logs, pid files and checkpoints under `home`."""

    def __init__(self, home: str | Path = ".shiftstream/cluster"):
        self.home = Path(home).resolve()
        self.conf_dir = self.home / "conf"
        self.state_file = self.home / "cluster.json"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def write_conf(self, cfg: Config, slots: int = 1, mode: str | None = None) -> dict:
        """config.yaml for loopback-only processes, with the job's Python and checkpoint settings."""
        home = flink_home()
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for f in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties"):
            shutil.copy(home / "conf" / f, self.conf_dir / f)
        m = re.search(r"^\s+all: (.*)$", (home / "conf" / "config.yaml").read_text(), re.M)
        if m is None:
            raise ClusterError(f"no env.java.opts.all in {home / 'conf' / 'config.yaml'}: is this the Flink 2.3 wheel?")
        java_opts = m.group(1)
        ports = {"rpc": free_port(), "rest": free_port()}
        cfg = cfg.replace(**{"engine.checkpoint_dir": str(self.home / "checkpoints")})
        conf = {
            "env.java.opts.all": java_opts,
            "env.log.dir": str(self.home / "log"),
            "env.pid.dir": str(self.home / "pids"),
            "io.tmp.dirs": str(self.home / "tmp"),
            "jobmanager.bind-host": "127.0.0.1", "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": ports["rpc"], "jobmanager.memory.process.size": "1024m",
            "taskmanager.bind-host": "127.0.0.1", "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": slots, "taskmanager.memory.process.size": "1728m",
            "rest.address": "127.0.0.1", "rest.bind-address": "127.0.0.1", "rest.port": ports["rest"],
            "parallelism.default": 1,
            "python.pythonpath": str(ROOT),
            **flink_conf(cfg, mode or cfg.engine.execution_mode),
        }
        for d in ("tmp", "log", "pids"):  # flink-daemon.sh writes its .out file without creating the folder
            (self.home / d).mkdir(exist_ok=True)
        # The JVMs' lib folder: the wheel's lib jars plus flink-python, so that pemja (thread mode) is loaded once
        # per TaskManager by the system class loader. Left to each job's class loader, the second job in the same
        # TaskManager fails with NoSuchFieldException: loadedLibraryNames (its native library is loaded already).
        lib = self.home / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        lib.mkdir()
        for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python*.jar")]:
            (lib / jar.name).symlink_to(jar)
        (self.conf_dir / "config.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in conf.items()))
        return ports

    def _env(self) -> dict:
        env = dict(os.environ)
        env["FLINK_HOME"] = str(flink_home())
        env["FLINK_CONF_DIR"] = str(self.conf_dir)
        env["FLINK_LIB_DIR"] = str(self.home / "lib")
        bin_dir = str(Path(sys.executable).parent)  # the venv's python and pemja for thread mode
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def _bin(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        r = subprocess.run([str(flink_home() / "bin" / args[0]), *args[1:]], env=self._env(), capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            said = [x.strip() for x in (r.stderr + r.stdout).splitlines() if x.strip()]
            raise ClusterError(f"{' '.join(args[:2])} failed ({r.returncode}): {said[-1][:300] if said else ''} "
                               f"(logs in {self.home / 'log'})")
        return r

    def start(self, cfg: Config, slots: int = 1, mode: str | None = None, timeout_s: float = 90,
              taskmanagers: int = 1) -> dict:
        """Start the JobManager and `taskmanagers` TaskManagers; wait until they have registered. In thread mode
        a TaskManager runs all its slots' Python in one interpreter (one GIL): to use N cores for Python, run N
        TaskManagers of one slot each."""
        if self.running():
            raise ClusterError(f"a cluster already runs from {self.home} ({self.rest_url()})")
        ports = self.write_conf(cfg, slots, mode)
        self.state_file.write_text(json.dumps(ports))
        self._bin("jobmanager.sh", "start")
        for _ in range(taskmanagers):
            self._bin("taskmanager.sh", "start")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if len(self.rest("/taskmanagers")["taskmanagers"]) >= taskmanagers:
                    return ports
            except ClusterError:  # not answering yet
                pass
            time.sleep(0.5)
        raise ClusterError(f"no TaskManager registered within {timeout_s}s; logs in {self.home / 'log'}")

    def pids(self) -> list[int]:
        """The cluster's JobManager and TaskManager processes that are alive (a stale pid file, after a crash or
        a reboot, may name a process that is not ours: it must be a Flink JVM started with this conf dir)."""
        out = []
        for f in (self.home / "pids").glob("*.pid"):
            for x in f.read_text().split():
                try:
                    cmd = Path(f"/proc/{int(x)}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"org.apache.flink" in cmd and str(self.conf_dir).encode() in cmd:
                    out.append(int(x))
        return out

    def running(self) -> bool:
        return bool(self.pids())

    def shutdown(self, timeout_s: float = 20) -> None:
        """Stop the TaskManager and the JobManager (SIGTERM, then SIGKILL), and forget their pid files."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.home / "pids", ignore_errors=True)

    # -- jobs --------------------------------------------------------------------------------------------------

    def rest_url(self) -> str:
        if not self.state_file.exists():
            raise ClusterError(f"no cluster at {self.home}: start one with `shiftstream deploy start` (or give "
                               "--dir)")
        return f"http://127.0.0.1:{json.loads(self.state_file.read_text())['rest']}"

    def rest(self, path: str) -> dict:
        url = self.rest_url()
        try:
            with urllib.request.urlopen(url + path, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            raise ClusterError(f"the cluster at {self.home} does not answer at {url}: it is stopped; start it "
                               "with `shiftstream deploy start`") from None

    def submit(self, job_args: list[str], savepoint: str | None = None, parallelism: int | None = None) -> str:
        """`flink run -d -py jobs/flink/main.py`; returns the job id."""
        self.rest("/overview")  # a cluster that is up, or one clear line saying there is none
        args = ["flink", "run", "-d"] + (["-s", savepoint] if savepoint else []) + \
            (["-p", str(parallelism)] if parallelism else []) + \
            ["-pyclientexec", sys.executable, "-pyexec", sys.executable, "-py", str(JOB_SCRIPT), *job_args]
        r = self._bin(*args)
        m = re.search(r"JobID ([0-9a-f]{32})", r.stdout)
        if not m:
            raise ClusterError(f"no job id in the output of flink run:\n{r.stdout[-2000:]}")
        return m.group(1)

    def state(self, job_id: str) -> str:
        return self.rest(f"/jobs/{job_id}")["state"]

    def wait_state(self, job_id: str, want: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        state = None
        while time.monotonic() < deadline:
            state = self.state(job_id)
            if state == want:
                return
            if state in ("FAILED", "CANCELED") and want != state:
                break
            time.sleep(0.5)
        raise ClusterError(f"job {job_id} is {state}, not {want}; logs in {self.home / 'log'}")

    def metrics(self, job_id: str, group: str = "shiftstream") -> dict[str, float]:
        """The job's counters in Flink's metric system under `group` (jobs/flink/metrics.py), summed over its
        operators and subtasks: {name: value}, from the REST API."""
        import urllib.parse

        out: dict[str, float] = {}
        for v in self.rest(f"/jobs/{job_id}")["vertices"]:
            base = f"/jobs/{job_id}/vertices/{v['id']}/metrics"
            ids = [m["id"] for m in self.rest(base) if f".{group}." in m["id"]]
            for i in range(0, len(ids), 40):
                got = self.rest(base + "?" + urllib.parse.urlencode({"get": ",".join(ids[i:i + 40])}))
                for m in got:
                    name = m["id"].rsplit(f".{group}.", 1)[1]
                    try:
                        out[name] = out.get(name, 0.0) + float(m["value"])
                    except (TypeError, ValueError):  # a distribution's summary: kept as reported
                        out[name] = m["value"]
        return out

    def stop(self, job_id: str, drain: bool = False) -> str:
        """Stop with a savepoint (drain: the watermark goes to the end of time first); returns its path."""
        self.rest("/overview")  # a cluster that is up, or one clear line saying there is none
        target = (self.home / "savepoints").as_uri()
        r = self._bin("flink", "stop", "--savepointPath", target, *(["--drain"] if drain else []), job_id)
        m = re.search(r"Savepoint completed\. Path: (\S+)", r.stdout)
        if not m:
            raise ClusterError(f"no savepoint path in the output of flink stop:\n{r.stdout[-2000:]}")
        if drain:
            mark_drained(m.group(1))
        return m.group(1)


def add_arguments(p) -> None:
    p.add_argument("--dir", default=".shiftstream/cluster", help="the cluster's config, logs and checkpoints")
    sub = p.add_subparsers(dest="deploy_command", required=True)
    s = sub.add_parser("start", help="start a JobManager and a TaskManager on loopback")
    s.add_argument("--slots", type=int, default=1, help="task slots per TaskManager")
    s.add_argument("--taskmanagers", type=int, default=1,
                   help="TaskManagers to start (thread mode: one Python interpreter each; N of one slot use N cores)")
    s.add_argument("--config", help="YAML config (checkpoint interval and mode, execution mode)")
    s.add_argument("--flink-mode", choices=["thread", "process"])
    s = sub.add_parser("submit", help="submit the job (flink run -d -py jobs/flink/main.py)")
    add_job_arguments(s)
    s.add_argument("--from-savepoint", metavar="PATH")
    s.add_argument("--parallelism", type=int, help="the job's parallelism (flink run -p; default: the cluster's, 1)")
    sub.add_parser("list", help="the cluster's jobs")
    s = sub.add_parser("metrics", help="a job's shiftstream counters in Flink's metric system (JSON)")
    s.add_argument("job_id")
    s = sub.add_parser("stop", help="stop a job with a savepoint; prints its path")
    s.add_argument("job_id")
    s.add_argument("--drain", action="store_true", help="end event time first: close every session (final stop)")
    sub.add_parser("shutdown", help="stop the TaskManager and the JobManager")


def main(args) -> int:
    cluster = Cluster(args.dir)
    c = args.deploy_command
    try:
        if c == "start":
            if args.slots < 1 or args.taskmanagers < 1:
                raise ClusterError("--slots and --taskmanagers must be at least 1")
            ports = cluster.start(load_config(args.config), args.slots, args.flink_mode,
                                  taskmanagers=args.taskmanagers)
            print(f"deploy: cluster up, REST/web UI at http://127.0.0.1:{ports['rest']} (logs {cluster.home / 'log'})")
        elif c == "submit":
            if args.config:
                args.config = str(Path(args.config).resolve())  # the job's client runs from another folder
            job_args = []
            for name in JOB_ARGUMENTS:
                if getattr(args, name):
                    job_args += ["--" + name.replace("_", "-"), getattr(args, name)]
            why = args.from_savepoint and resumable(args.from_savepoint)
            if why:
                raise ClusterError(why)
            job_id = cluster.submit(job_args, args.from_savepoint, args.parallelism)
            cluster.wait_state(job_id, "RUNNING")
            print(f"deploy: job {job_id} running" + (f", restored from {args.from_savepoint}" if args.from_savepoint
                                                     else ""))
        elif c == "list":
            for j in cluster.rest("/jobs/overview")["jobs"]:
                print(f"{j['jid']}  {j['state']:<10} {j['name']}")
        elif c == "metrics":
            print(json.dumps(cluster.metrics(args.job_id), indent=1, sort_keys=True))
        elif c == "stop":
            print(f"deploy: job {args.job_id} stopped; savepoint {cluster.stop(args.job_id, args.drain)}")
        elif c == "shutdown":
            if not cluster.running():
                raise ClusterError(f"no cluster runs from {cluster.home}: nothing to stop")
            cluster.shutdown()
            print("deploy: cluster stopped")
    except ClusterError as exc:
        raise UserError(first_line(exc, 2000)) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(first_line(exc)) from None
    return 0
