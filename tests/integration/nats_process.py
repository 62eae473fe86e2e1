"""A real `nats-server` on a free loopback port, for tests of a ringcast node's cluster side.

    with NatsServer(jetstream=True) as nats:        # -js -sd <temporary directory>
        with harness.Server("--nats", nats.url) as rc:
            ...
            nats.kill()                             # SIGKILL, the port stays the same
            nats.start()                            # again, same port and store

nats-server is a required dependency (scripts/setup installs it): a missing binary fails the
test. Every wait is bounded; the process is killed and its directory removed on exit.
"""

import shutil
import socket
import subprocess
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, jetstream=True, args=()):
        self.jetstream = jetstream
        self.args = list(args)
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = tempfile.mkdtemp(prefix="rc-nats-")
        self.proc = None
        self.lines = []
        self._lock = threading.Lock()
        self.start()

    def start(self, timeout=15.0):
        cmd = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            cmd += ["-js", "-sd", self.store]
        cmd += self.args
        ready = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def read(proc):
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self.lines.append(line)
                if "Server is ready" in line:
                    ready.set()

        threading.Thread(target=read, args=(self.proc,), daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise AssertionError("nats-server did not start:\n" + self.log())

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self):
        with self._lock:
            return "\n".join(self.lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        shutil.rmtree(self.store, ignore_errors=True)


def wait_for(check, timeout=20.0, interval=0.1):
    """Calls check() until it returns something truthy (returned) or the time is up (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)



def nats_request(port, subject, payload=b"", timeout=10.0):
    """One request/reply over a raw NATS connection (the text protocol, no client library):
    returns the reply's payload (bytes). For JetStream API calls such as
    nats_request(port, "$JS.API.STREAM.INFO.RC_T0")."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        buf = b""
        deadline = time.monotonic() + timeout

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                if time.monotonic() > deadline:
                    raise TimeoutError("no answer from nats-server")
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("nats-server closed the connection")
                buf += chunk
            out, buf = buf.split(b"\r\n", 1)
            return out

        assert line().startswith(b"INFO ")
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
                  b"SUB _INBOX.rctest 1\r\n" +
                  f"PUB {subject} _INBOX.rctest {len(payload)}\r\n".encode() + payload +
                  b"\r\nPING\r\n")
        while True:
            head = line()
            if head.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            elif head.startswith(b"MSG "):
                size = int(head.split()[-1])
                while len(buf) < size + 2:
                    buf += s.recv(65536)
                return buf[:size]
            elif head.startswith(b"-ERR"):
                raise ConnectionError(head.decode())
