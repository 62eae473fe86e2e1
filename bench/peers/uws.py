"""The uWebSockets peer (bench/peers/uws_peer.cc) for the comparison benchmarks (stdlib only).

uWebSockets is not a dependency: the user points --uws-src (or RINGCAST_UWS_SRC) at a checkout
of uNetworking/uWebSockets with its uSockets submodule in DIR/uSockets. start() builds uSockets
and our peer against it into the run's temporary directory (once per process: later calls reuse
the binary while it exists) with uWS's own build flags (-O3 -flto -march=native, C++2b, no SSL,
zlib for permessage-deflate) and uSockets' default event loop, epoll (its io_uring backend is
not used). The peer is one process, one thread, one uWS::App, pinned with taskset to `cpus`:
nothing of it is left unpinned. Nothing built here is committed; it lives in tmpdir.

What the peer serves is described at the top of uws_peer.cc: ringcast's own protocol subset
(/echo, /ws subscribe/publish, POST /v1/topics/<t>, SSE /v1/topics/<t>/events), so ringcast-load
talks to it as to ringcast (with `--dialect uws`, an alias of ringcast, where ringcast-load has
--dialect). Readiness of a subscriber is the same as ringcast's: the `subscribed` event on /ws,
the response head on SSE.

Thread-safety: call from the main thread (die_with_parent is tied to the forking thread).
"""

import os
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import loadlib  # noqa: E402  (bench/loadlib.py)

NAME = "uws"
SUPPORTS = {"echo", "fanout-ws", "fanout-sse", "fanout-deflate"}

PEER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uws_peer.cc")
DEFLATE_FLAGS = {"off": [], "shared": ["--deflate"], "prepared": ["--deflate-prepared"]}

_built = {}  # realpath of the checkout -> the peer binary built by this process
_load_has_dialect = None


def add_options(parser):
    parser.add_argument(
        "--uws-src", metavar="DIR", default=os.environ.get("RINGCAST_UWS_SRC"),
        help="a uWebSockets checkout (with uSockets in DIR/uSockets) to build the uWS peer "
             "from; default $RINGCAST_UWS_SRC; without it the uWS peer is skipped")
    parser.add_argument(
        "--uws-deflate", choices=sorted(DEFLATE_FLAGS), default="off",
        help="the uWS peer's permessage-deflate: off (default), shared (SHARED_COMPRESSOR, "
             "compressed per send) or prepared (SHARED_COMPRESSOR, publications compressed "
             "once with prepareMessage/publishPrepared)")


def _compilers():
    return os.environ.get("CC", "cc"), os.environ.get("CXX", "g++")


def available(args):
    """None if the peer can be built and run, else why not (one line)."""
    src = getattr(args, "uws_src", None)
    if not src:
        return "no uWebSockets checkout given (--uws-src DIR or RINGCAST_UWS_SRC)"
    if not os.path.isdir(src):
        return f"--uws-src {src}: no such directory"
    if not os.path.isfile(os.path.join(src, "src", "App.h")):
        return f"--uws-src {src}: not a uWebSockets checkout (no src/App.h)"
    if not os.path.isfile(os.path.join(src, "uSockets", "src", "libusockets.h")):
        return (f"--uws-src {src}: no uSockets in {os.path.join(src, 'uSockets')} "
                "(git submodule update --init uSockets)")
    for tool in (*_compilers(), "taskset"):
        if shutil.which(tool) is None:
            return f"{tool} not found (needed to build and pin the uWS peer)"
    if not os.path.isfile("/usr/include/zlib.h"):
        return "zlib headers not found (Debian: zlib1g-dev)"
    return None


def _run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the uWS peer failed: {' '.join(cmd)}\n"
                           f"{proc.stdout}{proc.stderr}")


def build(src, tmpdir, log=None):
    """Builds uSockets and the peer into tmpdir/uws-peer; returns the binary (cached)."""
    src = os.path.realpath(src)
    binary = _built.get(src)
    if binary and os.path.exists(binary):
        return binary
    out = os.path.join(tmpdir, "uws-peer")
    objs = os.path.join(out, "uSockets")
    os.makedirs(objs, exist_ok=True)
    cc, cxx = _compilers()
    usockets = os.path.join(src, "uSockets", "src")
    sources = []
    for sub in ("", "eventing", "crypto"):
        d = os.path.join(usockets, sub)
        sources += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".c")]
    if log:
        log(f"  building the uWS peer from {src} into {out} ...")
    # uSockets' Makefile: -O3 -flto, no SSL, C11; its default loop (epoll).
    objects = []
    for i, c in enumerate(sources):
        o = os.path.join(objs, f"{i:02d}_{os.path.basename(c)[:-2]}.o")
        _run([cc, "-O3", "-flto", "-DLIBUS_NO_SSL", "-std=c11", "-I", usockets, "-c", c,
              "-o", o], out)
        objects.append(o)
    # uWS's build.c: -march=native -O3 -flto=auto, C++2b, zlib.
    binary = os.path.join(out, "uws_peer")
    _run([cxx, "-march=native", "-O3", "-flto=auto", "-std=c++2b", "-DLIBUS_NO_SSL",
          "-I", os.path.join(src, "src"), "-I", usockets, PEER_SOURCE, *objects, "-lz",
          "-o", binary], out)
    _built[src] = binary
    return binary


def _dialect_flags():
    """["--dialect", "uws"] when this ringcast-load has --dialect (the uWS peer speaks
    ringcast's protocol, so older ones need nothing)."""
    global _load_has_dialect
    if _load_has_dialect is None:
        try:
            proc = subprocess.run([loadlib.load_bin(), "fanout", "--help"], capture_output=True,
                                  text=True, timeout=30)
            _load_has_dialect = "--dialect" in proc.stdout + proc.stderr
        except (OSError, subprocess.SubprocessError):
            _load_has_dialect = False
    return ["--dialect", "uws"] if _load_has_dialect else []


class Peer(loadlib.ListeningProcess):
    """A running uws_peer; a context manager whose exit stops it (SIGTERM, then SIGKILL)."""

    def __init__(self, binary, cpus, flags=(), start_timeout=15.0):
        # taskset execs: the pid is the peer's, and the peer is one thread.
        super().__init__(["taskset", "-c", str(cpus), binary, "--port", "0", *flags],
                         "the uWS peer", start_timeout)
        try:
            with urllib.request.urlopen(f"http://{self.target}/healthz", timeout=5) as r:
                if r.status != 200 or r.read() != b"ok":
                    raise RuntimeError(f"the uWS peer's /healthz answered {r.status}")
        except BaseException:
            self.stop()
            raise

    pub_target = None  # the publisher uses `target`

    @property
    def pids(self):
        return [self.proc.pid]

    def load_flags(self, mode, sub=None):
        if mode == "ws-echo":
            return ["--ws-path", "/echo"]
        if mode == "fanout":
            return _dialect_flags()
        raise ValueError(f"the uWS peer does not serve ringcast-load mode {mode!r}")

    def stop(self, timeout=10.0):
        return super().stop(timeout)


def start(args, tmpdir, cpus, log=None, deflate=None):
    """Builds the peer if needed (into tmpdir, cached per process) and starts it on `cpus`.
    deflate: None = --uws-deflate; True = its shared compressor (stream-compare's deflate
    section, unless --uws-deflate prepared); False = off."""
    why = available(args)
    if why:
        raise RuntimeError(why)
    binary = build(args.uws_src, tmpdir, log)
    mode = getattr(args, "uws_deflate", "off") or "off"
    if deflate is not None:
        mode = ("prepared" if mode == "prepared" else "shared") if deflate else "off"
    return Peer(binary, cpus, DEFLATE_FLAGS[mode])
