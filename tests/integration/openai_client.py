"""Small helpers to drive ringcast's OpenAI routes over raw HTTP, SSE and WebSocket, and to put
each front end's output into one comparable shape (text, tool calls, finish reasons, usage)."""

import asyncio
import json
import re

import websockets

from harness import ResponseReader, connect


def post_json(port, path, body, headers=None, timeout=30.0):
    data = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with connect(port, timeout) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(data)}\r\n{extra}\r\n").encode() + data)
        return ResponseReader(s, timeout).read()


def sse_events(raw_body):
    """Parses an SSE body into [(event type or None, data string)]; comments are dropped."""
    events = []
    for block in raw_body.decode().split("\n\n"):
        if not block.strip():
            continue
        etype, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                etype = value
            elif name == "data":
                data.append(value)
        if data:
            events.append((etype, "\n".join(data)))
    return events


# ---- one shape for every front end ----

def chat_from_json(c):
    out = {"choices": [], "usage": {k: c["usage"][k] for k in ("prompt_tokens", "completion_tokens")}}
    for ch in c["choices"]:
        calls = [(t["function"]["name"], t["function"]["arguments"]) for t in ch["message"].get("tool_calls") or []]
        out["choices"].append({"text": ch["message"]["content"] or "", "tool_calls": calls,
                               "finish": ch["finish_reason"]})
    return out


def chat_from_sse(body):
    choices, usage = {}, None
    for _, data in sse_events(body):
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = {k: chunk["usage"][k] for k in ("prompt_tokens", "completion_tokens")}
        for ch in chunk["choices"]:
            c = choices.setdefault(ch["index"], {"text": "", "tool_calls": [], "finish": None})
            d = ch["delta"]
            c["text"] += d.get("content") or ""
            for t in d.get("tool_calls") or []:
                if "id" in t:
                    c["tool_calls"].append([t["function"]["name"], ""])
                c["tool_calls"][t["index"]][1] += t["function"].get("arguments", "")
            if ch["finish_reason"]:
                c["finish"] = ch["finish_reason"]
    return {"choices": [dict(c, tool_calls=[tuple(t) for t in c["tool_calls"]])
                        for _, c in sorted(choices.items())], "usage": usage}


def chat_from_ws(events):
    """Events of one chat.completion request on /ws (after the request was sent)."""
    text, calls, final = {}, {}, None
    for e in events:
        if e["event"] == "chat.delta":
            text[e["data"]["index"]] = text.get(e["data"]["index"], "") + e["data"]["delta"]
        elif e["event"] == "chat.tool_call":
            f = e["data"]["tool_call"]["function"]
            calls.setdefault(e["data"]["index"], []).append((f["name"], f["arguments"]))
        elif e["event"] == "chat.complete":
            final = e["data"]
    n = len(final.get("choices", [None]))
    finishes = [c["finish_reason"] for c in final["choices"]] if "choices" in final else [final["finish_reason"]]
    return {"choices": [{"text": text.get(i, ""), "tool_calls": calls.get(i, []), "finish": finishes[i]}
                        for i in range(n)],
            "usage": {k: final["usage"][k] for k in ("prompt_tokens", "completion_tokens")}}


def responses_summary(final_response):
    out = {"text": "", "calls": [], "status": final_response["status"],
           "usage": {k: final_response["usage"][k] for k in ("input_tokens", "output_tokens")}}
    for item in final_response["output"]:
        if item["type"] == "message":
            out["text"] += "".join(p["text"] for p in item["content"])
        else:
            out["calls"].append((item["name"], item["arguments"]))
    return out


def responses_from_events(events):
    """[(type, data dict)] of a Responses stream -> the final response's summary, checking order."""
    types = [t for t, _ in events]
    assert types[0] == "response.created" and types[1] == "response.in_progress", types
    seqs = [d["sequence_number"] for _, d in events]
    assert seqs == list(range(len(seqs))), seqs
    text = "".join(d["delta"] for t, d in events if t == "response.output_text.delta")
    final = events[-1][1]["response"]
    summary = responses_summary(final)
    assert summary["text"] == text, (summary["text"], text)
    return summary


async def ws_collect(url, messages, until, timeout=30.0):
    """Sends `messages` on one WebSocket and collects JSON events until until(events) is true."""
    async with websockets.connect(url, max_size=None) as ws:
        for m in messages:
            await ws.send(json.dumps(m))
        events = []
        while not until(events):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
        return events


# ---- golden transcripts: ids and clocks normalized ----

NORMALIZE = [
    (re.compile(r"chatcmpl-\d+_[0-9a-f]{16}"), "chatcmpl-ID"),
    (re.compile(r"resp_\d+_[0-9a-f]{16}"), "resp_ID"),
    (re.compile(r"msg_\d+_[0-9a-f]{16}"), "msg_ID"),
    (re.compile(r"fc_\d+_[0-9a-f]{16}"), "fc_ID"),
    (re.compile(r'"(created|created_at|completed_at)":\d+'), r'"\1":0'),
]


def normalize(text):
    for pattern, repl in NORMALIZE:
        text = pattern.sub(repl, text)
    return text
