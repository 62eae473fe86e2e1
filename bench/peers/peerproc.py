"""Process handling shared by the nchan, pushpin and floor_ws peer modules (not a peer itself).

A PeerProcesses is the base of their Peer objects: it starts processes pinned with
`taskset -c CPUS`, each in its own session (so a signal reaches its whole process group) and
with loadlib.die_with_parent (the kernel sends it SIGTERM when the script dies, however it
dies), waits until they serve, and on exit stops every process group it started: SIGTERM, then
SIGKILL after STOP_TIMEOUT_S, then SIGKILL to any pid it collected that still lives. Logs go to
the peer's temporary directory and their tails are part of every start-up error.

Python 3 standard library only. Single-threaded: call from the main thread (die_with_parent is
tied to the forking thread).
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

try:
    import loadlib
except ImportError:  # imported with only bench/peers on the path
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import loadlib
import benchlib  # noqa: E402  (bench/ is on the path now)

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def free_port():
    """A TCP port on 127.0.0.1 that is free now (the kernel picks it; for servers that cannot
    listen on port 0 themselves and report the port)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None, timeout=2.0):
    """(status, body) of one GET on 127.0.0.1:port; raises OSError/HTTPException."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def descendants(pid):
    """pid's descendants (not pid itself), from /proc."""
    return sorted(benchlib.descendants(pid)[1:])


def start_time(pid):
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie:
    with the pid it names one process, never a later one that reused the pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


class PeerProcesses:
    """Base of a peer: the processes it started, their logs, stop() and the context manager.
    Subclasses set target, pub_target, pids (and aux_pids: processes of the peer that are not
    the server's, e.g. pushpin's GRIP origin) and may override load_flags()."""

    def __init__(self, tmpdir, cpus):
        self.tmpdir, self.cpus = tmpdir, cpus
        self.target = None
        self.pub_target = None
        self.pids = []
        self.aux_pids = []
        self.command = ""
        self._procs = []  # [(name, Popen, log path)]

    def load_flags(self, mode, sub):
        return []

    def spawn(self, name, argv, env=None, cwd=None, stdout_pipe=False):
        """Starts argv pinned to self.cpus; stdout (unless piped) and stderr go to
        <tmpdir>/<name>.log. Returns the Popen (its pid is the program's: taskset execs)."""
        log_path = os.path.join(self.tmpdir, name + ".log")
        with open(log_path, "ab") as log:
            p = subprocess.Popen(["taskset", "-c", self.cpus] + [str(a) for a in argv],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE if stdout_pipe else log,
                                 stderr=log, env=env, cwd=cwd, start_new_session=True,
                                 preexec_fn=loadlib.die_with_parent)
        self._procs.append((name, p, log_path))
        return p

    def log_tails(self, lines=12):
        out = []
        for name, p, path in self._procs:
            try:
                with open(path, errors="replace") as f:
                    text = f.read().splitlines()[-lines:]
            except OSError:
                text = []
            status = "running" if p.poll() is None else "exited %s" % p.returncode
            out.append("  %s (%s):\n%s" % (name, status, "\n".join("    | " + l for l in text)))
        return "\n".join(out)

    def wait_until(self, what, ready, timeout=READY_TIMEOUT_S, logs=()):
        """Polls ready() (True when serving; exceptions count as not yet) until the deadline;
        raises RuntimeError with the logs' tails if it never is or a process exits.
        `logs`: extra files whose tails the error shows."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            for name, p, _ in self._procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited with status %s while starting:\n%s%s"
                                       % (name, p.returncode, self.log_tails(),
                                          self._file_tails(logs)))
            try:
                if ready():
                    return
            except (OSError, http.client.HTTPException, ValueError) as e:
                last = e
            if time.monotonic() > deadline:
                raise RuntimeError("%s not ready after %.0f s (last error: %s):\n%s%s"
                                   % (what, timeout, last, self.log_tails(),
                                      self._file_tails(logs)))
            time.sleep(0.05)

    @staticmethod
    def _file_tails(paths, lines=12):
        out = []
        for path in paths:
            try:
                with open(path, errors="replace") as f:
                    text = f.read().splitlines()[-lines:]
            except OSError:
                continue
            out.append("\n  %s:\n%s" % (path, "\n".join("    | " + l for l in text)))
        return "".join(out)

    def stop(self):
        """Stops every process group started, newest first; nothing is left behind."""
        pids = set(self.pids) | set(self.aux_pids)
        for _, p, _ in self._procs:
            pids.add(p.pid)
            pids.update(descendants(p.pid))
        known = {pid: start_time(pid) for pid in pids}
        for _, p, _ in reversed(self._procs):
            loadlib.stop_group(p, STOP_TIMEOUT_S)
            if p.stdout:
                p.stdout.close()
        # Anything that left its group (or changed its user) but is still alive.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for pid, started in known.items():
            while (started is not None and start_time(pid) == started
                   and time.monotonic() < deadline):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    break
                time.sleep(0.02)
        self._procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
