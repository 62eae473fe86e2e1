"""A stand-in peer for bench/test_compare.py whose start() fails, as a peer whose server does
not come up would: the compare scripts must drop it with the reason and go on."""

NAME = "broken"
SUPPORTS = {"echo", "fanout-ws", "fanout-sse", "http"}


def add_options(parser):
    pass


def available(args):
    return None


def start(args, tmpdir, cpus):
    raise RuntimeError("broken peer: server exited at start-up (status 1)")
