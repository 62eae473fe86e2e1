"""nginx as an HTTP peer of bench/http-compare (peer-module interface: bench/comparelib.py):
Debian's nginx with one worker (`worker_processes 1`), the config generated from
bench/http-compare.d/nginx.conf.in into the run's temporary directory (no access log,
keep-alive without end, `location = /healthz { return 200 "ok"; }`), master and worker pinned
to the peer CPUs with taskset, both measured (pids: the master and its worker).

Single-threaded: call from the main thread.
"""

import shutil
from pathlib import Path

import peers

NAME = "nginx"
SUPPORTS = {"http"}
# Connection-table size: room for the largest scenario (1,000) with nginx's drain margin.
CONNECTIONS = 10_000


def add_options(parser):
    parser.add_argument("--nginx", default="nginx", help="nginx binary")


def available(args):
    if not shutil.which(args.nginx):
        return "nginx not found (%s): scripts/setup --bench, or --nginx PATH" % args.nginx
    return None


def start(args, tmpdir, cpus):
    server = peers.prepare_server("nginx", args, Path(tmpdir),
                                  worker_connections=peers.nginx_slots(CONNECTIONS), cpus=cpus)
    return peers.HttpPeer(server)
