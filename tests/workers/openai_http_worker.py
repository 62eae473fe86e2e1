#!/usr/bin/env python3
"""A ringcast worker (protocol = "ringcast") in front of an OpenAI-compatible HTTP server: each
`generate` becomes a streamed POST {BACKEND_URL}/chat/completions whose chunks go back as
generate/delta, generate/tool_call and generate/done notifications; `embed` becomes a POST
{BACKEND_URL}/embeddings. The example of docs/workers.md ("Wrapping a backend"); tested by
tests/node/worker_example.test.mjs.

    BACKEND_URL=http://127.0.0.1:8000/v1 BACKEND_API_KEY=... python3 openai_http_worker.py

Python standard library only. One thread per generate (ringcast sends up to
max_concurrency_per_worker at once); stdout is written under a lock, one line per message.
"""

import json
import os
import sys
import threading
import urllib.error
import urllib.request

BASE = os.environ.get("BACKEND_URL", "http://127.0.0.1:8000/v1").rstrip("/")
KEY = os.environ.get("BACKEND_API_KEY", "")
out_lock = threading.Lock()
cancelled = set()


def send(msg):
    line = json.dumps(msg, separators=(",", ":"))  # ASCII-only: never a raw newline inside
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def notify(method, params):
    send({"jsonrpc": "2.0", "method": method, "params": params})


def reply(msg_id, result):
    send({"jsonrpc": "2.0", "id": msg_id, "result": result})


def fail(msg_id, code, message, data=None):
    error = {"code": code, "message": message}
    if data:
        error["data"] = data
    send({"jsonrpc": "2.0", "id": msg_id, "error": error})


def post(path, body):
    headers = {"content-type": "application/json"}
    if KEY:
        headers["authorization"] = "Bearer " + KEY
    req = urllib.request.Request(BASE + path, json.dumps(body).encode(), headers)
    return urllib.request.urlopen(req, timeout=600)


def chat_body(p):
    """The backend request: the client's own chat body when it came as one (lossless), else one
    built from ringcast's normalized view (a Responses request)."""
    if p["api"] == "chat":
        body = dict(p["request"])
    else:
        roles = {"developer": "system", "tool": "user"}  # tool output is folded in as text
        body = {"messages": [{"role": roles.get(m["role"], m["role"]), "content": m["content"]}
                             for m in p["messages"]],
                "n": p["n"], "temperature": p["temperature"], "top_p": p["top_p"]}
        if p["tools"]:
            body["tools"] = [{"type": "function", "function": {k: t[k] for k in
                              ("name", "description", "parameters") if k in t}} for t in p["tools"]]
            choice = p["tool_choice"]
            body["tool_choice"] = choice if isinstance(choice, str) else \
                {"type": "function", "function": {"name": choice["name"]}}
        for key in ("max_tokens", "seed"):
            if p[key] is not None:
                body[key] = p[key]
        if p["stop"]:
            body["stop"] = p["stop"]
    body.update(model=p["model"], stream=True, stream_options={"include_usage": True})
    return body


def backend_error(msg_id, e):
    """The backend's HTTP error as a JSON-RPC error ringcast maps back to the same status."""
    try:
        message = json.loads(e.read())["error"]["message"]
    except Exception:
        message = f"backend answered {e.code}"
    code = {400: -32602, 404: -32004, 429: -32001, 503: -32001, 504: -32002}.get(e.code, -32603)
    fail(msg_id, code, message, {"status": e.code})


def generate(msg_id, p):
    usage = {}
    try:
        with post("/chat/completions", chat_body(p)) as r:
            for raw in r:  # server-sent events, one "data: {...}" line per chunk
                if msg_id in cancelled:
                    return fail(msg_id, -32003, "cancelled")
                line = raw.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                usage = chunk.get("usage") or usage
                for c in chunk.get("choices", []):
                    delta = c.get("delta") or {}
                    if delta.get("content"):
                        notify("generate/delta", {"id": msg_id, "choice": c["index"],
                                                  "text": delta["content"]})
                    for tc in delta.get("tool_calls") or []:
                        ev = {"id": msg_id, "choice": c["index"], "index": tc["index"],
                              "arguments": tc["function"].get("arguments", "")}
                        if tc.get("id"):
                            ev.update(call_id=tc["id"], name=tc["function"]["name"])
                        notify("generate/tool_call", ev)
                    if c.get("finish_reason"):
                        notify("generate/done", {"id": msg_id, "choice": c["index"],
                                                 "finish_reason": c["finish_reason"]})
        reply(msg_id, {"usage": {"prompt_tokens": usage.get("prompt_tokens", 0),
                                 "completion_tokens": usage.get("completion_tokens", 0)}})
    except urllib.error.HTTPError as e:
        backend_error(msg_id, e)
    except Exception as e:  # unreachable backend, broken stream: a server error, retryable
        fail(msg_id, -32603, f"backend: {e}", {"retryable": True})
    finally:
        cancelled.discard(msg_id)


def embed(msg_id, p):
    body = {"model": p["model"], "input": p["input"]}
    if p["dimensions"] is not None:
        body["dimensions"] = p["dimensions"]
    try:
        with post("/embeddings", body) as r:
            answer = json.loads(r.read())
        reply(msg_id, {"data": [d["embedding"] for d in answer["data"]],
                       "prompt_tokens": answer["usage"]["prompt_tokens"]})
    except urllib.error.HTTPError as e:
        backend_error(msg_id, e)
    except Exception as e:
        fail(msg_id, -32603, f"backend: {e}")


def main():
    for line in sys.stdin:  # ringcast closes stdin when it stops the worker
        msg = json.loads(line)
        method, msg_id, p = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method == "initialize":
            reply(msg_id, {"protocol_version": 1,
                           "server": {"name": "openai-http-worker", "version": "1"},
                           "models": [],  # none announced: ringcast's routes decide
                           "capabilities": {"embeddings": True}})
        elif method == "ping":
            reply(msg_id, {})
        elif method == "cancel":
            cancelled.add(p["id"])
        elif method in ("generate", "embed"):
            target = generate if method == "generate" else embed
            threading.Thread(target=target, args=(msg_id, p), daemon=True).start()
        elif msg_id is not None:  # "initialized" and other notifications need no answer
            fail(msg_id, -32601, f"unknown method {method}")


if __name__ == "__main__":
    main()
