"""nginx with the nchan module (Debian's libnginx-mod-nchan) as a fan-out peer of the compare
scripts (peer-module interface: bench/comparelib.py).

nginx runs in the foreground with a config written from bench/peers/nchan.conf.in into the
temporary directory (prefix, pid, error log and temp paths all there: no root needed, nothing
under /var touched), `load_module` of ngx_nchan_module.so (found through
/etc/nginx/modules-enabled/50-mod-nchan.conf, else /usr/lib/nginx/modules, or --nchan-module),
one worker process, listening on a free port of 127.0.0.1. ringcast-load speaks to it with
`--dialect nchan`: POST /pub/<topic> (keep-alive) and subscribers on /sub/<topic> as WebSocket
or SSE; the publication carries its own seq and ts.

Pinning: the master and its one worker both run on the peer CPUs (taskset; the worker inherits
it). pids = master + worker (the master is idle while serving). Sized for 10,000 subscribers:
worker_connections from the descriptor hard limit (worker_rlimit_nofile raises the worker's
soft limit to it), a listen backlog of 4096, nchan's shared memory 128 MiB.

Single-threaded: call from the main thread.
"""

import os
import re
import resource
import shutil
import string
import subprocess

import peerproc

NAME = "nchan"
SUPPORTS = {"fanout-ws", "fanout-sse"}

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES_ENABLED = "/etc/nginx/modules-enabled/50-mod-nchan.conf"
MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
MODULE_FILE = "ngx_nchan_module.so"
SHARED_MEMORY = "128m"


def add_options(parser):
    g = parser.add_argument_group("nchan peer")
    g.add_argument("--nchan-nginx", default="nginx", metavar="PATH",
                   help="nginx binary for the nchan peer (default: nginx on PATH)")
    g.add_argument("--nchan-module", default=None, metavar="PATH",
                   help="ngx_nchan_module.so (default: from %s, else %s)"
                   % (MODULES_ENABLED, MODULE_DIRS[0]))


def _nginx(args):
    return shutil.which(getattr(args, "nchan_nginx", None) or "nginx")


def _nginx_prefix(binary):
    """nginx's compiled-in --prefix (relative load_module paths are resolved against it)."""
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"--prefix=(\S+)", out)
    return m.group(1) if m else None


def find_module(args):
    """The path of ngx_nchan_module.so, or None."""
    given = getattr(args, "nchan_module", None)
    if given:
        return os.path.abspath(given) if os.path.isfile(given) else None
    candidates = []
    try:
        with open(MODULES_ENABLED) as f:
            m = re.search(r"load_module\s+([^;\s]+)\s*;", f.read())
        if m:
            path = m.group(1)
            if not os.path.isabs(path):
                binary = _nginx(args)
                prefix = _nginx_prefix(binary) if binary else None
                path = os.path.join(prefix or "/usr/share/nginx", path)
            candidates.append(path)
    except OSError:
        pass
    candidates += [os.path.join(d, MODULE_FILE) for d in MODULE_DIRS]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.realpath(path)
    return None


def available(args):
    if not _nginx(args):
        return "nginx not found (install nginx and libnginx-mod-nchan, or --nchan-nginx PATH)"
    if not find_module(args):
        return ("ngx_nchan_module.so not found (install libnginx-mod-nchan, or "
                "--nchan-module PATH)")
    return None


def _limits():
    """(worker_rlimit_nofile, worker_connections): as many descriptors as the hard limit
    allows, at most 1,000,000; a few hundred kept for nginx's own files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 1_000_000
    nofile = min(nofile, 1_000_000)
    return nofile, max(1024, nofile - 256)


class Peer(peerproc.PeerProcesses):
    def __init__(self, args, tmpdir, cpus):
        super().__init__(tmpdir, cpus)
        binary, module = _nginx(args), find_module(args)
        if not binary or not module:
            raise RuntimeError(available(args) or "nchan: nginx or its module not found")
        port = peerproc.free_port()
        prefix = os.path.join(tmpdir, "nchan-%d" % port)
        os.makedirs(prefix)
        nofile, worker_connections = _limits()
        with open(os.path.join(HERE, "nchan.conf.in")) as f:
            template = string.Template(f.read())
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(template.substitute(module=module, prefix=prefix, port=port, nofile=nofile,
                                        worker_connections=worker_connections,
                                        shm=SHARED_MEMORY))
        argv = [binary, "-p", prefix, "-c", conf, "-e", os.path.join(prefix, "error.log")]
        self.command = "taskset -c %s %s" % (cpus, " ".join(argv))
        master = self.spawn("nchan-nginx", argv)
        self.target = "%s:%d" % (peerproc.HOST, port)
        try:
            self.wait_until("nchan (nginx) on %s" % self.target,
                            lambda: peerproc.http_get(port, "/healthz") == (200, b"ok")
                            and len(peerproc.descendants(master.pid)) >= 1,
                            logs=[os.path.join(prefix, "error.log")])
        except BaseException:
            self.stop()
            raise
        self.pids = [master.pid] + peerproc.descendants(master.pid)

    def load_flags(self, mode, sub):
        return ["--dialect", "nchan"] if mode == "fanout" else []


def start(args, tmpdir, cpus):
    return Peer(args, tmpdir, cpus)
