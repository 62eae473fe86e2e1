"""A stand-in peer for bench/test_compare.py: a second ringcast started through the peer-module
interface under another name, so the compare scripts' interleaving, medians, ratios and skip
reasons are tested end to end without the real peers. Not a benchmark peer."""

import ringcast

NAME = "twin"
SUPPORTS = {"echo", "fanout-ws", "fanout-sse", "fanout-deflate", "http"}


def add_options(parser):
    parser.add_argument("--twin-unavailable", default=None,
                        help="make the twin report this reason from available()")


def available(args):
    return args.twin_unavailable


def start(args, tmpdir, cpus, deflate=False):
    return ringcast.Peer(args, cpus, ["--ws-deflate"] if deflate else [])
