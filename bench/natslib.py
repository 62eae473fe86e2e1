"""NATS servers for the cluster benchmark (Python stdlib only): one `nats-server` with JetStream,
or a JetStream cluster of N on loopback, each with its own store directory, on ports the kernel
picked a moment before (a race another process could win; the start then fails loudly).

A NatsCluster is a context manager; stop() sends SIGTERM to every server and waits (SIGKILL
after a deadline) and removes the store directories. Every wait has a deadline.

Single-threaded: the benchmark calls this from its main thread only.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def nats_bin():
    return os.environ.get("NATS_SERVER_BIN", shutil.which("nats-server") or "nats-server")


def nats_version():
    try:
        r = subprocess.run([nats_bin(), "--version"], capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            # The server speaks first: INFO {...}
            s.settimeout(1.0)
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


class NatsCluster:
    """`size` nats-servers with JetStream (a cluster when size > 1), pinned with taskset to
    `cpus` (None: not pinned)."""

    def __init__(self, size=1, cpus=None, start_timeout=20.0):
        self.size = size
        self.dir = tempfile.mkdtemp(prefix="rc-nats-")
        self.ports = [free_port() for _ in range(size)]
        routes = [free_port() for _ in range(size)] if size > 1 else []
        self.procs = []
        self.logs = []
        try:
            for i in range(size):
                store = os.path.join(self.dir, f"n{i}")
                cmd = [nats_bin(), "-a", "127.0.0.1", "-p", str(self.ports[i]), "-n", f"nats{i}",
                       "-js", "-sd", store]
                if size > 1:
                    cmd += ["--cluster_name", "rcbench", "--cluster",
                            f"nats://127.0.0.1:{routes[i]}", "--routes",
                            ",".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(routes)
                                     if j != i)]
                if cpus is not None:
                    cmd = ["taskset", "-c", cpus] + cmd
                log = open(os.path.join(self.dir, f"n{i}.log"), "wb")
                self.logs.append(log)
                self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + start_timeout
            for i, port in enumerate(self.ports):
                while not _accepts(port):
                    if self.procs[i].poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"nats-server {i} did not start:\n" + self.log_text(i))
                    time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    @property
    def urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def log_text(self, i):
        try:
            with open(os.path.join(self.dir, f"n{i}.log"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, timeout=15.0):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for log in self.logs:
            log.close()
        self.procs, self.logs = [], []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
