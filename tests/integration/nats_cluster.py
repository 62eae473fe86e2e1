"""Cluster fixture: 3 `nats-server` processes in a JetStream cluster and N ringcast nodes, all on
loopback, started and stopped by the tests.

NATS servers get free loopback ports (client, cluster route, HTTP monitoring), `-js -sd <tmpdir>`,
one `--cluster_name` and `--routes` to the two others; start() waits (bounded) until every server
reports healthy JetStream with a meta leader. Ringcast nodes get `--nats` listing all three
(rotated, so node i first tries server i: killing one server disconnects one node), `--nats-replicas
3`, `--node-id`, a short `--broker-lease-ms`. Helpers kill (SIGKILL) and restart single NATS
servers (same ports, same store directory) and ringcast nodes (same node id, a new HTTP port).

Teardown (close(), also on a failing test and from atexit) stops every node (SIGTERM, then SIGKILL
after a bound) and every NATS server, and removes the temporary directory. Children are started
with PR_SET_PDEATHSIG=SIGKILL, so they die with the test process even if it is killed; start and
restart them from the main thread only (the signal fires when the thread that forked exits).

Run as a script (`nats_cluster.py serve --nodes 3`) it starts a cluster for the Node tests: it
prints one JSON line with the ports, then obeys commands on stdin (`kill-nats I`, `start-nats I`,
`kill-node I`, `start-node I`, `stop-nats-all`, `start-nats-all`), answering a JSON line each, and
tears everything down when stdin closes.
"""

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

RINGCAST_BIN = os.environ.get("RINGCAST_BIN", "")
NATS_BIN = os.environ.get("NATS_SERVER_BIN", shutil.which("nats-server") or "/usr/bin/nats-server")
LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_until(predicate, timeout, what, interval=0.05):
    """Bounded polling: returns predicate()'s truthy value, or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_ports(n):
    """n distinct free loopback ports (held together while chosen, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_get(port, path, timeout=2.0):
    """(status, body bytes, headers) or (None, b"", {}) when the port does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
    except (OSError, ValueError):
        return None, b"", {}


class NatsServer:
    """One nats-server of the cluster; ports and store directory survive restarts."""

    def __init__(self, index, ports, routes, root, cluster_name):
        self.index = index
        self.name = f"n{index}"
        self.port, self.cluster_port, self.http_port = ports
        self.routes = routes
        self.store = os.path.join(root, f"nats{index}")
        self.log_path = os.path.join(root, f"nats{index}.log")
        self.cluster_name = cluster_name
        self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        os.makedirs(self.store, exist_ok=True)
        cmd = [NATS_BIN, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.http_port),
               "--server_name", self.name, "-js", "-sd", self.store,
               "--cluster_name", self.cluster_name,
               "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
               "--routes", ",".join(self.routes)]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     preexec_fn=_die_with_parent)
        log.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: no goodbye to clients or routes."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout=10.0):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def jsz(self):
        status, body, _ = http_get(self.http_port, "/jsz")
        return json.loads(body) if status == 200 else None

    def healthy(self):
        """Running, JetStream current (GET /healthz 200) and a meta leader known."""
        if not self.running():
            return False
        status, _, _ = http_get(self.http_port, "/healthz")
        if status != 200:
            return False
        jsz = self.jsz()
        return bool(jsz and (jsz.get("meta_cluster") or {}).get("leader"))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class RingcastNode:
    """One ringcast process of the cluster. kill() is kill -9; restart() keeps the node id."""

    def __init__(self, index, node_id, args, root):
        self.index = index
        self.node_id = node_id
        self.args = [str(a) for a in args]
        self.log_path = os.path.join(root, f"{node_id}.log")
        self.proc = None
        self.port = None
        self.killed = False
        self.exit_codes = []  # of every incarnation stopped with SIGTERM

    def start(self, start_timeout=20.0):
        if not RINGCAST_BIN:
            raise unittest.SkipTest("RINGCAST_BIN is not set (run through ctest)")
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = None
        self.killed = False
        cmd = [RINGCAST_BIN, "--listen", "127.0.0.1:0", "--no-pin", "--drain-grace-ms", "0"] + self.args
        with open(self.log_path, "ab") as log:
            log.write(f"---- start: {' '.join(cmd)}\n".encode())
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        seen = threading.Event()
        proc, log = self.proc, self._log

        def read():
            for raw in proc.stderr:
                log.write(raw)
                log.flush()
                m = LISTEN_RE.search(raw.decode("utf-8", "replace"))
                if m and not seen.is_set():
                    self.port = int(m.group(1))
                    seen.set()
            log.close()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not seen.wait(start_timeout):
            self.kill()
            raise AssertionError(f"{self.node_id} did not start:\n" + self.log()[-4000:])

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        return self.running() and http_get(self.port, "/readyz")[0] == 200

    def wait_ready(self, timeout=30.0):
        wait_until(self.ready, timeout, f"{self.node_id} /readyz 200")

    def kill(self):
        """kill -9: no drain, no goodbye to NATS (its leases expire)."""
        if self.proc is None:
            return
        if self.running():
            self.proc.kill()
            self.killed = True
        self.proc.wait(10)
        self._reader.join(5)

    def stop(self, timeout=20.0, signalled=False):
        """SIGTERM (unless `signalled`: a second one means "close everything now") and wait;
        returns the exit code (kills after `timeout`, returning None)."""
        if self.proc is None:
            return None
        if self.running() and not signalled:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._reader.join(5)
        return code

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


_live_clusters = set()


@atexit.register
def _close_all():
    for c in list(_live_clusters):
        c.close()


class Cluster:
    """3 NATS servers + `nodes` ringcast nodes. Use as a context manager (or call close())."""

    def __init__(self, nodes=3, shards=1, node_args=(), lease_ms=1500, nats_servers=3, replicas=None):
        if not os.access(NATS_BIN, os.X_OK):
            raise unittest.SkipTest(f"nats-server not found ({NATS_BIN}; scripts/setup installs it)")
        self.root = tempfile.mkdtemp(prefix="rc-cluster-")
        self.nats = []
        self.nodes = []
        self.replicas = replicas if replicas is not None else min(3, nats_servers)
        _live_clusters.add(self)
        try:
            self._start_nats(nats_servers)
            for i in range(nodes):
                self.add_node(shards=shards[i] if isinstance(shards, (list, tuple)) else shards,
                              args=node_args, lease_ms=lease_ms, wait=False)
            for n in self.nodes:
                n.wait_ready()
        except BaseException:
            self.dump_logs()
            self.close()
            raise

    # ---- NATS ----

    def _start_nats(self, count, attempts=3):
        name = f"rc{os.getpid()}"
        for attempt in range(attempts):
            ports = free_ports(3 * count)
            triples = [ports[3 * i:3 * i + 3] for i in range(count)]
            routes = [f"nats://127.0.0.1:{t[1]}" for t in triples]
            self.nats = [NatsServer(i, triples[i], [r for j, r in enumerate(routes) if j != i],
                                    self.root, name) for i in range(count)]
            for s in self.nats:
                s.start()
            try:
                self.wait_nats_healthy(timeout=30.0)
                return
            except AssertionError:
                # A port taken between choosing and binding (tests run in parallel): retry.
                clash = any("address already in use" in s.log() for s in self.nats)
                for s in self.nats:
                    s.kill()
                if not clash or attempt == attempts - 1:
                    raise
                shutil.rmtree(self.root, ignore_errors=True)
                os.makedirs(self.root, exist_ok=True)

    def wait_nats_healthy(self, servers=None, timeout=30.0):
        servers = self.nats if servers is None else servers
        wait_until(lambda: all(s.healthy() for s in servers), timeout,
                   "NATS servers " + ",".join(s.name for s in servers) + " healthy with a meta leader")

    def nats_urls(self, first=0):
        n = len(self.nats)
        return ",".join(self.nats[(first + k) % n].url for k in range(n))

    def kill_nats(self, i):
        self.nats[i].kill()

    def restart_nats(self, i, wait=True):
        self.nats[i].start()
        if wait:
            self.wait_nats_healthy([self.nats[i]])

    def kill_all_nats(self):
        for s in self.nats:
            s.kill()

    def start_all_nats(self, wait=True):
        for s in self.nats:
            if not s.running():
                s.start()
        if wait:
            self.wait_nats_healthy()

    # ---- ringcast nodes ----

    def add_node(self, shards=1, args=(), lease_ms=1500, wait=True):
        i = len(self.nodes)
        node_args = ["--shards", shards, "--nats", self.nats_urls(first=i), "--nats-replicas",
                     self.replicas, "--node-id", f"node{i}", "--broker-lease-ms", lease_ms] + list(args)
        node = RingcastNode(i, f"node{i}", node_args, self.root)
        node.shards = shards
        self.nodes.append(node)
        node.start()
        if wait:
            node.wait_ready()
        return node

    def kill_node(self, i):
        self.nodes[i].kill()

    def restart_node(self, i, wait=True):
        self.nodes[i].start()
        if wait:
            self.nodes[i].wait_ready()

    def live_nodes(self):
        return [n for n in self.nodes if n.running()]

    # ---- teardown ----

    def stop_nodes(self):
        """SIGTERM to every running node at once, then waits; returns {node_id: exit code}."""
        running = [n for n in self.nodes if n.running()]
        for n in running:
            n.proc.terminate()
        codes = {}
        for n in running:
            code = n.stop(signalled=True)
            n.exit_codes.append(code)
            codes[n.node_id] = code
        return codes

    def close(self):
        if self not in _live_clusters:
            return {}
        _live_clusters.discard(self)
        codes = {}
        try:
            codes = self.stop_nodes()
        finally:
            for n in self.nodes:
                n.kill()
            for s in self.nats:
                s.stop()
            shutil.rmtree(self.root, ignore_errors=True)
        return codes

    def dump_logs(self, tail=3000, out=sys.stderr):
        for n in self.nodes:
            print(f"==== {n.node_id} (port {n.port}) log tail ====\n{n.log()[-tail:]}", file=out)
        for s in self.nats:
            print(f"==== nats {s.name} (port {s.port}) log tail ====\n{s.log()[-tail:]}", file=out)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs()
        self.close()


class ClusterTestCase(unittest.TestCase):
    """Starts a Cluster per test (CLUSTER_KW); teardown dumps logs on failure, checks that every
    node stopped with SIGTERM exits 0, and kills everything whatever happened."""

    CLUSTER_KW = {}

    def setUp(self):
        self.cluster = Cluster(**self.CLUSTER_KW)
        self.addCleanup(self._teardown_cluster)

    def _teardown_cluster(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is not None and any(
            t is self for t, _ in getattr(result, "errors", []) + getattr(result, "failures", []))
        codes = {}
        try:
            codes = self.cluster.stop_nodes()
        finally:
            if failed or any(c != 0 for c in codes.values()):
                self.cluster.dump_logs()
            self.cluster.close()
        bad = {k: v for k, v in codes.items() if v != 0}
        if bad and not failed:
            self.fail(f"ringcast nodes did not exit 0 on SIGTERM: {bad}")


# ---- serve mode for the Node tests ----

def _serve(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["serve"])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--lease-ms", type=int, default=1500)
    node_args = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cluster = Cluster(nodes=a.nodes, shards=a.shards, lease_ms=a.lease_ms, node_args=node_args)

    def state():
        return {"nodes": [n.port if n.running() else None for n in cluster.nodes],
                "nats": [s.port if s.running() else None for s in cluster.nats]}

    try:
        print(json.dumps(state()), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                cmd, i = words[0], (int(words[1]) if len(words) > 1 else None)
                {"kill-nats": lambda: cluster.kill_nats(i), "start-nats": lambda: cluster.restart_nats(i),
                 "kill-node": lambda: cluster.kill_node(i), "start-node": lambda: cluster.restart_node(i),
                 "stop-nats-all": cluster.kill_all_nats, "start-nats-all": cluster.start_all_nats}[cmd]()
                print(json.dumps({"ok": True, **state()}), flush=True)
            except Exception as e:  # noqa: BLE001 - reported to the Node test
                print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
    finally:
        codes = cluster.stop_nodes()
        if any(c != 0 for c in codes.values()):
            cluster.dump_logs()
            print(json.dumps({"exit_codes": codes}), file=sys.stderr, flush=True)
        cluster.close()
    sys.exit(1 if any(c != 0 for c in codes.values()) else 0)


if __name__ == "__main__":
    _serve(sys.argv[1:])
