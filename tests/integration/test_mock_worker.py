"""tests/workers/mock_worker.py answers exactly as the built-in mock engine: the same requests go
to a ringcast on mock over HTTP and to the worker over its stdio pipes (the `ringcast` dialect),
and the event sequences are compared: every delta in order (the mock's one-token chunks), tool
calls with ids, names and argument fragments, finish reasons, usage, errors; the aggregated
non-stream answers; embeddings. No jsonrpc engine involved: this checks the worker itself."""

import json
import random
import struct
import unittest

from harness import Server
from openai_client import chat_from_json, post_json, sse_events
from worker_pipe import MOCK_WORKER, WorkerPipe, chat_events_from_sse, generate_params

MOCK = "ringcast-mock"
WORDS = ("hello", "weather", "river", "Paris", "tell", "me", "a", "story", "about", "numbers",
         "ünïcödé", "日本", "don't", "stop", "now", "...", "quickly", "x_y", "42", "3.5")

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"},
                                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                          "days": {"type": "integer"}},
                                          "required": ["unit", "city"]}}},
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}, "limit": {"type": "number"}, "exact": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "nested": {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "object",
                   "properties": {"c": {"type": "object", "properties": {"d": {"type": "object",
                                  "properties": {"e": {"type": "integer"}}}}}}}}}}}}},
    {"type": "function", "function": {"name": "no_params"}},
    {"type": "function", "function": {"name": "enums", "parameters": {"type": "object", "properties": {
        "f": {"enum": [1.5]}, "i": {"enum": [-7]}, "s": {"enum": ["é\"\\\n\t\u0001/"]},
        "o": {"enum": [{"k": [1, 2.0, None, True]}]}, "big": {"enum": [100000.0]},
        "small": {"enum": [1e-7]}, "t": {"type": ["string", "null"]}}}}},
]


def sse_chat(port, body):
    r = post_json(port, "/v1/chat/completions", dict(body, stream=True,
                                                     stream_options={"include_usage": True}))
    assert r.status == 200, (r.status, r.body)
    return chat_events_from_sse(sse_events(r.body))


def random_request(rng, i):
    """A chat body varying messages, n, stop, max_tokens, tools, tool_choice, seed."""
    def words(k):
        return " ".join(rng.choice(WORDS) for _ in range(k))

    messages = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": words(rng.randint(1, 6))})
    for _ in range(rng.randint(0, 2)):
        messages.append({"role": "user", "content": words(rng.randint(1, 8))})
        messages.append({"role": "assistant", "content": words(rng.randint(1, 8))})
    body = {"model": MOCK}
    if rng.random() < 0.4:
        body["tools"] = rng.sample(TOOLS, rng.randint(1, len(TOOLS)))
        names = [t["function"]["name"] for t in body["tools"]]
        prompt = words(rng.randint(0, 4)) + " " + " ".join(rng.sample(names, rng.randint(0, len(names))))
        messages.append({"role": "user", "content": prompt.strip() or "go"})
        pick = rng.random()
        if pick < 0.2:
            body["tool_choice"] = "required"
        elif pick < 0.35:
            body["tool_choice"] = "none"
        elif pick < 0.5:
            body["tool_choice"] = {"type": "function", "function": {"name": rng.choice(names)}}
        if rng.random() < 0.3:
            body["parallel_tool_calls"] = False
        if rng.random() < 0.2:  # the tool's answer follows: the mock answers in text
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": names[0], "arguments": '{"city":"Paris"}'}}]})
            messages.append({"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21"})
    else:
        messages.append({"role": "user", "content": words(rng.randint(1, 10))})
    body["messages"] = messages
    if rng.random() < 0.4:
        body["n"] = rng.randint(2, 3)
    if rng.random() < 0.5:
        body["max_tokens"] = rng.randint(1, 40)
    if rng.random() < 0.3:
        body["stop"] = rng.choice([".", " the", ["e", "zz"], ["a", "o", "."], "er", "q"])
    if rng.random() < 0.5:
        body["seed"] = rng.choice([0, 1, i, -5, 2 ** 62, -(2 ** 63)])
    if rng.random() < 0.2:
        body["temperature"] = rng.choice([0, 0.5, 1.7])
    return body


class MockWorkerMatchesMock(unittest.TestCase):
    def compare_streams(self, bodies, server_args=(), worker_args=(), framing="lines"):
        with Server(*server_args) as srv, WorkerPipe(MOCK_WORKER, *worker_args, framing=framing) as w:
            init = w.initialize()
            self.assertEqual(init["result"]["protocol_version"], 1)
            for body in bodies:
                want = sse_chat(srv.port, body)
                got = w.generate(generate_params(dict(body, stream=True)))
                # The worker's error names the mock's code in its data (the SSE error shows it).
                got = [("error", (e[2] or {}).get("code")) if e[0] == "error" else e for e in got]
                self.assertEqual(got, want, json.dumps(body))

    def test_random_chat_streams_match(self):
        rng = random.Random(10)
        bodies = [random_request(rng, i) for i in range(120)]
        self.compare_streams(bodies)

    def test_tool_calls_match(self):
        bodies = []
        for t in TOOLS:
            name = t["function"]["name"]
            bodies.append({"model": MOCK, "tools": TOOLS, "tool_choice": "required",
                           "messages": [{"role": "user", "content": "anything"}]})
            bodies.append({"model": MOCK, "tools": TOOLS, "n": 2, "seed": 3,
                           "tool_choice": {"type": "function", "function": {"name": name}},
                           "messages": [{"role": "user", "content": "call it"}]})
        bodies.append({"model": MOCK, "tools": TOOLS, "parallel_tool_calls": False,
                       "messages": [{"role": "user", "content": "lookup and get_weather and enums"}]})
        bodies.append({"model": MOCK, "tools": TOOLS,
                       "messages": [{"role": "user", "content": "lookup and get_weather and enums no_params"}]})
        self.compare_streams(bodies)
        # The fixtures do call tools, with fragments of 8 bytes, and the worker says so.
        with WorkerPipe(MOCK_WORKER) as w:
            w.initialize()
            ev = w.generate(generate_params(bodies[0]))
            calls = [e for e in ev if e[0] == "tool_call"]
            self.assertTrue(calls and calls[0][3].startswith("call_") and calls[0][4] == "get_weather")
            self.assertTrue(all(len(e[5].encode()) <= 8 for e in calls))
            self.assertIn(("done", 0, "tool_calls"), ev)

    def test_stop_and_max_tokens_match(self):
        bodies = []
        for stop in (".", " ", "e", ["he", "th"], ["xyz"], ". T"):
            for max_tokens in (None, 1, 5, 60):
                b = {"model": MOCK, "stop": stop, "messages": [{"role": "user", "content": f"s {stop}"}]}
                if max_tokens:
                    b["max_tokens"] = max_tokens
                bodies.append(b)
        self.compare_streams(bodies)

    def test_mock_options_match(self):
        """The worker takes the mock's flags: same tokens per choice, pacing leaves output alone."""
        flags = ["--mock-tokens", "37", "--mock-tokens-per-s", "5000", "--mock-first-token-ms", "3"]
        rng = random.Random(11)
        bodies = [random_request(rng, i) for i in range(15)]
        self.compare_streams(bodies, server_args=flags, worker_args=flags)

    def test_content_length_framing(self):
        rng = random.Random(12)
        self.compare_streams([random_request(rng, i) for i in range(10)], framing="content-length")

    def test_error_directive_matches(self):
        bodies = [{"model": MOCK, "n": n, "messages": [{"role": "user", "content":
                   f"go ringcast-mock:error-after={k}"}]} for n in (1, 2) for k in (1, 5)]
        self.compare_streams(bodies)

    def test_non_stream_answers_match(self):
        rng = random.Random(13)
        with Server() as srv, WorkerPipe(MOCK_WORKER) as w:
            w.initialize()
            for i in range(30):
                body = random_request(rng, i)
                r = post_json(srv.port, "/v1/chat/completions", body)
                self.assertEqual(r.status, 200, r.body)
                want = chat_from_json(r.json())
                got = aggregate(w.generate(generate_params(body)))
                self.assertEqual(got, want, json.dumps(body))

    def test_embeddings_match(self):
        with Server() as srv, WorkerPipe(MOCK_WORKER) as w:
            w.initialize()
            for texts, dims in ((["hi"], None), (["a", "bb ccc", "ünï"], 7), (["x y z"], 1)):
                body = {"model": MOCK, "input": texts}
                if dims:
                    body["dimensions"] = dims
                r = post_json(srv.port, "/v1/embeddings", body)
                self.assertEqual(r.status, 200, r.body)
                want = r.json()
                msg_id = w.request("embed", {"request_id": "e", "model": MOCK, "input": texts,
                                             "dimensions": dims})
                resp, _ = w.answer(msg_id)
                got = resp["result"]
                self.assertEqual(got["prompt_tokens"], want["usage"]["prompt_tokens"])
                self.assertEqual(len(got["data"]), len(want["data"]))
                for row, item in zip(got["data"], want["data"]):
                    self.assertEqual([f32(x) for x in row], [f32(x) for x in item["embedding"]])


class MockWorkerProtocol(unittest.TestCase):
    def test_announced_models_and_unknown_model(self):
        with WorkerPipe(MOCK_WORKER, "--model", "small", "--model", "large") as w:
            init = w.initialize()
            self.assertEqual(init["result"]["models"], ["small", "large"])
            ev = w.generate(generate_params({"model": "other", "messages": [{"role": "user", "content": "x"}]}))
            self.assertEqual(ev, [("error", -32004, {"param": "model"})])
            ev = w.generate(generate_params({"model": "small", "messages": [{"role": "user", "content": "x"}]}))
            self.assertEqual(ev[-1][0], "usage")

    def test_cancel_stops_the_generate(self):
        with WorkerPipe(MOCK_WORKER, "--mock-tokens-per-s", "20") as w:
            w.initialize()
            msg_id = w.request("generate", generate_params(
                {"model": MOCK, "max_tokens": 1000, "messages": [{"role": "user", "content": "long"}]}))
            first = w.read()
            self.assertEqual(first["method"], "generate/delta")
            w.notify("cancel", {"id": msg_id})
            resp, notes = w.answer(msg_id)
            self.assertEqual(resp["error"]["code"], -32003)
            self.assertLess(len(notes), 100)
            ping = w.request("ping", {})
            self.assertEqual(w.answer(ping)[0]["result"], {})

    def test_bad_input_gets_json_rpc_errors(self):
        with WorkerPipe(MOCK_WORKER) as w:
            w.proc.stdin.write(b"not json\n")
            w.proc.stdin.flush()
            self.assertEqual(w.read()["error"]["code"], -32700)
            unknown = w.request("nope", {})
            self.assertEqual(w.answer(unknown)[0]["error"]["code"], -32601)
            bad = w.request("initialize", {"protocol_version": 2})
            self.assertEqual(w.answer(bad)[0]["error"]["code"], -32602)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def aggregate(events):
    """Worker events -> openai_client.chat_from_json's shape."""
    choices = {}
    usage = None
    for e in events:
        if e[0] in ("delta", "tool_call", "done"):
            c = choices.setdefault(e[1], {"text": "", "tool_calls": [], "finish": None})
            if e[0] == "delta":
                c["text"] += e[2]
            elif e[0] == "tool_call":
                if e[3] is not None:
                    c["tool_calls"].append([e[4], ""])
                c["tool_calls"][e[2]][1] += e[5]
            else:
                c["finish"] = e[2]
        elif e[0] == "usage":
            usage = {"prompt_tokens": e[1], "completion_tokens": e[2]}
    return {"choices": [dict(c, tool_calls=[tuple(t) for t in c["tool_calls"]])
                        for _, c in sorted(choices.items())], "usage": usage}


if __name__ == "__main__":
    unittest.main()
