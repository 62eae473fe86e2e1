"""floor (../shared/tools/floor.c), the cheapest HTTP/1.1 responder io_uring allows, as an HTTP
peer of bench/http-compare (peer-module interface: bench/comparelib.py). It is a measuring
stick, not a server: one thread, multishot accept and recv, one send per received chunk, no
parsing. Compiled once per process (`cc -O2 ... -luring`) into the run's temporary directory,
pinned to the peer CPUs with taskset.

Single-threaded: call from the main thread.
"""

import os
from pathlib import Path

import peers

NAME = "floor"
SUPPORTS = {"http"}


def add_options(parser):
    parser.add_argument("--floor-src", default=str(peers.default_floor_src()),
                        help="floor.c to compile at run time (default ../shared/tools/floor.c)")


def available(args):
    if not os.path.isfile(args.floor_src):
        return "floor source %s not found (--floor-src)" % args.floor_src
    return None


def start(args, tmpdir, cpus):
    server = peers.prepare_server("floor", args, Path(tmpdir), worker_connections=0, cpus=cpus)
    return peers.HttpPeer(server)
