#!/usr/bin/env python3
"""Wraps a worker command and logs every message it exchanges with ringcast.

    tee.py --log FILE [--framing lines|content-length] -- COMMAND [ARG...]

Runs COMMAND, copies this process's stdin to the child's stdin and the child's stdout to this
process's stdout, message by message (one line, or one Content-Length frame), and appends each
message to FILE as one JSON line: {"dir": "to_worker" | "from_worker", "t": <unix seconds>,
"pid": <tee's pid>, "text": "<the message, as sent, without its framing>"}. Several workers may
share a FILE (each write is one append); "pid" tells their conversations apart. The child's stderr is inherited. The text
is logged as received (not parsed), so a worker writing garbage shows up as such.

When ringcast closes stdin, the child's stdin is closed; when the child closes its stdout, tee
waits for it and exits with its status (a signal's death as 128 + signal), so the supervisor sees
the worker's own exit. The child dies with tee (PR_SET_PDEATHSIG), and shares tee's process group
(ringcast signals the group).

Python standard library only. Thread-safety: one thread per direction; the log is appended under a
lock, one write per message.
"""

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def read_message(stream, framing):
    """One message (bytes without framing, the raw frame) or (None, None) at EOF."""
    if framing == "lines":
        line = stream.readline()
        if not line:
            return None, None
        return line.rstrip(b"\n"), line
    head, length = b"", None
    while True:
        h = stream.readline()
        if not h:
            return None, None
        head += h
        if h in (b"\r\n", b"\n"):
            break
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        return head, head  # a bad header: passed on as it is (the reader decides)
    body = stream.read(length)
    return body, head + body


class Log:
    def __init__(self, path):
        self.f = open(path, "ab", buffering=0)
        self.lock = threading.Lock()

    def add(self, direction, text):
        entry = {"dir": direction, "t": time.time(), "pid": os.getpid(),
                 "text": text.decode("utf-8", "replace")}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        with self.lock:
            self.f.write(line)


def pump(src, dst, framing, log, direction, on_eof):
    try:
        while True:
            text, frame = read_message(src, framing)
            if frame is None:
                break
            log.add(direction, text)
            dst.write(frame)
            dst.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass
    finally:
        on_eof()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", required=True, help="the JSONL file to append to")
    ap.add_argument("--framing", choices=["lines", "content-length"], default="lines")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    opts = ap.parse_args()
    cmd = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not cmd:
        ap.error("no command")
    log = Log(opts.log)
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                             preexec_fn=die_with_parent)

    def close_child_stdin():
        try:
            child.stdin.close()
        except OSError:
            pass

    threading.Thread(target=pump, daemon=True,
                     args=(sys.stdin.buffer, child.stdin, opts.framing, log, "to_worker",
                           close_child_stdin)).start()
    pump(child.stdout, sys.stdout.buffer, opts.framing, log, "from_worker", lambda: None)
    code = child.wait()
    sys.stdout.flush()
    # os._exit: the stdin thread may still be blocked in a read, and a normal interpreter exit
    # would abort on the lock it holds.
    os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
