"""The jsonrpc engine's own choices, beyond the supervision suite (test_workers*.py): the wait
for a worker bounded by the request's deadline, a queued request served when a slot frees,
embeddings that wait for a worker still initializing, the deadline answered as worker_timeout,
the /readyz reason, a reload that keeps unchanged workers, and the worker metrics."""

import json
import re
import signal
import socket
import time
import uuid
import threading
import unittest

from harness import get
from openai_client import post_json
from worker_pipe import FAULT_WORKER, MOCK_WORKER
from worker_setup import WorkerServer, jsonrpc_kind_available, marked_pids, wait_until


def chat(text, **kw):
    return dict({"model": "w", "messages": [{"role": "user", "content": text}]}, **kw)


def error_of(r):
    return r.json()["error"]


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Waiting(unittest.TestCase):
    def test_no_worker_ready_before_the_deadline_is_503_worker_unavailable(self):
        with WorkerServer(FAULT_WORKER, args=["--slow-init", "20000"],
                          settings={"init_timeout_ms": 60000}) as env:
            r = post_json(env.port, "/v1/chat/completions", chat("hello"),
                          {"x-ringcast-timeout-ms": "500"})
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(error_of(r)["code"], "worker_unavailable")
            self.assertEqual(r.header("retry-after"), "1")
            r = get(env.port, "/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json(), {"status": "not_ready", "reason": "upstream local: no worker ready"})

    def test_embeddings_wait_for_a_worker_still_initializing(self):
        with WorkerServer(FAULT_WORKER, args=["--slow-init", "1500"],
                          settings={"init_timeout_ms": 30000}) as env:
            # The fault worker has no embeddings: once it is ready the answer is its refusal,
            # which shows the request waited for it instead of failing as unavailable.
            r = post_json(env.port, "/v1/embeddings", {"model": "w", "input": "hi"})
            self.assertNotEqual(r.status, 503, r.body)
            self.assertEqual(get(env.port, "/readyz").status, 200)

    def test_a_queued_request_runs_when_the_slot_frees(self):
        with WorkerServer(FAULT_WORKER, settings={"max_concurrency_per_worker": 1, "queue_max": 4}) as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            results = {}

            def slow():
                results["slow"] = post_json(env.port, "/v1/chat/completions",
                                            chat("fault:slow-tokens tokens=5 ms=100"))

            t = threading.Thread(target=slow)
            t.start()
            wait_until("the slow generate", lambda: env.events("generate"))
            r = post_json(env.port, "/v1/chat/completions", chat("after you"),
                          {"x-ringcast-timeout-ms": "30000"})
            t.join(30)
            self.assertEqual(results["slow"].status, 200, results["slow"].body)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "after you")
            gens = env.events("generate")
            self.assertEqual(len(gens), 2)

    def test_the_deadline_of_a_running_call_is_504_worker_timeout(self):
        with WorkerServer(FAULT_WORKER) as env:
            r = post_json(env.port, "/v1/chat/completions", chat("fault:hang"),
                          {"x-ringcast-timeout-ms": "800"})
            self.assertEqual(r.status, 504, r.body)
            self.assertEqual(error_of(r)["code"], "worker_timeout")
            wait_until("the cancel", lambda: env.events("cancel"))


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class SlowClient(unittest.TestCase):
    def test_a_client_that_does_not_read_stops_the_call_after_4_mib_buffered(self):
        # A delta of ~200 KB every fourth of 400, one per ms: ~20 MB in all. The client reads nothing until the
        # worker has seen its cancel, then reads what was kept: it ends with slow_consumer.
        with WorkerServer(FAULT_WORKER, server_args=["--slow-consumer-ms", "120000"]) as env:
            big = "x" * 200_000
            body = json.dumps(chat(f"fault:slow-tokens tokens=400 ms=1 {big}", stream=True)).encode()
            s = socket.create_connection(("127.0.0.1", env.port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            wait_until("the cancel", lambda: env.events("cancel"), timeout=30)
            data = b""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertIn(b'"code":"slow_consumer"', data[-2000:])
            self.assertNotIn(b"data: [DONE]", data[-2000:])
            # The worker stays and serves the next request.
            r = post_json(env.port, "/v1/chat/completions", chat("next"))
            self.assertEqual(r.status, 200, r.body)


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Lifecycle(unittest.TestCase):
    def test_a_reload_that_changes_nothing_keeps_the_workers(self):
        with WorkerServer(FAULT_WORKER) as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            first = env.starts()
            env.server.send_signal(signal.SIGHUP)
            wait_until("the reload", lambda: "SIGHUP" in env.server.log())
            r = post_json(env.port, "/v1/chat/completions", chat("still here"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(env.starts(), first)

    def test_after_a_reload_replaces_a_worker_its_metrics_show_the_new_one(self):
        # The old worker ignores EOF and SIGTERM: it is SIGKILLed after its grace, well after its
        # replacement is ready; its end must not overwrite the replacement's state.
        with WorkerServer(FAULT_WORKER, args=["--ignore-eof", "--ignore-sigterm"],
                          settings={"stop_grace_ms": 1500}) as env:
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            new_marker = "rcw-" + uuid.uuid4().hex[:12]
            env.write(["--model", "other"], marker=new_marker)
            env.server.send_signal(signal.SIGHUP)
            wait_until("the reload", lambda: "configuration reloaded" in env.server.log())
            ready = 'ringcast_worker_state{upstream="local",worker="0",state="ready"} 1'
            try:
                wait_until("the new worker", lambda: marked_pids(new_marker))
                wait_until("the old worker gone", lambda: not marked_pids(env.marker), timeout=15)
                time.sleep(0.2)
                states = [l for l in get(env.port, "/metrics").body.decode().splitlines()
                          if l.startswith("ringcast_worker_state{")]
                self.assertIn(ready, states)
            finally:
                env.server.stop()
                wait_until("no new worker left", lambda: not marked_pids(new_marker), timeout=15, fail=False)

    def test_stderr_lines_over_the_rate_are_counted_in_a_suppressed_line(self):
        with WorkerServer(FAULT_WORKER, args=["--stderr-spam", "500"],
                          settings={"stderr_lines_per_s": 10}) as env:
            pid = wait_until("the worker", env.starts)[0]
            line = re.compile(rf"worker local#0 pid {pid}: fault worker stderr line \d+")
            suppressed = re.compile(rf"worker local#0 pid {pid}: (\d+) lines suppressed")

            def accounted():
                log = env.server.log()
                return len(line.findall(log)) + sum(int(n) for n in suppressed.findall(log)) == 500

            # The worker falls silent after its spam: the count still comes, when its second ends.
            wait_until("every line logged or counted", accounted, timeout=15)

    def test_workers_on_two_shards_serve_both_and_report_metrics(self):
        with WorkerServer(MOCK_WORKER, settings={"workers": 2}, shards=2) as env:
            def both_ready():
                text = get(env.port, "/metrics").body.decode()
                return all(f'ringcast_worker_state{{upstream="local",worker="{w}",state="ready"}} 1' in text
                           for w in ("0", "1"))

            wait_until("both workers ready", both_ready)
            for i in range(6):
                r = post_json(env.port, "/v1/chat/completions",
                              {"model": "w", "messages": [{"role": "user", "content": f"hi {i}"}]})
                self.assertEqual(r.status, 200, r.body)
            text = get(env.port, "/metrics").body.decode()
            for w in ("0", "1"):
                self.assertIn(f'ringcast_worker_state{{upstream="local",worker="{w}",state="ready"}} 1', text)
            total = 0
            for line in text.splitlines():
                if line.startswith("ringcast_worker_requests_total{") and 'method="generate"' in line:
                    total += float(line.rsplit(" ", 1)[1])
            self.assertEqual(total, 6)
            self.assertIn("ringcast_worker_first_token_seconds_count", text)


if __name__ == "__main__":
    unittest.main()
