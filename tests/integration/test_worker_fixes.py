"""Engine fixes from the review of issue 10 (docs/workers.md): a worker's `data.retryable: false`
is honoured, bad output retries the calls that delivered nothing, embeddings meet a deadline,
a cancelled call keeps its worker slot until the worker is done with it, and the crash-loop
breaker forgets its history and lets ready workers serve. Skipped while the build has no engine
for kind "jsonrpc"."""

import re
import time
import unittest

from harness import get
from openai_client import post_json
from worker_pipe import FAULT_WORKER
from worker_setup import WorkerServer, jsonrpc_kind_available, wait_until


def chat(text, model="w", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)


def error_of(r):
    return r.json()["error"]


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class EngineFixes(unittest.TestCase):
    def env(self, workers=1, args=(), **settings):
        return WorkerServer(FAULT_WORKER, args=args, settings=dict({"workers": workers}, **settings))

    def test_overloaded_with_retryable_false_is_not_retried(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r = post_json(env.port, "/v1/chat/completions", chat("fault:overloaded retryable=0"))
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(error_of(r)["code"], "worker_overloaded")
            self.assertEqual(len(env.events("generate")), 1)

    # The issue: a worker stopped for bad output has its in-flight requests "retried once on
    # another worker if nothing reached the client yet".
    def test_bad_output_retries_the_calls_that_delivered_nothing(self):
        with self.env(workers=2, max_line_bytes=65536) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            for fault in ("fault:garbage once=g", "fault:oversized bytes=200000 once=o"):
                r = post_json(env.port, "/v1/chat/completions", chat(fault))
                self.assertEqual(r.status, 200, (fault, r.body))

    def test_bad_output_after_a_delta_is_worker_protocol_error(self):
        with self.env(workers=2) as env:
            wait_until("two workers", lambda: len(env.events("initialize")) >= 2)
            r = post_json(env.port, "/v1/chat/completions",
                          dict(chat("fault:garbage-mid-stream after=2"), stream=True))
            self.assertEqual(r.status, 200, r.body)
            self.assertIn(b"worker_protocol_error", r.body)
            self.assertEqual(len(env.events("generate")), 1)

    # A call the client left still runs on the worker until the worker answers the cancel (or
    # the cancel grace, 5 s, is over): its slot stays taken until then.
    def test_a_cancelled_call_keeps_its_slot_until_the_worker_is_done(self):
        with self.env(max_concurrency_per_worker=1) as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            r = post_json(env.port, "/v1/chat/completions", chat("fault:hang deaf=1"),
                          {"x-ringcast-timeout-ms": "800"}, timeout=30)
            self.assertEqual((r.status, error_of(r)["code"]), (504, "worker_timeout"), r.body)
            wait_until("the cancel", lambda: env.events("cancel"))
            r = post_json(env.port, "/v1/chat/completions", chat("next"),
                          {"x-ringcast-timeout-ms": "1500"}, timeout=30)
            self.assertNotEqual(r.status, 200, r.body)  # the worker still runs the first call
            self.assertEqual(len(env.events("generate")), 1)
            # After the grace the slot is free again.
            r = wait_until("a served request", lambda: (lambda r: r if r.status == 200 else None)(
                post_json(env.port, "/v1/chat/completions", chat("later"))))
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "later")

    def test_an_embedding_that_never_answers_ends_at_its_deadline(self):
        with self.env(max_concurrency_per_worker=1) as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            r = post_json(env.port, "/v1/embeddings", {"model": "w", "input": "fault:hang"},
                          {"x-ringcast-timeout-ms": "800"}, timeout=30)
            self.assertEqual((r.status, error_of(r)["code"]), (504, "worker_timeout"), r.body)
            embed = wait_until("the embed", lambda: env.events("embed"))[0]
            wait_until("the cancel", lambda: [c for c in env.events("cancel") if c["id"] == embed["id"]])
            # The worker answered the cancel: its one slot serves again.
            r = wait_until("a served request", lambda: (lambda r: r if r.status == 200 else None)(
                post_json(env.port, "/v1/chat/completions", chat("again"))))
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "again")

    # One worker crashing trips the breaker: the crashed one stays paused (no restart), the
    # ready one keeps serving.
    def test_a_crash_loop_pauses_restarts_but_ready_workers_serve(self):
        with self.env(workers=2, crash_loop_restarts=3, crash_loop_window_ms=60000,
                      restart_backoff_base_ms=50, restart_backoff_cap_ms=30000) as env:
            for crashes, tag in enumerate(("a", "b", "c")):
                # Both workers ready (the crashed ones restarted) before the next crash.
                wait_until("every worker ready", lambda: len(re.findall(r": ready$", env.server.log(), re.M)) == 2 + crashes)
                r = post_json(env.port, "/v1/chat/completions", chat(f"fault:exit-now once={tag}"))
                self.assertEqual(r.status, 200, (tag, r.body))  # retried on the other worker
            wait_until("the crash loop", lambda: "crash loop" in env.server.log())
            spawned = len(env.starts())
            for i in range(5):
                r = post_json(env.port, "/v1/chat/completions", chat(f"still here {i}"))
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json()["choices"][0]["message"]["content"], f"still here {i}")
            time.sleep(1.0)
            self.assertEqual(len(env.starts()), spawned)  # the crashed worker stays paused

    def test_an_error_only_call_is_no_first_token_sample(self):
        with self.env() as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            count = 'ringcast_worker_first_token_seconds_count{upstream="local",worker="0"} '

            def first_tokens():
                text = get(env.port, "/metrics").body.decode()
                return [float(l[len(count):]) for l in text.splitlines() if l.startswith(count)]

            r = post_json(env.port, "/v1/chat/completions", chat("fault:invalid-params"))
            self.assertEqual(r.status, 400, r.body)
            self.assertIn(first_tokens(), ([], [0.0]))
            r = post_json(env.port, "/v1/chat/completions", chat("tokens please"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(first_tokens(), [1.0])


if __name__ == "__main__":
    unittest.main()
