"""Supervision of `jsonrpc` worker processes over their lifetime (docs/workers.md): readiness
after `initialize`, init timeouts and unanswered pings, crash loops (503 + Retry-After, no
hammering: spawns are counted in the fault worker's log), stderr in ringcast's log tagged and
rate-limited, drain on SIGTERM, no worker (or worker's child) surviving SIGTERM, SIGINT or
SIGKILL of ringcast (/proc scanned for the workers' --marker), SIGHUP reload replacing workers,
metrics. Timing-dependent checks use generous bounds and bounded polling.
Skipped while the build has no engine for kind "jsonrpc"."""

import json
import re
import signal
import threading
import time
import unittest
import uuid

from harness import get, metrics
from openai_client import post_json, sse_events
from worker_pipe import FAULT_WORKER, MOCK_WORKER
from worker_setup import WorkerServer, jsonrpc_kind_available, marked_pids, wait_until


def chat(text, model="w", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)


def stream_summary(r):
    """(concatenated text, completion tokens or None, error code or None) of a chat SSE answer."""
    text, usage, error = "", None, None
    for _, data in sse_events(r.body):
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            error = chunk["error"]["code"]
            continue
        for ch in chunk.get("choices") or []:
            text += (ch.get("delta") or {}).get("content") or ""
        if chunk.get("usage"):
            usage = chunk["usage"]["completion_tokens"]
    return text, usage, error


def fault_env(args=(), **settings):
    return WorkerServer(FAULT_WORKER, args=args, settings=settings)


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Readiness(unittest.TestCase):
    def test_readyz_is_503_until_a_worker_has_initialized(self):
        with fault_env(["--slow-init", "4000"], init_timeout_ms=30000) as env:
            r = get(env.port, "/readyz")
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()["status"], "not_ready")
            # A request meanwhile waits for the worker (its deadline is long enough).
            r = post_json(env.port, "/v1/chat/completions", chat("patience"),
                          {"x-ringcast-timeout-ms": "30000"})
            self.assertEqual(r.status, 200, r.body)
            wait_until("ready", lambda: get(env.port, "/readyz").status == 200)
            self.assertEqual(len(env.starts()), 1)

    def test_an_initialize_slower_than_init_timeout_restarts_the_worker(self):
        with fault_env(["--slow-init", "60000"], init_timeout_ms=500) as env:
            wait_until("a second spawn", lambda: len(env.starts()) >= 2)
            self.assertEqual(get(env.port, "/readyz").status, 503)

    def test_unanswered_pings_restart_the_worker(self):
        with fault_env(["--no-ping-answer"], ping_interval_ms=200, ping_timeout_ms=300) as env:
            wait_until("a restart", lambda: len(env.starts()) >= 2)
            self.assertTrue(env.events("ping"))

    def test_answered_pings_keep_the_worker(self):
        with fault_env(ping_interval_ms=100, ping_timeout_ms=2000) as env:
            wait_until("pings", lambda: len(env.events("ping")) >= 5)
            self.assertEqual(len(env.starts()), 1)


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class CrashLoop(unittest.TestCase):
    def test_a_crash_loop_is_503_with_retry_after_and_no_hammering(self):
        with fault_env(["--crash-at-start"], crash_loop_restarts=3, crash_loop_window_ms=60000,
                       restart_backoff_base_ms=100, restart_backoff_cap_ms=4000) as env:
            wait_until("three crashes", lambda: len(env.starts()) >= 3)
            r = wait_until("unavailable", lambda: (lambda r: r if r.status == 503 else None)(
                post_json(env.port, "/v1/chat/completions", chat("anyone?"))))
            self.assertEqual(r.json()["error"]["code"], "worker_unavailable")
            self.assertGreaterEqual(int(r.header("retry-after")), 1)
            self.assertEqual(get(env.port, "/readyz").status, 503)
            spawned = len(env.starts())
            time.sleep(2.0)
            # Marked unavailable: at most one more try in 2 s (the backoff cap is 4 s).
            self.assertLessEqual(len(env.starts()), spawned + 1)


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Stderr(unittest.TestCase):
    def test_stderr_is_logged_tagged_and_rate_limited(self):
        with fault_env(["--stderr-spam", "1000"], stderr_lines_per_s=20) as env:
            pid = wait_until("the worker", env.starts)[0]
            tag = re.compile(rf"worker local#0 pid {pid}: fault worker stderr line \d+")
            wait_until("a stderr line in the log", lambda: tag.search(env.server.log()))
            time.sleep(1.0)
            logged = len(tag.findall(env.server.log()))
            self.assertGreaterEqual(logged, 1)
            self.assertLessEqual(logged, 100)  # 20 per second, a few seconds at most


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Shutdown(unittest.TestCase):
    def test_drain_on_sigterm_finishes_in_flight_then_stops_the_workers(self):
        with fault_env() as env:
            result = {}

            def stream():
                result["r"] = post_json(env.port, "/v1/chat/completions", chat(
                    "fault:slow-tokens tokens=20 ms=100", stream=True,
                    stream_options={"include_usage": True}), timeout=60)

            t = threading.Thread(target=stream)
            t.start()
            wait_until("the call", lambda: env.events("generate"))
            env.server.send_signal(signal.SIGTERM)
            t.join(60)
            self.assertEqual(result["r"].status, 200)
            text, usage, error = stream_summary(result["r"])
            self.assertIsNone(error)
            self.assertEqual(usage, 20)
            self.assertEqual(env.server.stop(), 0)
            wait_until("no worker left", lambda: not marked_pids(env.marker), timeout=15)

    def check_nothing_survives(self, signo, args, settings=None):
        with fault_env(args, workers=3, **(settings or {})) as env:
            wait_until("three workers", lambda: len(env.events("initialize")) >= 3)
            if "--grandchild" in args:
                wait_until("their children", lambda: len(env.events("grandchild")) >= 3)
            self.assertGreaterEqual(len(marked_pids(env.marker)), 3)
            code = env.server.stop(signo, timeout=30)
            if signo == signal.SIGKILL:
                self.assertEqual(code, -signal.SIGKILL)
            else:
                self.assertEqual(code, 0, env.server.log())
            wait_until("no worker left", lambda: not marked_pids(env.marker), timeout=10, fail=False)
            self.assertEqual(marked_pids(env.marker), [], "processes survived ringcast")

    def test_nothing_survives_sigterm(self):
        self.check_nothing_survives(signal.SIGTERM, ["--grandchild"])

    def test_nothing_survives_sigint(self):
        self.check_nothing_survives(signal.SIGINT, ["--grandchild"])

    def test_a_worker_ignoring_sigterm_is_killed_after_the_grace(self):
        self.check_nothing_survives(signal.SIGTERM, ["--ignore-sigterm", "--grandchild"],
                                    {"stop_grace_ms": 500})

    def test_nothing_survives_sigkill(self):
        # Workers that ignore EOF on stdin: only PR_SET_PDEATHSIG ends them.
        self.check_nothing_survives(signal.SIGKILL, ["--ignore-eof"])


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Reload(unittest.TestCase):
    def test_sighup_changing_the_command_replaces_the_workers(self):
        with WorkerServer(MOCK_WORKER, args=["--mock-tokens-per-s", "20", "--mock-tokens", "40"],
                          settings={"workers": 2}) as env:
            old = wait_until("the workers", lambda: len(marked_pids(env.marker)) == 2 and marked_pids(env.marker))
            result = {}

            def stream():
                result["r"] = post_json(env.port, "/v1/chat/completions", chat(
                    "slow", stream=True, stream_options={"include_usage": True}), timeout=60)

            t = threading.Thread(target=stream)
            t.start()
            wait_until("the stream", lambda: (metric_sum(env.port, "ringcast_engine_running") or 0) >= 1)
            new_marker = "rcw-" + uuid.uuid4().hex[:12]
            env.write(["--mock-tokens", "5"], marker=new_marker)
            env.server.send_signal(signal.SIGHUP)
            wait_until("the reload", lambda: "configuration reloaded" in env.server.log())
            try:
                wait_until("new workers", lambda: len(marked_pids(new_marker)) == 2)
                r = wait_until("an answer from a new worker", lambda: (lambda r: r if r.status == 200 and
                               r.json()["usage"]["completion_tokens"] == 5 else None)(
                    post_json(env.port, "/v1/chat/completions", chat("new"))))
                self.assertEqual(r.json()["model"], "w")
                t.join(60)
                # The stream that started before the reload ran to its end on an old worker.
                self.assertEqual(stream_summary(result["r"])[1:], (40, None))
                wait_until("the old workers gone", lambda: not set(old) & set(marked_pids(env.marker)))
            finally:
                code = env.server.stop()
                wait_until("no new worker left", lambda: not marked_pids(new_marker), timeout=15, fail=False)
            self.assertEqual(code, 0, env.server.log())
            self.assertEqual(marked_pids(new_marker), [])


@unittest.skipUnless(jsonrpc_kind_available(), "no engine for kind jsonrpc in this build")
class Metrics(unittest.TestCase):
    def test_worker_metrics_show_state_restarts_and_requests(self):
        with fault_env() as env:
            wait_until("the worker", lambda: env.events("initialize"))
            self.assertEqual(post_json(env.port, "/v1/chat/completions", chat("hi")).status, 200)
            post_json(env.port, "/v1/chat/completions", chat("fault:exit-now"))
            wait_until("a restart", lambda: len(env.starts()) >= 2)
            wait_until("the worker back", lambda: post_json(
                env.port, "/v1/chat/completions", chat("again")).status == 200)
            text = get(env.port, "/metrics").body.decode()
            lines = [l for l in text.splitlines() if l.startswith("ringcast_worker") and 'upstream="local"' in l]
            self.assertTrue(lines, "no per-worker metrics")
            restarts = [l for l in lines if "restart" in l.split("{")[0]]
            self.assertTrue(any(float(l.rsplit(" ", 1)[1]) >= 1 for l in restarts), restarts)


def metric_sum(port, name):
    return sum(v for (n, _), v in metrics(port).items() if n == name)


if __name__ == "__main__":
    unittest.main()
