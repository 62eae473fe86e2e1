"""floor_ws (../shared/tools/floor_ws.c: the cheapest io_uring WebSocket echo, a measuring
stick) as an echo peer of the compare scripts (peer-module interface: bench/comparelib.py).

The source is compiled at run time (`cc -O2 ... -luring -lcrypto`, as its header says) into a
directory of this process, once per process and source (keyed by the source's SHA-256), and
removed when the process exits; nothing built is committed. It runs as one process with one
thread on a free port of 127.0.0.1 given as its argument, pinned with taskset; it echoes on any
path (ringcast-load ws-echo's default /echo included), so it needs no load flags. Ready when it
answers a WebSocket upgrade with 101. pids = [floor_ws].

--floor-ws-src defaults to the repository's sibling ../shared/tools/floor_ws.c (for a git
worktree: the main checkout's sibling).

Single-threaded: call from the main thread.
"""

import atexit
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile

import peerproc

NAME = "floor_ws"
SUPPORTS = {"echo"}

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SOURCE = os.path.join("shared", "tools", "floor_ws.c")

_builds = {}  # sha256 of the source -> binary, for this process's life
_build_dir = None


def _default_source():
    candidates = [os.path.join(os.path.dirname(REPO), SOURCE)]
    try:
        common = subprocess.run(["git", "-C", REPO, "rev-parse", "--path-format=absolute",
                                 "--git-common-dir"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if common:
            main_checkout = os.path.dirname(common.rstrip("/"))
            candidates.append(os.path.join(os.path.dirname(main_checkout), SOURCE))
    except (OSError, subprocess.TimeoutExpired):
        pass
    for path in candidates:
        if os.path.isfile(path):
            return path
    return candidates[0]


def add_options(parser):
    g = parser.add_argument_group("floor_ws peer")
    g.add_argument("--floor-ws-src", default=None, metavar="PATH",
                   help="floor_ws.c to compile at run time (default: ../shared/tools/floor_ws.c "
                   "next to the repository)")


def _source(args):
    return os.path.abspath(getattr(args, "floor_ws_src", None) or _default_source())


def available(args):
    src = _source(args)
    if not os.path.isfile(src):
        return "floor_ws source %s not found (--floor-ws-src)" % src
    if not shutil.which("cc"):
        return "no C compiler (cc) to build floor_ws"
    return None


def _cleanup():
    if _build_dir:
        shutil.rmtree(_build_dir, ignore_errors=True)


def build(src):
    """Compiles src (once per process and source content); returns the binary's path."""
    global _build_dir
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest in _builds:
        return _builds[digest]
    if _build_dir is None:
        _build_dir = tempfile.mkdtemp(prefix="ringcast-floor-ws-")
        atexit.register(_cleanup)
    binary = os.path.join(_build_dir, "floor_ws-" + digest[:12])
    argv = ["cc", "-O2", "-o", binary, src, "-luring", "-lcrypto"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("building floor_ws failed: %s\n%s" % (" ".join(argv), r.stderr.strip()))
    _builds[digest] = binary
    return binary


def upgrades(port, timeout=2.0):
    """True if 127.0.0.1:port answers a WebSocket upgrade of /echo with 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((peerproc.HOST, port), timeout=timeout) as s:
        s.sendall(("GET /echo HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (peerproc.HOST, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1024)
            if not chunk:
                return False
            head += chunk
    return head.startswith(b"HTTP/1.1 101")


class Peer(peerproc.PeerProcesses):
    def __init__(self, args, tmpdir, cpus):
        super().__init__(tmpdir, cpus)
        src = _source(args)
        binary = build(src)
        port = peerproc.free_port()
        proc = self.spawn("floor_ws", [binary, port])
        self.command = "taskset -c %s %s %d (built from %s)" % (cpus, binary, port, src)
        self.target = "%s:%d" % (peerproc.HOST, port)
        try:
            self.wait_until("floor_ws on %s" % self.target, lambda: upgrades(port))
        except BaseException:
            self.stop()
            raise
        self.pids = [proc.pid]


def start(args, tmpdir, cpus):
    return Peer(args, tmpdir, cpus)
