#!/usr/bin/env python3
"""A worker in ringcast's `ringcast` dialect that misbehaves on command, for supervision tests.

Without a fault it is a simple echo worker: each choice streams the last user message back, one
whitespace-separated word per delta ("hello world" -> "hello", " world"), finishes "stop" (or
"length" at max_tokens), usage = words of every message / deltas sent.

Faults chosen by the last user message, `fault:NAME [key=value ...]`:
  crash-mid-stream   after=N deltas (3), then exits with code=C (3): the client got something
  crash-before-first exits with code=C (3) before any event
  hang               never answers (pings still answered); a cancel is answered -32003, or
                     never with deaf=1
  garbage            writes a line that is not JSON
  garbage-mid-stream after=N deltas (3), then a line that is not JSON
  oversized          writes one valid message of bytes=N (5 MiB) on one line
  overloaded         answers -32001 with data.retry_after_ms=N (when given), data.retryable
                     false when retryable=0
  invalid-params     answers -32602 with data.param "messages"
  error              answers code=N (-32603) with data.retryable when retryable=1
  exit-now           exits with code=C (0) as soon as the request arrives
  slow-tokens        tokens=N deltas (20), one every ms=M (100) milliseconds
An embed whose input is `fault:hang` never answers (a cancel is answered -32003); other embeds
are refused (-32601).
`once=TAG` (with --state-dir) makes a fault fire only the first time any worker sharing that
directory sees TAG; afterwards the request is echoed (e.g. crash once, succeed on the retry).

Flags: --slow-init MS (answer `initialize` late), --crash-at-start (exit 1 before reading),
--stderr-spam N (N stderr lines at start), --no-ping-answer, --marker TEXT (tags the process
for /proc scans), --log FILE (one JSON line per start/initialize/generate/cancel/ping/exit,
appended atomically, so tests see spawns and cancels), --state-dir DIR, --ignore-sigterm,
--ignore-eof (keeps running when stdin closes), --grandchild (spawns a `sleep` carrying the
marker, in the worker's process group), --model NAME (announced; repeatable), --framing.
Details: tests/workers/README.md. Python standard library only; single-threaded.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_io  # noqa: E402

FAULT_RE = re.compile(r"fault:([a-z-]+)((?:\s+[a-z_]+=\S+)*)")


def parse_fault(text):
    m = FAULT_RE.search(text or "")
    if not m:
        return None, {}
    args = dict(kv.split("=", 1) for kv in m.group(2).split())
    return m.group(1), args


def last_user_text(messages):
    for m in reversed(messages):
        if m.get("role") == "user":
            return m.get("content") or ""
    return ""


class FaultWorker(worker_io.Worker):
    def __init__(self, opts):
        super().__init__(opts.framing)
        self.opts = opts
        self.calls = {}  # generate id -> pending timer state (slow/hang)

    def log(self, event, **fields):
        if not self.opts.log:
            return
        line = json.dumps(dict({"event": event, "pid": os.getpid(), "t": time.time()}, **fields)) + "\n"
        fd = os.open(self.opts.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def exit(self, code, reason):
        self.flush()
        self.log("exit", code=code, reason=reason)
        os._exit(code)

    # ---- handshake and liveness ----

    def handle_initialize(self, msg_id, params):
        self.log("initialize", worker=params.get("worker"))
        result = {"protocol_version": 1, "server": {"name": "ringcast-fault-worker", "version": "1"},
                  "models": list(self.opts.model), "capabilities": {"embeddings": False}}
        if self.opts.slow_init:
            self.after(self.opts.slow_init / 1000.0, lambda: self.reply(msg_id, result))
            return None
        return result

    def handle_ping(self, msg_id, params):
        self.log("ping", answered=not self.opts.no_ping_answer)
        return None if self.opts.no_ping_answer else {}

    def handle_cancel(self, msg_id, params):
        gid = params.get("id")
        self.log("cancel", id=gid, known=gid in self.calls)
        if self.calls.get(gid) == "deaf":
            return  # hang deaf=1: the call goes on, the cancel is never answered
        if self.calls.pop(gid, None) is not None:
            self.reply_error(gid, worker_io.CANCELLED, "cancelled")

    # ---- embed: only the hang fault (a text "fault:hang"); anything else is refused ----

    def handle_embed(self, msg_id, p):
        texts = p.get("input") or []
        self.log("embed", id=msg_id, request_id=p.get("request_id"))
        if any(isinstance(t, str) and t.startswith("fault:hang") for t in texts):
            self.calls[msg_id] = True  # a cancel is answered -32003
            return None
        self.reply_error(msg_id, worker_io.METHOD_NOT_FOUND, "unknown method 'embed'")
        return None

    # ---- generate ----

    def handle_generate(self, msg_id, p):
        messages = p.get("messages") or []
        fault, args = parse_fault(last_user_text(messages))
        if fault and "once" in args and not self.first_time(args["once"]):
            fault = None
        self.log("generate", id=msg_id, request_id=p.get("request_id"), fault=fault,
                 deadline_ms=p.get("deadline_ms"), stream=p.get("stream"), model=p.get("model"),
                 prompt=last_user_text(messages)[:200])
        code = int(args.get("code", 3))
        if fault == "crash-before-first":
            self.exit(code, fault)
        if fault == "exit-now":
            self.exit(int(args.get("code", 0)), fault)
        if fault == "garbage-mid-stream":
            for i in range(int(args.get("after", 3))):
                self.notify("generate/delta", {"id": msg_id, "choice": 0, "text": f"part{i} "})
            self.flush()
            time.sleep(0.3)  # the deltas reach the client before the garbage
            self.send_raw(b"this is not JSON {\n")
            self.calls[msg_id] = True
            return None
        if fault == "garbage":
            self.send_raw(b"this is not JSON {\n")
            self.calls[msg_id] = True
            return None
        if fault == "oversized":
            size = int(args.get("bytes", 5 << 20))
            self.notify("generate/delta", {"id": msg_id, "choice": 0, "text": "x" * size})
            self.calls[msg_id] = True
            return None
        if fault == "overloaded":
            data = {"retry_after_ms": int(args["retry_after_ms"])} if "retry_after_ms" in args else None
            if args.get("retryable") == "0":
                data = dict(data or {}, retryable=False)
            self.reply_error(msg_id, worker_io.OVERLOADED, "the worker is overloaded", data)
            return None
        if fault == "invalid-params":
            self.reply_error(msg_id, worker_io.INVALID_PARAMS, "the fault worker refuses these messages",
                             {"param": "messages"})
            return None
        if fault == "error":
            data = {"retryable": True} if args.get("retryable") == "1" else None
            self.reply_error(msg_id, int(args.get("code", worker_io.INTERNAL_ERROR)),
                             "the fault worker failed as asked", data)
            return None
        if fault == "hang":
            self.calls[msg_id] = "deaf" if args.get("deaf") == "1" else True
            return None
        if fault == "crash-mid-stream":
            for i in range(int(args.get("after", 3))):
                self.notify("generate/delta", {"id": msg_id, "choice": 0, "text": f"part{i} "})
            self.flush()
            time.sleep(0.3)  # the deltas reach the client before the exit is seen
            self.exit(code, fault)
        words = last_user_text(messages).split() or ["(empty)"]
        interval = 0.0
        if fault == "slow-tokens":
            n = int(args.get("tokens", 20))
            words = [words[i % len(words)] for i in range(n)]
            interval = int(args.get("ms", 100)) / 1000.0
        self.calls[msg_id] = True
        self.echo(msg_id, p, words, interval)
        return None

    def first_time(self, tag):
        if not self.opts.state_dir:
            return True
        try:
            os.close(os.open(os.path.join(self.opts.state_dir, "once-" + re.sub(r"\W", "_", tag)),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    def echo(self, msg_id, p, words, interval):
        n = int(p.get("n") or 1)
        max_tokens = p.get("max_tokens")
        limit = len(words) if max_tokens is None else min(len(words), max_tokens)
        reason = "length" if max_tokens is not None and max_tokens < len(words) else "stop"
        prompt = sum(len((m.get("content") or "").split()) for m in p.get("messages") or [])
        state = {"i": 0}

        def step():
            while msg_id in self.calls:  # else: cancelled
                i = state["i"]
                if i == limit:
                    for c in range(n):
                        self.notify("generate/done", {"id": msg_id, "choice": c, "finish_reason": reason})
                    self.calls.pop(msg_id, None)
                    self.reply(msg_id, {"usage": {"prompt_tokens": prompt, "completion_tokens": limit * n}})
                    return
                for c in range(n):
                    self.notify("generate/delta",
                                {"id": msg_id, "choice": c, "text": ("" if i == 0 else " ") + words[i]})
                state["i"] += 1
                if interval:
                    self.after(interval, step)
                    return

        if interval:
            self.after(interval, step)
        else:
            step()

    def on_eof(self):
        self.log("eof")
        while self.opts.ignore_eof:
            signal.pause()
        self.exit(0, "eof")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slow-init", type=int, default=0, metavar="MS")
    ap.add_argument("--crash-at-start", action="store_true")
    ap.add_argument("--stderr-spam", type=int, default=0, metavar="N")
    ap.add_argument("--no-ping-answer", action="store_true")
    ap.add_argument("--marker", default="")
    ap.add_argument("--log", default="")
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--ignore-sigterm", action="store_true")
    ap.add_argument("--ignore-eof", action="store_true")
    ap.add_argument("--grandchild", action="store_true")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--framing", choices=["lines", "content-length"], default="lines")
    opts = ap.parse_args(argv)
    w = FaultWorker(opts)
    w.log("start", argv=sys.argv[1:])
    if opts.crash_at_start:
        w.exit(1, "crash-at-start")
    if opts.ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: w.log("sigterm-ignored"))
    else:
        signal.signal(signal.SIGTERM, lambda *_: w.exit(0, "sigterm"))
    if opts.grandchild:
        # Stays in our process group; the marker makes it findable in /proc.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)",
                                  opts.marker or "fault-worker-grandchild"])
        w.log("grandchild", child=child.pid)
    for i in range(opts.stderr_spam):
        sys.stderr.write(f"fault worker stderr line {i}\n")
    sys.stderr.flush()
    w.run()


if __name__ == "__main__":
    main()
