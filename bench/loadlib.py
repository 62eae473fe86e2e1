"""Helpers for the streaming benchmarks and the ringcast-load smoke test (Python stdlib only).

A Server is a ringcast process on 127.0.0.1 with a kernel-chosen port (read from its log line
"listening on 127.0.0.1:PORT"), optionally pinned with --cpus (shards) and taskset (all of it). run_load() runs ringcast-load
with --json and returns the parsed report. Everything waits with a deadline.
"""

import ctypes
import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time

LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
try:
    _libc = ctypes.CDLL(None, use_errno=True)  # loaded before any fork
except OSError:
    _libc = None


def die_with_parent():
    """preexec_fn for the processes we start: the kernel sends them SIGTERM when this process
    ends, however it ends (even SIGKILL), so a benchmark never leaves a ringcast pinned to a CPU.
    (Tied to the thread that forks: we start processes from the main thread.)"""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop_group(popen, timeout):
    """Stops a process started with start_new_session (the leader of its own group): SIGTERM to
    the group, SIGKILL after `timeout`; once the leader is gone, SIGKILL to whatever is left of
    its group (a worker whose master already died)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            break  # the whole group is gone
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        break
    if popen.poll() is None:
        popen.wait(timeout=timeout)


def build_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("RINGCAST_BUILD", os.path.join(here, "..", "build", "release"))


def ringcast_bin():
    return os.environ.get("RINGCAST_BIN", os.path.join(build_dir(), "server", "ringcast"))


def load_bin():
    return os.environ.get("RINGCAST_LOAD_BIN",
                          os.path.join(build_dir(), "bench", "load", "ringcast-load"))


class ListeningProcess:
    """A server process that logs "listening on 127.0.0.1:PORT" to stderr once it serves (ringcast,
    the uWS peer): started with die_with_parent, its port read from that line (the reader thread
    also wakes the wait when the process exits without listening); a context manager whose exit
    stops it: SIGTERM, then SIGKILL after stop()'s timeout. `what` names it in errors."""

    def __init__(self, cmd, what, start_timeout=15.0):
        self.cmd = cmd
        self.lines = []
        self.port = None
        self._seen = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=die_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        try:
            self._reader.start()
            started = self._seen.wait(start_timeout) and self.port is not None
            if not started:
                raise RuntimeError("%s did not start:\n%s" % (what, "\n".join(self.lines)))
        except BaseException:  # also interrupted (SIGINT, SIGTERM via SystemExit) while starting
            self.proc.kill()
            self.proc.wait(5)
            raise

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._seen.set()
        self._seen.set()

    @property
    def pid(self):
        return self.proc.pid

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader.is_alive():
            self._reader.join(5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Server(ListeningProcess):
    """A ringcast process; use as a context manager. stop() sends SIGTERM and waits."""

    def __init__(self, *args, shards=1, cpus=None, binary=None, start_timeout=15.0,
                 taskset=None):
        cmd = [binary or ringcast_bin(), "--listen", "127.0.0.1:0", "--shards", str(shards)]
        cmd += ["--cpus", cpus] if cpus is not None else ["--no-pin"]
        if "--drain-grace-ms" not in args:
            cmd += ["--drain-grace-ms", "0"]  # no load balancer to tell: stop at once
        cmd += [str(a) for a in args]
        if taskset is not None:
            # The whole process (not only its shards) on these CPUs; taskset execs, so the pid
            # is ringcast's.
            cmd = ["taskset", "-c", taskset] + cmd
        super().__init__(cmd, "ringcast", start_timeout)


class LoadError(RuntimeError):
    def __init__(self, message, report=None, output=""):
        super().__init__(message)
        self.report = report
        self.output = output


def run_load(mode, target, *args, server_pid=None, timeout=600, check=True):
    """Runs ringcast-load and returns its JSON report (a dict); raises LoadError if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        cmd = [load_bin(), mode, "--target", target, "--json", out]
        if server_pid:
            cmd += ["--server-pid", str(server_pid)]
        cmd += [str(a) for a in args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=die_with_parent)
        report = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                report = json.load(f)
        if check and (proc.returncode != 0 or report is None):
            raise LoadError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}",
                            report, proc.stdout + proc.stderr)
        if report is not None:
            report["_text"] = proc.stdout
        return report


def cpu_busy_fraction(seconds=0.5):
    """Share of all CPUs busy over `seconds` (from /proc/stat): other work on the machine."""
    def sample():
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return idle, sum(fields)

    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_for_quiet(limit=0.10, patience_s=600, log=print):
    """Waits (up to patience_s) until the machine is mostly idle; returns the busy fraction."""
    deadline = time.monotonic() + patience_s
    busy = cpu_busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        log(f"  (machine {busy:.0%} busy with other work; waiting)")
        time.sleep(5)
        busy = cpu_busy_fraction()
    return busy


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
