#!/usr/bin/env python3
"""A reference worker in ringcast's `ringcast` dialect that answers exactly as the built-in mock
engine (server/src/mock_engine.cc) for the same request: the same text per choice, the same
tool calls (ids, names, arguments), finish reasons, usage, and the same events in the same order
(one token per delta, 8-byte argument fragments, choices in turn), so what a client sees through
a `jsonrpc` upstream running this worker equals what it sees from the mock. Embeddings too.

It takes the mock's options as flags (--mock-tokens, --mock-first-token-ms, --mock-tokens-per-s,
--mock-max-tokens, --mock-embedding-dim), `--model` (repeatable: the models it announces in its
`initialize` answer; none: it announces none and serves any) and `--framing`. The mock's seed is
the model the worker is asked for (`params.model`, the upstream model), so a parity comparison
names the same model on both sides. Usage: tests/workers/README.md.

Python standard library only; single-threaded (worker_io.Worker's loop).
"""

import argparse
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_io  # noqa: E402
from mock_json import encode_value  # noqa: E402

M64 = (1 << 64) - 1

VOCABULARY = [
    "the", "stream", "server", "token", "signal", "river", "light", "quiet",
    "fast", "shard", "ring", "message", "answer", "garden", "window", "bright",
    "simple", "careful", "network", "packet", "engine", "clear", "morning", "paper",
    "north", "silver", "open", "steady", "small", "large", "green", "water",
    "stone", "bridge", "little", "every", "other", "under", "over", "between",
    "through", "around", "before", "after", "while", "again", "always", "never",
    "often", "rarely", "city", "harbor", "forest", "mountain", "valley", "cloud",
    "thunder", "echo", "lantern", "compass", "signal", "harvest", "season", "winter",
    "summer", "autumn", "spring", "ocean", "island", "meadow", "candle", "thread",
    "needle", "mirror", "shadow", "pattern", "number", "letter", "story", "moment",
    "journey", "kitchen", "market", "village", "station", "corner", "ladder", "pocket",
    "basket", "feather", "pebble", "orchard", "canyon", "desert", "glacier", "prairie",
    "and", "of", "to", "in", "with", "for", "on", "from",
    "is", "was", "will", "can", "may", "would", "could", "should",
    "a", "an", "this", "that", "these", "those", "it", "we",
    "they", "you", "quickly", "slowly", "gently", "boldly", "softly", "warmly",
]
ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
ERROR_KEY = b"ringcast-mock:error-after="


class Rng:
    """splitmix64, as the mock's."""

    def __init__(self, state):
        self.state = state & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53


def hash_bytes(data, h=0xCBF29CE484222325):
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def is_word_byte(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c >= 0x80 or c == 95


def count_tokens(text):
    """The mock's tokenizer: words and punctuation marks (over UTF-8 bytes)."""
    n, in_word = 0, False
    for c in text.encode() if isinstance(text, str) else text:
        if is_word_byte(c):
            if not in_word:
                n += 1
            in_word = True
        else:
            in_word = False
            if c not in b" \t\n\v\f\r":
                n += 1
    return n


def last_user_text(messages):
    for m in reversed(messages):
        if m.get("role") == "user":
            return m.get("content") or ""
    return (messages[-1].get("content") or "") if messages else ""


def error_directive(prompt):
    """"ringcast-mock:error-after=N" in the last user turn: fail after N tokens."""
    b = prompt.encode()
    at = b.find(ERROR_KEY)
    if at < 0:
        return None
    digits = b[at + len(ERROR_KEY):]
    n = 0
    k = 0
    while k < len(digits) and 48 <= digits[k] <= 57:
        n = n * 10 + digits[k] - 48
        k += 1
    if k == 0 or n > M64:
        return None
    return n


def schema_value(schema, r, depth):
    """A JSON text for one schema node, deterministic in `r` (write_schema_value)."""
    if not isinstance(schema, dict):
        schema = {}
    en = schema.get("enum")
    if isinstance(en, list) and en:
        return encode_value(en[0])
    t = schema.get("type")
    t = t if isinstance(t, str) else "string"
    if t == "integer":
        return str(r.next() % 100)
    if t == "number":
        return encode_value(float(r.next() % 10000) / 100.0)
    if t == "boolean":
        return "true" if r.next() & 1 else "false"
    if t == "array":
        inner = schema_value(schema["items"], r, depth + 1) if "items" in schema and depth < 4 else ""
        return "[" + inner + "]"
    if t == "object":
        props = schema.get("properties")
        parts = []
        if isinstance(props, dict) and depth < 4:
            written = set()

            def write_one(key):
                if key in written:
                    return
                written.add(key)
                parts.append(encode_value(key) + ":" + schema_value(props[key], r, depth + 1))

            req = schema.get("required")
            if isinstance(req, list):
                for name in req:
                    if isinstance(name, str) and name in props:
                        write_one(name)
            for key in props:
                write_one(key)
        return "{" + ",".join(parts) + "}"
    if t == "null":
        return "null"
    return encode_value(VOCABULARY[r.next() % len(VOCABULARY)])


def tool_arguments(parameters, r):
    if parameters is None:
        parameters = {}  # no schema: the mock parses "{}"
    if not isinstance(parameters, dict):
        return "{}"
    return schema_value(parameters, r, 0)


def tool_choice_mode(choice):
    if isinstance(choice, dict):
        return "function", choice.get("name") or (choice.get("function") or {}).get("name")
    if choice in ("none", "required"):
        return choice, None
    return "auto", None


def planned_tools(p):
    tools = p.get("tools") or []
    if not tools:
        return []
    mode, fn = tool_choice_mode(p.get("tool_choice"))
    if mode == "none":
        return []
    if mode == "function":
        return [i for i, t in enumerate(tools) if t.get("name") == fn]
    messages = p.get("messages") or []
    prompt = last_user_text(messages).encode()
    answered = bool(messages) and messages[-1].get("role") != "user"
    parallel = p.get("parallel_tool_calls", True) is not False
    out = []
    if not answered:
        for i, t in enumerate(tools):
            if (t.get("name") or "").encode() in prompt:
                out.append(i)
                if not parallel:
                    break
    if not out and mode == "required":
        out.append(0)
    return out


class Choice:
    def __init__(self):
        self.words = None
        self.emitted = 0
        self.target = 0
        self.done = False
        self.capitalize = True
        self.stop_hit = False
        self.since_period = 0
        self.text = b""
        self.tools = []  # [id, name, arguments, sent]
        self.tool = 0


class Generation:
    """One generate call: the mock's stream, one event per step (mock_stream in mock_engine.cc)."""

    def __init__(self, worker, msg_id, p):
        self.worker, self.msg_id = worker, msg_id
        messages = p.get("messages") or []
        n = int(p.get("n") or 1)
        self.stop = [s.encode() for s in (p.get("stop") or [])]
        prompt = last_user_text(messages)
        self.error_after = error_directive(prompt)
        self.input_tokens = sum(count_tokens(m.get("content") or "") + 3 for m in messages)
        self.output_tokens = 0
        max_tokens = p.get("max_tokens")
        self.length_limited = max_tokens is not None
        opts = worker.opts
        self.interval = 1.0 / opts.mock_tokens_per_s if opts.mock_tokens_per_s > 0 else 0.0
        if self.interval:
            self.interval = int(1e6 / opts.mock_tokens_per_s) / 1e6
        base = hash_bytes((p.get("model") or "").encode(), hash_bytes(prompt.encode()))
        base ^= ((int(p.get("seed") or 0) & M64) * 0x9E3779B97F4A7C15) & M64
        plan = planned_tools(p)
        tools = p.get("tools") or []
        self.choices = []
        for c in range(n):
            s = Choice()
            s.words = Rng((base + c * 0x632BE59BD9B4E019) & M64)
            s.target = max_tokens if max_tokens is not None else opts.mock_tokens
            r = Rng(s.words.state ^ 0x5BD1E995)
            for i in plan:
                call_id = "call_" + "".join(ID_CHARS[r.next() % 36] for _ in range(24))
                args = tool_arguments(tools[i].get("parameters"), r).encode()
                s.tools.append([call_id, tools[i].get("name"), args, 0])
            self.choices.append(s)
        self.open = n
        self.next_choice = 0
        self.over = False

    # Events go out as the dialect's notifications; the result ends the call.
    def _delta(self, c, text):
        self.worker.notify("generate/delta", {"id": self.msg_id, "choice": c, "text": text.decode()})

    def step(self, c):
        s = self.choices[c]
        if self.error_after is not None and self.output_tokens >= self.error_after:
            self.over = True
            self.worker.reply_error(
                self.msg_id, worker_io.INTERNAL_ERROR,
                "the mock engine failed as the request asked (ringcast-mock:error-after)",
                {"code": "mock_error", "status": 500, "type": "server_error"})
            return
        if s.tool < len(s.tools):
            call = s.tools[s.tool]
            n = min(8, len(call[2]) - call[3])
            ev = {"id": self.msg_id, "choice": c, "index": s.tool}
            if call[3] == 0:
                ev["call_id"], ev["name"] = call[0], call[1]
            ev["arguments"] = call[2][call[3]:call[3] + n].decode("utf-8", "replace")
            call[3] += n
            self.output_tokens += (n + 3) // 4
            if call[3] == len(call[2]):
                s.tool += 1
            self.worker.notify("generate/tool_call", ev)
            return
        if s.tools:
            return self.finish(c, "tool_calls")
        if s.stop_hit:
            return self.finish(c, "stop")
        if s.emitted >= s.target:
            return self.finish(c, "length" if self.length_limited else "stop")
        if s.since_period >= 6 and s.words.next() % 8 == 0:
            token = b"."
            s.since_period = 0
            s.capitalize = True
        else:
            w = VOCABULARY[s.words.next() % len(VOCABULARY)].encode()
            if s.capitalize:
                w = w[:1].upper() + w[1:]
            token = (b" " if s.emitted > 0 else b"") + w
            s.capitalize = False
            s.since_period += 1
        s.emitted += 1
        self.output_tokens += 1
        if self.stop:
            before = len(s.text)
            s.text += token
            cut = None
            for stop in self.stop:
                at = s.text.find(stop, before - len(stop) + 1 if before >= len(stop) else 0)
                if at >= 0:
                    cut = at if cut is None else min(cut, at)
            if cut is not None:
                s.stop_hit = True
                if cut <= before:
                    return self.finish(c, "stop")
                return self._delta(c, s.text[before:cut])
        self._delta(c, token)

    def finish(self, c, reason):
        self.choices[c].done = True
        self.open -= 1
        self.worker.notify("generate/done", {"id": self.msg_id, "choice": c, "finish_reason": reason})
        if self.open == 0:
            self.over = True
            self.worker.reply(self.msg_id, {"usage": {"prompt_tokens": self.input_tokens,
                                                      "completion_tokens": self.output_tokens}})

    def tick(self):
        """The mock's timer: unpaced, a batch of 64 steps; paced, one step per open choice."""
        if self.over:
            return
        budget = 64 if self.interval == 0 else self.open
        while budget > 0 and not self.over:
            budget -= 1
            c = self.next_choice
            self.next_choice = (self.next_choice + 1) % len(self.choices)
            if self.choices[c].done:
                budget += 1
                continue
            self.step(c)
        if self.over:
            self.worker.calls.pop(self.msg_id, None)
        else:
            self.worker.after(self.interval, self.tick)


def embedding_row(model, text, dims):
    r = Rng(hash_bytes(text.encode(), hash_bytes(model.encode())))
    values, norm = [], 0.0
    for _ in range(dims):
        u1 = r.uniform() + 1e-12
        u2 = r.uniform()
        v = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        values.append(struct.unpack("f", struct.pack("f", v))[0])
        norm += v * v
    inv = struct.unpack("f", struct.pack("f", 1 / math.sqrt(norm)))[0]
    return [struct.unpack("f", struct.pack("f", x * inv))[0] for x in values]


class MockWorker(worker_io.Worker):
    def __init__(self, opts):
        super().__init__(opts.framing)
        self.opts = opts
        self.calls = {}

    def handle_initialize(self, msg_id, params):
        if params.get("protocol_version") != 1:
            self.reply_error(msg_id, worker_io.INVALID_PARAMS, "protocol_version 1 only")
            return None
        return {"protocol_version": 1, "server": {"name": "ringcast-mock-worker", "version": "1"},
                "models": list(self.opts.model), "capabilities": {"embeddings": True}}

    def _check_model(self, msg_id, model):
        if self.opts.model and model not in self.opts.model:
            self.reply_error(msg_id, worker_io.MODEL_NOT_FOUND, f"The model '{model}' does not exist",
                             {"param": "model"})
            return False
        return True

    def handle_generate(self, msg_id, p):
        if msg_id is None:
            return None
        if not self._check_model(msg_id, p.get("model")):
            return None
        max_tokens = p.get("max_tokens")
        if max_tokens is not None and max_tokens > self.opts.mock_max_tokens:
            # Worded as ringcast's fronts refuse it for the mock, naming the client's field.
            request = p.get("request") if isinstance(p.get("request"), dict) else {}
            if p.get("api") == "responses":
                param, what = "max_output_tokens", "output"
            else:
                param = "max_completion_tokens" if "max_completion_tokens" in request else "max_tokens"
                what = "completion"
            self.reply_error(msg_id, worker_io.INVALID_PARAMS,
                             f"{param} is too large: {max_tokens}. This model supports at most "
                             f"{self.opts.mock_max_tokens} {what} tokens, whereas you provided {max_tokens}.",
                             {"param": param})
            return None
        g = Generation(self, msg_id, p)
        self.calls[msg_id] = g
        self.after(self.opts.mock_first_token_ms / 1000.0, g.tick)
        return None

    def handle_cancel(self, msg_id, p):
        g = self.calls.pop(p.get("id"), None)
        if g is not None and not g.over:
            g.over = True
            self.reply_error(g.msg_id, worker_io.CANCELLED, "cancelled")

    def handle_embed(self, msg_id, p):
        if not self._check_model(msg_id, p.get("model")):
            return None
        model = p.get("model") or ""
        dims = p.get("dimensions") or self.opts.mock_embedding_dim
        texts = p.get("input") or []
        return {"data": [embedding_row(model, t, dims) for t in texts],
                "prompt_tokens": sum(count_tokens(t) for t in texts)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[],
                    help="a model to announce (repeatable); none: serve any model")
    ap.add_argument("--mock-tokens", type=int, default=16)
    ap.add_argument("--mock-first-token-ms", type=int, default=0)
    ap.add_argument("--mock-tokens-per-s", type=float, default=0.0)
    ap.add_argument("--mock-max-tokens", type=int, default=4096)
    ap.add_argument("--mock-embedding-dim", type=int, default=256)
    ap.add_argument("--framing", choices=["lines", "content-length"], default="lines")
    ap.add_argument("--marker", default="", help="ignored: tags the process for /proc scans")
    opts = ap.parse_args(argv)
    MockWorker(opts).run()


if __name__ == "__main__":
    main()
