"""The servers under test for ringcast's peer-comparison benchmarks: ringcast, nginx and floor.

prepare_server() builds what a target needs (compiles floor.c, writes an nginx config from
bench/http-compare.d/nginx.conf.in, finds the ringcast binary) and returns a Server: a pinned
foreground child in its own session, started only when it accepts connections and answers
GET /healthz with 200 and a tiny "ok" body. Every started server is stopped on exit, on Ctrl-C
and on SIGTERM/SIGHUP (install_cleanup), and temporary directories are removed.

Single-threaded: the scripts call this from their main thread only.
"""

import argparse
import atexit
import hashlib
import resource
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as bl
import loadlib
from benchlib import HEALTH_PATH, HOST, REPO, Skip, log, quote

TARGET_NAMES = ("ringcast", "nginx", "floor")
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------- options


def default_floor_src():
    """../shared/tools/floor.c from the checkout (from a worktree under /work/wt: ../../shared)."""
    candidates = [REPO.parent / "shared/tools/floor.c", REPO.parent.parent / "shared/tools/floor.c"]
    return next((c for c in candidates if c.is_file()), candidates[0])


def add_target_options(parser: argparse.ArgumentParser):
    """Options both scripts share: which targets, where their binaries are, CPU pinning."""
    g = parser.add_argument_group("targets")
    g.add_argument("--targets", default=",".join(TARGET_NAMES),
                   help="comma-separated subset of %s" % ",".join(TARGET_NAMES))
    g.add_argument("--ringcast", type=Path, default=REPO / "build/release/server/ringcast",
                   help="ringcast binary; the target is skipped with a note when missing")
    g.add_argument("--ringcast-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for ringcast (repeatable)")
    g.add_argument("--nginx", default="nginx", help="nginx binary")
    g.add_argument("--floor-src", type=Path, default=default_floor_src(),
                   help="floor.c to compile at run time (../shared/tools/floor.c)")
    g.add_argument("--server-cpus", default="0", help="CPU list for the server (taskset -c)")
    g.add_argument("--keep-tmp", action="store_true",
                   help="keep the temporary directory (configs, floor binary, server logs)")


def selected_targets(args):
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGET_NAMES]
    if unknown:
        sys.exit("unknown target(s): %s (choose from %s)" % (unknown, ", ".join(TARGET_NAMES)))
    return names


# --------------------------------------------------------------------------- servers

_servers = []
_tmpdirs = []


class Server:
    """One running server under test: the process we started (in its own session, so Ctrl-C
    reaches it only through us) and its descendants."""

    def __init__(self, name, argv, port, log_path, response_check):
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.response_check = response_check
        self.response_bytes = None
        self.popen = None

    def start(self):
        """Starts the server and returns once it answers correctly; raises Skip (with the
        server stopped again) otherwise."""
        try:
            self._start()
        except Skip:
            self.stop()
            raise

    def _start(self):
        with open(self.log_path, "wb") as out:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          preexec_fn=loadlib.die_with_parent)
        _servers.append(self)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.popen.poll() is not None:
                raise Skip("%s exited with status %d at start-up:\n%s"
                           % (self.name, self.popen.returncode, self.log_tail()))
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Skip("%s does not accept on %s:%d after %.0f s:\n%s" % (
                        self.name, HOST, self.port, READY_TIMEOUT_S, self.log_tail()))
                time.sleep(0.05)
        self.check()

    def check(self):
        """Re-checks the answer (and that the process still lives); raises Skip otherwise."""
        if self.popen.poll() is not None:
            raise Skip("%s exited with status %d:\n%s"
                       % (self.name, self.popen.returncode, self.log_tail()))
        try:
            self.response_bytes = bl.check_http(self.port, self.response_check)
        except (OSError, ValueError) as e:
            raise Skip("%s: GET %s failed: %s" % (self.name, HEALTH_PATH, e))

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def pids(self):
        return bl.descendants(self.popen.pid)

    def _sum(self, read):
        total = 0
        for pid in self.pids():
            try:
                total += read(pid)
            except OSError:
                pass  # Exited since pids() looked; a dead server is caught by alive().
        return total

    def cpu_seconds(self):
        return self._sum(bl.process_cpu_seconds)

    def rss_bytes(self):
        return self._sum(bl.process_rss_bytes)

    def log_tail(self, lines=15):
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "  (no log)"
        return "\n".join("  | " + l for l in text.splitlines()[-lines:]) or "  (empty log)"

    def stop(self):
        """SIGTERM to the server's process group, SIGKILL to whatever is left of it after
        STOP_TIMEOUT_S (also a worker whose master already died)."""
        if self.popen is None:
            return
        loadlib.stop_group(self.popen, STOP_TIMEOUT_S)
        if self in _servers:
            _servers.remove(self)


def _cleanup():
    for server in list(_servers):
        server.stop()
    for path, keep in _tmpdirs:
        if keep:
            log("kept temporary directory %s" % path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    """Stops every started server on normal exit, exceptions, Ctrl-C, SIGTERM and SIGHUP."""
    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def make_tmpdir(keep):
    path = Path(tempfile.mkdtemp(prefix="ringcast-bench-"))
    _tmpdirs.append((path, keep))
    return path


# --------------------------------------------------------------------------- targets


def _exact_ok(body):
    return body == b"ok"


def _ringcast_ok(body):
    # ringcast's /healthz body is "ok"-like; accept any tiny body that says ok.
    return len(body) <= 256 and b"ok" in body.lower()


_floor_builds = {}


def _build_floor(src, tmp):
    """Compiles floor.c into tmp, once per (source, directory) in this process."""
    key = (str(src), str(tmp))
    if key not in _floor_builds:
        _floor_builds[key] = _compile_floor(src, tmp)
    return _floor_builds[key]


def _compile_floor(src, tmp):
    if not src.is_file():
        raise Skip("floor source %s not found (use --floor-src)" % src)
    binary = tmp / "floor"
    argv = ["cc", "-O2", "-o", str(binary), str(src), "-luring"]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip("building floor failed: %s\n%s" % (quote(argv), r.stderr.strip()))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    return binary, "floor.c sha256:%s, built with: %s" % (digest, quote(argv))


def _nginx_config(args, tmp, port, worker_connections, nofile):
    binary = shutil.which(args.nginx)
    if not binary:
        raise Skip("nginx not found (%s); install nginx-light or use --nginx" % args.nginx)
    prefix = tmp / ("nginx-%d" % port)
    prefix.mkdir()
    template = string.Template((bl.DATA_DIR / "nginx.conf.in").read_text())
    conf = prefix / "nginx.conf"
    conf.write_text(template.substitute(prefix=prefix, port=port, nofile=nofile,
                                        worker_connections=worker_connections))
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return argv, "config %s (from bench/http-compare.d/nginx.conf.in)" % conf


def nginx_slots(connections):
    """worker_connections for `connections` client connections. nginx starts closing idle
    keep-alive connections once fewer than 1/16 of its slots are free
    (ngx_drain_connections), so leave an eighth spare plus room for its own descriptors."""
    return connections + connections // 8 + 256


def prepare_server(name, args, tmp, worker_connections, cpus=None):
    """Builds what the target needs and returns a Server (not started), pinned to cpus
    (default --server-cpus); raises Skip.

    worker_connections sizes nginx's connection table (see nginx_slots); the others have no
    such setting.
    """
    cpus = cpus or args.server_cpus
    port = bl.free_port()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if name == "floor":
        binary, note = _build_floor(Path(args.floor_src).resolve(), tmp)
        argv, check = [str(binary), str(port)], _exact_ok
    elif name == "nginx":
        argv, note = _nginx_config(args, tmp, port, worker_connections, nofile)
        check = _exact_ok
    else:
        if not args.ringcast.is_file():
            raise Skip("ringcast binary not found at %s (build it: cmake --preset release && "
                       "cmake --build --preset release -j2, or pass --ringcast PATH)"
                       % args.ringcast)
        argv = [str(args.ringcast), "--listen", "%s:%d" % (HOST, port), "--shards", "1",
                "--cpus", args.server_cpus] + args.ringcast_arg
        note, check = "binary %s" % args.ringcast, _ringcast_ok
    pinned = ["taskset", "-c", cpus] + argv
    server = Server(name, pinned, port, tmp / ("%s-%d.log" % (name, port)), check)
    server.note = note
    return server


class HttpPeer:
    """A Server (nginx, floor) behind the peer-module interface of the compare scripts
    (bench/comparelib.py): started and checked on construction, stopped on __exit__ (SIGTERM
    to its process group, then SIGKILL)."""

    def __init__(self, server):
        server.start()
        self.server = server
        self.target = "%s:%d" % (HOST, server.port)
        self.pub_target = None
        self.command = quote(server.argv)

    @property
    def pids(self):
        return self.server.pids()

    def load_flags(self, mode, sub):
        return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.stop()
