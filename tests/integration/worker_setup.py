"""What the supervision tests (test_workers*.py) share: a ringcast whose `jsonrpc` upstream runs
the reference workers of tests/workers/, the fault worker's log (spawns, generates, cancels,
pings, exits), /proc scans for the workers' --marker, and bounded polling.

A ringcast started by WorkerServer also serves the built-in mock as `ringcast-mock`, and the
upstream's model `w` maps to upstream model `ringcast-mock`, so mock_worker.py behind `w`
answers exactly as the mock does under `ringcast-mock`: the tests compare the two on one server.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from harness import RINGCAST_BIN, Server
from worker_pipe import FAULT_WORKER, MOCK_WORKER

MOCK = "ringcast-mock"


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def config_text(command, settings=None, upstream="local", model="w", upstream_model=MOCK):
    values = {"protocol": "ringcast", "command": command}
    values.update(settings or {})
    lines = "\n".join(f"{k} = {toml_value(v)}" for k, v in values.items())
    return f"""
[[upstreams]]
name = "{upstream}"
kind = "jsonrpc"
{lines}

[[models]]
name = "{model}"
upstream = "{upstream}"
upstream_model = "{upstream_model}"
"""


_available = None


def jsonrpc_kind_available():
    """Whether this build has an engine for kind "jsonrpc" (the supervisor's part)."""
    global _available
    if _available is None:
        if not RINGCAST_BIN:
            _available = False
            return False
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(config_text([sys.executable, MOCK_WORKER]))
        try:
            # A start-up that fails right after the routing table is built (a bad --listen)
            # says whether the table was refused for want of an engine.
            out = subprocess.run([RINGCAST_BIN, "--shards", "1", "--no-pin", "--config", f.name,
                                  "--listen", "bad-address"], capture_output=True, text=True, timeout=30)
            # Without an engine: "unknown kind" or "kind jsonrpc has no engine in this build".
            _available = "--listen: expected" in out.stderr
        finally:
            os.unlink(f.name)
    return _available


class WorkerServer:
    """A ringcast with a jsonrpc upstream `local` (model `w`) running `worker` (MOCK_WORKER or
    FAULT_WORKER) with `args`; the fault worker logs to self.log_path and gets a fresh
    --state-dir; every worker carries a unique --marker (self.marker)."""

    def __init__(self, worker=MOCK_WORKER, args=(), settings=None, server_args=(), shards=1, start=True):
        self.dir = tempfile.TemporaryDirectory()
        self.marker = "rcw-" + uuid.uuid4().hex[:12]
        self.log_path = os.path.join(self.dir.name, "worker.log")
        self.state_dir = os.path.join(self.dir.name, "state")
        os.mkdir(self.state_dir)
        self.config = os.path.join(self.dir.name, "ringcast.toml")
        self.worker = worker
        self.settings = dict({"workers": 1, "restart_backoff_base_ms": 50,
                              "restart_backoff_cap_ms": 500}, **(settings or {}))
        self.write(args)
        self.server_args = ["--config", self.config, "--model", MOCK, *server_args]
        self.shards = shards
        self.server = None
        if start:
            self.start()

    def command(self, args, marker=None):
        cmd = [sys.executable, self.worker, "--marker", marker or self.marker]
        if self.worker == FAULT_WORKER:
            cmd += ["--log", self.log_path, "--state-dir", self.state_dir]
        return cmd + [str(a) for a in args]

    def write(self, args=(), marker=None, settings=None):
        with open(self.config, "w") as f:
            f.write(config_text(self.command(args, marker), dict(self.settings, **(settings or {}))))

    def start(self):
        self.server = Server(*self.server_args, shards=self.shards)
        return self.server

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if self.server is not None and self.server.proc.poll() is None:
                self.server.__exit__(*exc)
        finally:
            wait_until("no worker left", lambda: not marked_pids(self.marker), timeout=15, fail=False)
            for pid in marked_pids(self.marker):  # never leave one behind, even when a test fails
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            self.dir.cleanup()

    @property
    def port(self):
        return self.server.port

    def events(self, kind=None):
        """The fault worker's log: [dict], oldest first (optionally only `kind` events)."""
        try:
            with open(self.log_path) as f:
                lines = [json.loads(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []
        return [e for e in lines if kind is None or e["event"] == kind]

    def starts(self):
        return [e["pid"] for e in self.events("start")]


def wait_until(what, check, timeout=20.0, interval=0.05, fail=True):
    """Polls check() until it returns something truthy (returned); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out waiting for {what}")
            return value
        time.sleep(interval)


def proc_entries():
    """[(pid, ppid, state, cmdline)] of every process visible in /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out.append((int(name), int(fields[1]), fields[0], cmdline))
    return out


def marked_pids(marker):
    """Live (not zombie) processes whose command line carries `marker`."""
    return [pid for pid, _, state, cmd in proc_entries() if marker in cmd and state != "Z"]


def zombie_children(ppid):
    return [pid for pid, parent, state, _ in proc_entries() if parent == ppid and state == "Z"]
