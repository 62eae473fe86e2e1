"""Pushpin (Debian's `pushpin` package) as a fan-out peer of the compare scripts (peer-module
interface: bench/comparelib.py).

Pushpin is a proxy: clients connect to it, it asks an origin what to do with each request
(GRIP), and publishers push messages to its control port. The peer is
  * bench/peers/grip_backend.py: the origin (stdlib HTTP server; holds SSE streams on channel
    <topic> and subscribes WebSocket-over-HTTP connections to it), and
  * `pushpin --config <tmpdir>/pushpin.conf` (from bench/peers/pushpin.conf.in): the runner
    starts condure (client connections), zurl (requests to the origin), pushpin-proxy and
    pushpin-handler (subscriptions and publishing), with every run-time file, ZeroMQ socket and
    log in the temporary directory and two TCP ports on 127.0.0.1 chosen free: `target` (the
    clients') and `pub_target` (the control port). No root needed; the package's
    internal.conf is copied with zurl's sockets moved from /var/run/zurl into the run directory.
ringcast-load speaks to it with `--dialect pushpin`: subscribers GET /sub/<topic> as WebSocket
or SSE; the publisher POSTs /publish/ to the control port, one connection per publication
(pushpin's control port answers every request with `Connection: close`), and at most
SUBSCRIBE_CONCURRENCY subscribers subscribing at a time, the first publication
PUBLISH_AFTER_MS after the last subscriber is ready and a drain of DRAIN_MS (below).

Configuration for a benchmark: the handler's delivery rate limit is off (message_rate=0; the
default 2,500 messages/s would cap every run) and condure runs one worker thread (a wrapper
script as condure_bin: the runner has no setting for it; --pushpin-condure-workers).

CPU: every pushpin process (runner, condure, zurl, pushpin-proxy, pushpin-handler) runs on the
peer CPUs (taskset on the runner; its children inherit it) and is in `pids`: the server's CPU.
The GRIP origin is pinned there too, but it is not part of the data path once the subscribers
are subscribed (publications go publisher -> handler -> condure -> clients), so its CPU is not
the server's: its pid is in `aux_pids` (pass it as --aux-pid to see it apart). Pushpin's
processes cannot be reduced to one: proxy and handler talk over ZeroMQ, and zurl and condure
are separate programs.

Single-threaded: call from the main thread.
"""

import http.client
import json
import os
import re
import resource
import select
import shutil
import socket
import stat
import string
import sys
import time

import peerproc

NAME = "pushpin"
SUPPORTS = {"fanout-ws", "fanout-sse"}

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = ("pushpin", "condure", "zurl", "pushpin-proxy", "pushpin-handler")
# Declared started only this long after pushpin first passed the readiness probe. Right after
# it starts, condure sends its first sweep of keep-alives (batches every 100 ms, seen up to
# ~300 ms after start; the next sweep of the same connections is 45 s later) to whichever
# process it knows for each connection. A connection that is being handed from pushpin-proxy
# to pushpin-handler at that moment (every SSE and WebSocket subscription: the proxy asks the
# origin, then passes the held stream to the handler) has its keep-alive go to the proxy,
# which drops it (paused) without counting it; the handler then expects a sequence number
# condure has already used and cancels the connection at condure's next message (the credit
# after the first publication): "zhttp server: error id=... received message out of
# sequence, canceling" in pushpin-handler.log, a subscriber closed by the server and its
# publications lost. A pushpin (condure 1.9 / pushpin 1.36) race, not the load's: the
# subscription burst must not land in the start-up sweep.
SETTLE_S = 1.0
# The channel of the readiness probe (_probe_stream); not a load topic.
READY_CHANNEL = "ringcast-ready"
ZURL_SPEC_RE = re.compile(r"ipc://[^\s,]*/zurl-(in-stream|in|out)\b")
# Subscribers subscribing at once (ringcast-load --subscribe-concurrency): a burst of about
# 1,000 at once on one CPU makes pushpin answer part of them 502 (zurl cancels requests whose
# proxy keep-alive came after their response) or 500 "Accept service unavailable".
SUBSCRIBE_CONCURRENCY = 64
# The first publication this long after every subscriber is ready (ringcast-load
# --publish-after-ms): pushpin's proxy subscribes a WebSocket to its channel (a message to the
# handler) after the client has its 101, so a publication right after the last 101 misses some
# of the last subscribers. Runs need a --warmup longer than this.
PUBLISH_AFTER_MS = 1000
# Closed-loop fan-out to 1,000 WebSocket subscribers leaves pushpin seconds behind when the
# window closes (p99 ~4 s on the shared 2-core machine): ringcast-load's default 2 s drain
# would count what is still on its way as undelivered.
DRAIN_MS = 30000


def add_options(parser):
    g = parser.add_argument_group("pushpin peer")
    g.add_argument("--pushpin-bin", default="pushpin", metavar="PATH",
                   help="pushpin's runner (default: pushpin on PATH; condure, zurl, "
                   "pushpin-proxy and pushpin-handler must be on PATH too)")
    g.add_argument("--pushpin-libdir", default="/usr/lib/pushpin", metavar="DIR",
                   help="pushpin's library directory (its internal.conf and runner templates)")
    g.add_argument("--pushpin-condure-workers", type=int, default=1, metavar="N",
                   help="condure's worker threads (default 1)")


def _missing(args):
    missing = [p for p in PROGRAMS[1:] if not shutil.which(p)]
    if not shutil.which(getattr(args, "pushpin_bin", "pushpin") or "pushpin"):
        missing.insert(0, "pushpin")
    return missing


def available(args):
    missing = _missing(args)
    if missing:
        return "pushpin not installed (missing %s; Debian package `pushpin`)" % ", ".join(missing)
    internal = os.path.join(getattr(args, "pushpin_libdir", "/usr/lib/pushpin"), "internal.conf")
    if not os.path.isfile(internal):
        return "pushpin's %s not found (--pushpin-libdir)" % internal
    return None


def _internal_conf(libdir, rundir):
    """The package's internal.conf with zurl's sockets in the run directory (Debian points
    them at the system zurl's /var/run/zurl)."""
    with open(os.path.join(libdir, "internal.conf")) as f:
        text = f.read()
    return ZURL_SPEC_RE.sub(lambda m: "ipc://{rundir}/{ipc_prefix}zurl-" + m.group(1), text)


def _probe_stream(http_port, control_port, n, timeout=2.0):
    """True if an SSE subscription to channel READY_CHANNEL through pushpin is held (200
    text/event-stream, answered by the handler after the proxy's hand-off) and a publication to
    that channel on the control port reaches it. Until the proxy's ZeroMQ sockets to the
    handler are connected, a subscription is answered 500 "Accept service unavailable" although
    /healthz (proxied straight to the origin) and the control port already answer: readiness
    must go through the same path as the subscribers."""
    marker = b"ringcast-ready-%d" % n
    with socket.create_connection((peerproc.HOST, http_port), timeout=timeout) as s:
        s.sendall(b"GET /sub/%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
                  % (READY_CHANNEL.encode(), peerproc.HOST.encode(), http_port))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        if not (head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()):
            return False
        body = json.dumps({"items": [{"channel": READY_CHANNEL, "formats": {
            "http-stream": {"content": "event: ready\ndata: %s\n\n" % marker.decode()}}}]})
        conn = http.client.HTTPConnection(peerproc.HOST, control_port, timeout=timeout)
        try:
            conn.request("POST", "/publish/", body=body.encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                return False
        finally:
            conn.close()
        deadline = time.monotonic() + timeout
        while marker not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            s.settimeout(left)
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
    return True


def _maxconn():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1024, min(soft, 1_000_000) - 256)


class Peer(peerproc.PeerProcesses):
    def __init__(self, args, tmpdir, cpus):
        super().__init__(tmpdir, cpus)
        if _missing(args):
            raise RuntimeError(available(args))
        root = os.path.join(tmpdir, "pushpin-%d" % os.getpid())
        n = 0
        while os.path.exists(root + (".%d" % n if n else "")):
            n += 1
        root += ".%d" % n if n else ""
        rundir, logdir = os.path.join(root, "run"), os.path.join(root, "log")
        os.makedirs(rundir)
        os.makedirs(logdir)
        try:
            self._start(args, root, rundir, logdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, args, root, rundir, logdir):
        # The GRIP origin first: its port goes into the routes file.
        backend = self.spawn("grip-backend", [sys.executable, os.path.join(HERE, "grip_backend.py"),
                                              "--port", "0"], stdout_pipe=True)
        backend_port = self._read_backend_port(backend)
        self.aux_pids = [backend.pid]

        libdir = getattr(args, "pushpin_libdir", "/usr/lib/pushpin")
        internal = os.path.join(root, "internal.conf")
        with open(internal, "w") as f:
            f.write(_internal_conf(libdir, rundir))
        routes = os.path.join(root, "routes")
        with open(routes, "w") as f:
            # over_http: WebSocket connections reach the origin as WebSocket-over-HTTP.
            f.write("* %s:%d,over_http\n" % (peerproc.HOST, backend_port))
        condure = os.path.join(root, "condure-workers")
        with open(condure, "w") as f:
            f.write("#!/bin/sh\nexec %s --workers %d \"$@\"\n"
                    % (shutil.which("condure"), max(1, args.pushpin_condure_workers)))
        os.chmod(condure, stat.S_IRWXU)
        http_port, control_port = peerproc.free_port(), peerproc.free_port()
        while control_port == http_port:
            control_port = peerproc.free_port()
        with open(os.path.join(HERE, "pushpin.conf.in")) as f:
            template = string.Template(f.read())
        conf = os.path.join(root, "pushpin.conf")
        with open(conf, "w") as f:
            f.write(template.substitute(internal=internal, rundir=rundir, logdir=logdir,
                                        routes=routes, http_port="%s:%d" % (peerproc.HOST,
                                                                            http_port),
                                        control_port=control_port, maxconn=_maxconn(),
                                        condure_bin=condure))
        binary = shutil.which(getattr(args, "pushpin_bin", "pushpin") or "pushpin")
        argv = [binary, "--config", conf]
        self.command = "taskset -c %s %s (origin: grip_backend.py on port %d)" % (
            self.cpus, " ".join(argv), backend_port)
        runner = self.spawn("pushpin", argv)
        self.target = "%s:%d" % (peerproc.HOST, http_port)
        self.pub_target = "%s:%d" % (peerproc.HOST, control_port)
        logs = [os.path.join(logdir, n + ".log")
                for n in ("condure", "zurl", "pushpin-proxy", "pushpin-handler")]

        probes = iter(range(1, 1 << 30))
        first_ok = []

        def ready():
            # Through the proxy to the origin and back, the control port's root (200), every
            # service running, and then a held stream end to end (_probe_stream): the proxy's
            # hand-off to the handler and a publication delivered, which the first two do not
            # exercise. Then once more after SETTLE_S (see there).
            if not (peerproc.http_get(http_port, "/healthz") == (200, b"ok")
                    and peerproc.http_get(control_port, "/")[0] == 200
                    and len(peerproc.descendants(runner.pid)) >= 4
                    and _probe_stream(http_port, control_port, next(probes))):
                return False
            now = time.monotonic()
            if not first_ok:
                first_ok.append(now)
            return now - first_ok[0] >= SETTLE_S

        self.wait_until("pushpin on %s (control %s)" % (self.target, self.pub_target), ready,
                        logs=logs)
        self.pids = [runner.pid] + peerproc.descendants(runner.pid)

    def _read_backend_port(self, proc, timeout=peerproc.READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError("grip_backend.py did not start:\n" + self.log_tails())
            r, _, _ = select.select([proc.stdout], [], [], left)
            if r:
                chunk = os.read(proc.stdout.fileno(), 256)
                if not chunk:
                    raise RuntimeError("grip_backend.py exited:\n" + self.log_tails())
                line += chunk
        m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("grip_backend.py said %r" % line)
        return int(m.group(1))

    def load_flags(self, mode, sub):
        if mode != "fanout":
            return []
        return ["--dialect", "pushpin", "--subscribe-concurrency", str(SUBSCRIBE_CONCURRENCY),
                "--publish-after-ms", str(PUBLISH_AFTER_MS), "--drain-ms", str(DRAIN_MS)]


def start(args, tmpdir, cpus):
    return Peer(args, tmpdir, cpus)
