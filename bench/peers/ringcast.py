"""ringcast as a peer of the compare scripts (bench/stream-compare, bench/http-compare), through
the same peer-module interface as the others (bench/comparelib.py describes it).

One ringcast process on 127.0.0.1 with a kernel-chosen port (loadlib.Server), `--shards N`
(--shards, default 1), `--echo` (ws-echo's /echo), the whole process pinned with taskset to the
peer CPUs and its shards pinned with --cpus when there are as many CPUs as shards (otherwise
--no-pin: the shards share the taskset CPUs). Started with loadlib.die_with_parent; stopped with
SIGTERM (--drain-grace-ms 0), then SIGKILL. It speaks ringcast-load's default dialect, so it
needs no load flags. Beyond the interface: SUPPORTS also has ws-idle and ws-chat (the RSS
tables are ringcast's alone), and start() takes extra server flags (the chat run's mock
settings). fanout-deflate: start(deflate=True) adds --ws-deflate (ringcast-load's offer asks
for server_no_context_takeover, so fan-out is compressed once per event).

Single-threaded: call from the main thread.
"""

import os

import loadlib

NAME = "ringcast"
SUPPORTS = {"echo", "fanout-ws", "fanout-sse", "fanout-deflate", "http", "ws-idle", "ws-chat"}


def add_options(parser):
    g = parser.add_argument_group("ringcast peer")
    g.add_argument("--ringcast", default=None, metavar="PATH",
                   help="ringcast binary (default: $RINGCAST_BIN or build/release/server/ringcast)")
    g.add_argument("--shards", type=int, default=1, help="ringcast's --shards")
    g.add_argument("--ringcast-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for ringcast (repeatable)")


def _binary(args):
    return getattr(args, "ringcast", None) or loadlib.ringcast_bin()


def available(args):
    path = _binary(args)
    if not os.access(path, os.X_OK):
        return ("ringcast binary not found at %s (cmake --build --preset release, or "
                "--ringcast PATH)" % path)
    return None


def _cpu_count(spec):
    n = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


class Peer:
    def __init__(self, args, cpus, extra):
        shards = getattr(args, "shards", 1)
        flags = ["--echo"] + list(getattr(args, "ringcast_arg", [])) + [str(a) for a in extra]
        self.server = loadlib.Server(
            *flags, shards=shards, cpus=cpus if shards <= _cpu_count(cpus) else None,
            binary=_binary(args), taskset=cpus)
        self.target = self.server.target
        self.pub_target = None
        self.pids = [self.server.pid]
        self.command = " ".join(self.server.cmd)

    def load_flags(self, mode, sub):
        return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.stop()


def start(args, tmpdir, cpus, extra=(), deflate=False):
    return Peer(args, cpus, list(extra) + (["--ws-deflate"] if deflate else []))
