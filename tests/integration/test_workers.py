"""The `jsonrpc` upstream kind end to end with the reference workers of tests/workers/: every
front served from mock_worker.py answers exactly as the built-in mock (same server, model `w`
on the worker vs `ringcast-mock`), and fault_worker.py's faults give the documented errors,
retries, cancels and restarts (docs/workers.md). The supervision of the process lifecycle
(readiness, crash loops, stderr, drain, signals, reload) is in test_workers_lifecycle.py.
Skipped while the build has no engine for kind "jsonrpc"."""

import asyncio
import json
import random
import socket
import threading
import unittest
import urllib.parse

from harness import get
from openai_client import (chat_from_json, chat_from_ws, post_json, responses_from_events,
                           responses_summary, sse_events, ws_collect)
from test_mock_worker import random_request
from worker_pipe import FAULT_WORKER, chat_events_from_sse
from worker_setup import MOCK, WorkerServer, jsonrpc_kind_available, wait_until, zombie_children


def chat(text, model="w", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)


def sse(port, body, headers=None):
    r = post_json(port, "/v1/chat/completions",
                  dict(body, stream=True, stream_options={"include_usage": True}), headers)
    return r, (chat_events_from_sse(sse_events(r.body)) if r.status == 200 else None)


def broker_log(port, user, message_id):
    query = urllib.parse.urlencode({"user_id": user, "message_id": message_id})
    r = get(port, "/api/v1/stream?" + query, timeout=30)
    assert r.status == 200, r.body
    return [(e, json.loads(d)) for e, d in sse_events(r.body)]


def error_of(r):
    return r.json()["error"]


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class FrontsOnMockWorker(unittest.TestCase):
    """Two workers, two shards: requests also cross shards to reach a worker."""

    def setUp(self):
        self.env = WorkerServer(settings={"workers": 2}, shards=2)

    def tearDown(self):
        self.env.__exit__(None, None, None)

    def test_chat_json_and_sse_match_the_mock(self):
        rng = random.Random(20)
        for i in range(40):
            body = random_request(rng, i)
            want = sse(self.env.port, body)[1]
            r, got = sse(self.env.port, dict(body, model="w"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(got, want, json.dumps(body))
            direct = post_json(self.env.port, "/v1/chat/completions", body)
            via = post_json(self.env.port, "/v1/chat/completions", dict(body, model="w"))
            self.assertEqual(via.status, 200, via.body)
            self.assertEqual(via.json()["model"], "w")
            self.assertEqual(chat_from_json(via.json()), chat_from_json(direct.json()), json.dumps(body))

    def test_responses_json_and_sse_match_the_mock(self):
        tools = [{"type": "function", "name": "get_weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
        for body in ({"input": "tell me a story", "max_output_tokens": 17},
                     {"input": [{"role": "user", "content": "get_weather in Paris"}], "tools": tools},
                     {"instructions": "be brief", "input": "hi", "temperature": 0.2}):
            direct = post_json(self.env.port, "/v1/responses", dict(body, model=MOCK))
            self.assertEqual(direct.status, 200, direct.body)
            via = post_json(self.env.port, "/v1/responses", dict(body, model="w"))
            self.assertEqual(via.status, 200, via.body)
            self.assertEqual(responses_summary(via.json()), responses_summary(direct.json()))
            s = post_json(self.env.port, "/v1/responses", dict(body, model="w", stream=True))
            self.assertEqual(s.status, 200, s.body)
            events = [(t, json.loads(d)) for t, d in sse_events(s.body)]
            self.assertEqual(responses_from_events(events), responses_summary(direct.json()))

    def test_ws_actions_and_responses_websocket_mode_match_the_mock(self):
        port = self.env.port
        done = lambda ev: ev and ev[-1]["event"] in ("chat.complete", "error")  # noqa: E731
        for body in (chat("over a socket", max_tokens=9), chat("two", n=2, seed=4)):
            direct = chat_from_json(post_json(port, "/v1/chat/completions", dict(body, model=MOCK)).json())
            events = asyncio.run(ws_collect(f"ws://127.0.0.1:{port}/ws",
                                            [{"id": "c1", "action": "chat.completion", "payload": body}], done))
            self.assertEqual(chat_from_ws(events), direct)
        body = {"input": "over a socket", "max_output_tokens": 20}
        direct = responses_summary(post_json(port, "/v1/responses", dict(body, model=MOCK)).json())
        events = asyncio.run(ws_collect(
            f"ws://127.0.0.1:{port}/v1/responses", [dict(body, model="w", type="response.create")],
            lambda ev: ev and ev[-1]["type"] in ("response.completed", "response.incomplete", "error")))
        self.assertEqual(responses_from_events([(e["type"], e) for e in events]), direct)

    def test_broker_message_on_a_worker(self):
        port = self.env.port
        texts = {}
        for model in (MOCK, "w"):
            r = post_json(port, "/api/v1/message", {"user_id": "u-" + model, "message": "hello broker",
                                                    "model": model, "max_tokens": 7})
            self.assertEqual(r.status, 202, r.body)
            log = broker_log(port, "u-" + model, r.json()["message_id"])
            self.assertEqual(log[-1][0], "done", log[-1])
            texts[model] = (log[-1][1]["output"]["text"], log[-1][1]["usage"]["completion_tokens"])
        self.assertEqual(texts["w"], texts[MOCK])

    def test_embeddings_match_the_mock(self):
        body = {"input": ["one", "two words"], "dimensions": 8}
        direct = post_json(self.env.port, "/v1/embeddings", dict(body, model=MOCK)).json()
        via = post_json(self.env.port, "/v1/embeddings", dict(body, model="w"))
        self.assertEqual(via.status, 200, via.body)
        self.assertEqual([d["embedding"] for d in via.json()["data"]], [d["embedding"] for d in direct["data"]])
        self.assertEqual(via.json()["usage"], direct["usage"])

    def test_concurrent_streams_from_both_shards_all_match(self):
        bodies = [chat(f"stream number {i}", max_tokens=30, n=1 + i % 2) for i in range(24)]
        want = [sse(self.env.port, dict(b, model=MOCK))[1] for b in bodies]
        got = [None] * len(bodies)

        def run(i):
            got[i] = sse(self.env.port, bodies[i])[1]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(got, want)


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class ContentLengthFraming(unittest.TestCase):
    def test_a_worker_speaking_lsp_framing(self):
        with WorkerServer(args=["--framing", "content-length"], settings={"framing": "content-length"}) as env:
            body = chat("framed", max_tokens=6)
            self.assertEqual(sse(env.port, body)[1], sse(env.port, dict(body, model=MOCK))[1])


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Faults(unittest.TestCase):
    def env(self, workers=1, args=(), **settings):
        return WorkerServer(FAULT_WORKER, args=args, settings=dict({"workers": workers}, **settings))

    def assert_recovers(self, env, starts_before):
        """A new worker process comes up and serves."""
        wait_until("a restart", lambda: len(env.starts()) > starts_before)
        r = wait_until("a served request", lambda: (lambda r: r if r.status == 200 else None)(
            post_json(env.port, "/v1/chat/completions", chat("back again"))))
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "back again")
        wait_until("no zombie child", lambda: not zombie_children(env.server.proc.pid))

    def test_echo_through_the_fault_worker(self):
        with self.env() as env:
            r = post_json(env.port, "/v1/chat/completions", chat("hello there world", max_tokens=2))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "hello there")
            self.assertEqual(r.json()["choices"][0]["finish_reason"], "length")
            gen = env.events("generate")[-1]
            self.assertEqual(gen["model"], MOCK)

    def test_crash_mid_stream_is_worker_crashed_and_the_worker_restarts(self):
        with self.env() as env:
            r, events = sse(env.port, chat("fault:crash-mid-stream after=2"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual([e[0] for e in events], ["delta", "delta", "error"], events)
            self.assertEqual(events[-1][1], "worker_crashed")
            self.assert_recovers(env, 1)

    def test_crash_before_the_first_token_is_retried_on_another_worker(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r, events = sse(env.port, chat("fault:crash-before-first once=a"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(events[-1][0], "usage", events)
            gens = env.events("generate")
            self.assertEqual(len(gens), 2)
            self.assertNotEqual(gens[0]["pid"], gens[1]["pid"])
            self.assertEqual([e["reason"] for e in env.events("exit")], ["crash-before-first"])

    def test_a_crash_before_the_first_token_on_both_tries_is_a_502(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r = post_json(env.port, "/v1/chat/completions", chat("fault:crash-before-first", stream=True))
            self.assertEqual(r.status, 502, r.body)
            self.assertEqual(error_of(r)["code"], "worker_crashed")
            self.assertEqual(len(env.events("generate")), 2)  # retried once, not more
            self.assert_recovers(env, 2)

    def test_a_hang_meets_the_deadline_with_504_and_the_worker_sees_the_cancel(self):
        with self.env() as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:hang"),
                          {"x-ringcast-timeout-ms": "1000"})
            self.assertEqual(r.status, 504, r.body)
            self.assertEqual(error_of(r)["code"], "worker_timeout")
            gen = env.events("generate")[-1]
            self.assertIsNotNone(gen["deadline_ms"])
            cancel = wait_until("the cancel", lambda: env.events("cancel"))
            self.assertEqual(cancel[0]["id"], gen["id"])
            r = post_json(env.port, "/v1/chat/completions", chat("still fine"))
            self.assertEqual(r.status, 200, r.body)

    def test_a_client_leaving_sends_a_cancel(self):
        with self.env() as env:
            body = json.dumps(chat("fault:slow-tokens tokens=100 ms=100", stream=True)).encode()
            with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
                got = b""
                while b"slow-tokens" not in got:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk)
                    got += chunk
            cancel = wait_until("the cancel", lambda: env.events("cancel"))
            self.assertEqual(cancel[0]["id"], env.events("generate")[-1]["id"])

    def test_garbage_output_stops_and_restarts_the_worker(self):
        with self.env() as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:garbage"))
            self.assertEqual(r.status, 502, r.body)
            self.assert_recovers(env, 1)

    def test_a_line_over_max_line_bytes_stops_and_restarts_the_worker(self):
        with self.env(max_line_bytes=65536) as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:oversized bytes=200000"))
            self.assertEqual(r.status, 502, r.body)
            self.assert_recovers(env, 1)

    # The spec's error table: non-JSON output and a line over max_line_bytes are 502
    # worker_protocol_error.
    def test_protocol_errors_are_worker_protocol_error(self):
        with self.env(max_line_bytes=65536) as env:
            for fault in ("fault:garbage", "fault:oversized bytes=200000"):
                r = wait_until("an answer from a worker", lambda: (lambda r: r if r.status != 503 else None)(
                    post_json(env.port, "/v1/chat/completions", chat(fault))))
                self.assertEqual((r.status, error_of(r)["code"]), (502, "worker_protocol_error"), fault)

    def test_exit_with_a_call_in_flight_restarts_the_worker(self):
        with self.env() as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:exit-now"))
            self.assertEqual(r.status, 502, r.body)
            self.assertEqual(error_of(r)["code"], "worker_crashed")
            self.assert_recovers(env, 1)

    def test_invalid_params_is_a_400(self):
        with self.env() as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:invalid-params"))
            self.assertEqual(r.status, 400, r.body)
            err = error_of(r)
            self.assertEqual((err["type"], err["param"]), ("invalid_request_error", "messages"))
            self.assertEqual(len(env.starts()), 1)  # the worker lives on

    def test_overloaded_is_retried_once_then_503_with_retry_after(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r = post_json(env.port, "/v1/chat/completions", chat("fault:overloaded retry_after_ms=3000"))
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(error_of(r)["code"], "worker_overloaded")
            self.assertEqual(r.header("retry-after"), "3")
            gens = env.events("generate")
            self.assertEqual(len(gens), 2)
            self.assertNotEqual(gens[0]["pid"], gens[1]["pid"])
            r = post_json(env.port, "/v1/chat/completions", chat("fault:overloaded once=o"))
            self.assertEqual(r.status, 200, r.body)  # the retry succeeded

    def test_worker_error_codes_map_to_http(self):
        with self.env() as env:
            for code, status, name in ((-32002, 504, "worker_timeout"), (-32004, 404, "model_not_found"),
                                       (-32603, 502, "worker_error"), (-32000, 502, "worker_error"),
                                       (-32601, 502, "worker_protocol_error")):
                r = post_json(env.port, "/v1/chat/completions", chat(f"fault:error code={code}"))
                self.assertEqual(r.status, status, (code, r.body))
                self.assertEqual(error_of(r)["code"], name, code)
            wait_until("the worker to serve", lambda: post_json(
                env.port, "/v1/chat/completions", chat("ok")).status == 200)

    def test_a_retryable_error_is_retried(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r = post_json(env.port, "/v1/chat/completions", chat("fault:error retryable=1 once=r"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(env.events("generate")), 2)

    def test_busy_when_every_slot_and_the_queue_are_taken(self):
        with self.env(max_concurrency_per_worker=1, queue_max=1) as env:
            wait_until("the worker", lambda: env.events("initialize"))
            results = {}

            def hang(name):
                results[name] = post_json(env.port, "/v1/chat/completions", chat(f"fault:hang {name}"),
                                          {"x-ringcast-timeout-ms": "4000"}, timeout=30)

            first = threading.Thread(target=hang, args=("first",))
            first.start()
            wait_until("the first call", lambda: env.events("generate"))
            # The worker's one slot is taken: of the next two, one waits in the queue (then
            # meets its deadline), the other finds the queue full.
            later = [threading.Thread(target=hang, args=(n,)) for n in ("second", "third")]
            for t in later:
                t.start()
            for t in [first] + later:
                t.join(30)
            self.assertEqual(results["first"].status, 504)
            statuses = sorted((results[n].status, results[n]) for n in ("second", "third"))
            self.assertEqual([st for st, _ in statuses], [503, 504], [r.body for _, r in statuses])
            busy = statuses[0][1]
            self.assertEqual(error_of(busy)["code"], "worker_busy")
            self.assertIsNotNone(busy.header("retry-after"))
            self.assertLessEqual(len(env.events("generate")), 2)

    def test_least_loaded_worker_first(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            threads = [threading.Thread(target=post_json, args=(
                env.port, "/v1/chat/completions", chat("fault:slow-tokens tokens=20 ms=50")))
                for _ in range(2)]
            threads[0].start()
            wait_until("the first call", lambda: env.events("generate"))
            threads[1].start()
            wait_until("the second call", lambda: len(env.events("generate")) == 2)
            for t in threads:
                t.join(30)
            pids = {g["pid"] for g in env.events("generate")}
            self.assertEqual(len(pids), 2)


if __name__ == "__main__":
    unittest.main()
