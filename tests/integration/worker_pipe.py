"""Drives a worker of the `ringcast` JSON-RPC dialect (tests/workers/) directly over its stdio
pipes, as ringcast would, and turns its answers into one comparable shape: the ordered list of
events a ringcast engine would emit (delta / tool_call / done, then usage or error).

Also what the tests need to build a worker's `generate` params from a chat completions body, the
way ringcast's dialect normalizes it (docs/workers.md): turns with tool calls folded into text.
All reads are bounded by a deadline.
"""

import json
import os
import select
import subprocess
import sys
import time

WORKERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workers")
MOCK_WORKER = os.path.normpath(os.path.join(WORKERS_DIR, "mock_worker.py"))
FAULT_WORKER = os.path.normpath(os.path.join(WORKERS_DIR, "fault_worker.py"))


class WorkerPipe:
    """A worker process; use as a context manager (stdin closed, then the process reaped)."""

    def __init__(self, script, *args, framing="lines", timeout=20.0):
        argv = [sys.executable, script, *[str(a) for a in args]]
        if framing != "lines":
            argv += ["--framing", framing]
        self.framing = framing
        self.timeout = timeout
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""
        self.next_id = 1
        self.pending = []  # messages read but not yet consumed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def send(self, obj):
        payload = json.dumps(obj).encode()
        if self.framing == "lines":
            data = payload + b"\n"
        else:
            data = b"Content-Length: %d\r\n\r\n" % len(payload) + payload
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method, params):
        msg_id = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _one(self):
        """Parses one framed message out of the buffer, or None."""
        if self.framing == "lines":
            nl = self.buf.find(b"\n")
            if nl < 0:
                return None
            line, self.buf = self.buf[:nl], self.buf[nl + 1:]
            return json.loads(line)
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        length = int(self.buf[:end].split(b":", 1)[1])
        if len(self.buf) < end + 4 + length:
            return None
        body = self.buf[end + 4:end + 4 + length]
        self.buf = self.buf[end + 4 + length:]
        return json.loads(body)

    def read(self, timeout=None):
        """The next message from the worker (TimeoutError / EOFError otherwise)."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (timeout or self.timeout)
        fd = self.proc.stdout.fileno()
        while True:
            msg = self._one()
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message from the worker in time")
            r, _, _ = select.select([fd], [], [], remaining)
            if r:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise EOFError("the worker closed its stdout")
                self.buf += chunk

    def answer(self, msg_id, timeout=None):
        """Reads until the response to `msg_id`; returns (response, notifications before it)."""
        notes = []
        while True:
            m = self.read(timeout)
            if m.get("id") == msg_id and ("result" in m or "error" in m):
                return m, notes
            notes.append(m)

    def initialize(self, upstream="u", index=0):
        msg_id = self.request("initialize", {
            "protocol_version": 1, "client": {"name": "ringcast", "version": "test"},
            "worker": {"upstream": upstream, "index": index},
            "capabilities": {"cancel": True, "ping": True}})
        resp, _ = self.answer(msg_id)
        self.notify("initialized", {})
        return resp

    def generate(self, params, timeout=None):
        """Runs one generate; returns its events (see events_of)."""
        msg_id = self.request("generate", params)
        resp, notes = self.answer(msg_id, timeout)
        return events_of(msg_id, notes, resp)


def events_of(msg_id, notes, resp):
    """The worker's notifications for `msg_id` plus its answer, as engine events:
    ("delta", choice, text) / ("tool_call", choice, index, id or None, name or None, arguments)
    / ("done", choice, reason), then ("usage", prompt, completion) or ("error", code, data)."""
    out = []
    for n in notes:
        p = n.get("params") or {}
        if p.get("id") != msg_id:
            continue
        if n["method"] == "generate/delta":
            out.append(("delta", p["choice"], p["text"]))
        elif n["method"] == "generate/tool_call":
            out.append(("tool_call", p["choice"], p["index"], p.get("call_id"), p.get("name"),
                        p.get("arguments", "")))
        elif n["method"] == "generate/done":
            out.append(("done", p["choice"], p["finish_reason"]))
    if "error" in resp:
        out.append(("error", resp["error"]["code"], resp["error"].get("data")))
    else:
        u = resp["result"]["usage"]
        out.append(("usage", u["prompt_tokens"], u["completion_tokens"]))
    return out


def chat_events_from_sse(events):
    """Chat SSE [(type, data)] (openai_client.sse_events) -> the same event list as events_of;
    the role chunks are left out, the usage chunk becomes ("usage", …), an error ("error", code)."""
    out = []
    for _, data in events:
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            out.append(("error", chunk["error"].get("code")))
            continue
        for ch in chunk.get("choices") or []:
            d = ch.get("delta") or {}
            if d.get("content"):
                out.append(("delta", ch["index"], d["content"]))
            for t in d.get("tool_calls") or []:
                f = t.get("function") or {}
                last = out[-1] if out else None
                if ("id" not in t and last and last[0] == "tool_call" and last[5] is None
                        and last[1:3] == (ch["index"], t["index"])):
                    # ringcast's chat front sends a call's id and name in a chunk of their own,
                    # then the first fragment: one engine event.
                    out[-1] = last[:5] + (f.get("arguments", ""),)
                    continue
                out.append(("tool_call", ch["index"], t["index"], t.get("id"), f.get("name"),
                            None if "id" in t else f.get("arguments", "")))
            if ch.get("finish_reason"):
                out.append(("done", ch["index"], ch["finish_reason"]))
        if chunk.get("usage"):
            out.append(("usage", chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"]))
    return out


def generate_params(body, model=None):
    """A chat completions body -> the dialect's `generate` params (ringcast's normalized view)."""
    messages = []
    for m in body["messages"]:
        text = m.get("content") or ""
        for call in m.get("tool_calls") or []:
            if text:
                text += "\n"
            text += call["function"]["name"] + "(" + call["function"]["arguments"] + ")"
        messages.append({"role": m["role"], "content": text})
    tools = []
    for t in body.get("tools") or []:
        f = t["function"]
        tool = {"type": "function", "name": f["name"], "description": f.get("description", "")}
        if "parameters" in f:
            tool["parameters"] = f["parameters"]
        tools.append(tool)
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = {"type": "function", "name": choice["function"]["name"]}
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    return {"request_id": "test", "model": model or body["model"], "deadline_ms": None,
            "api": "chat", "stream": bool(body.get("stream")), "messages": messages,
            "tools": tools, "tool_choice": choice,
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "n": body.get("n", 1),
            "max_tokens": body.get("max_completion_tokens", body.get("max_tokens")), "stop": stop,
            "seed": body.get("seed"), "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0), "request": body}
