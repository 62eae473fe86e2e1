"""tests/workers/fault_worker.py over its pipes: each fault does what the supervision tests
(test_workers*.py) rely on, and the log records spawns, generates and cancels."""

import json
import os
import signal
import tempfile
import time
import unittest

from worker_pipe import FAULT_WORKER, WorkerPipe


def params(text, **kw):
    return dict({"request_id": "r", "model": "m", "messages": [{"role": "user", "content": text}]}, **kw)


class FaultWorker(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "log")
        self.state = os.path.join(self.dir.name, "state")
        os.mkdir(self.state)

    def tearDown(self):
        self.dir.cleanup()

    def worker(self, *args):
        return WorkerPipe(FAULT_WORKER, "--log", self.log, "--state-dir", self.state, *args)

    def events(self, kind):
        with open(self.log) as f:
            return [e for e in map(json.loads, f) if e["event"] == kind]

    def test_echo_n_and_max_tokens(self):
        with self.worker() as w:
            self.assertEqual(w.initialize()["result"]["protocol_version"], 1)
            ev = w.generate(params("one two three", n=2, max_tokens=2))
            self.assertEqual(ev, [("delta", 0, "one"), ("delta", 1, "one"), ("delta", 0, " two"),
                                  ("delta", 1, " two"), ("done", 0, "length"), ("done", 1, "length"),
                                  ("usage", 3, 4)])

    def test_error_faults(self):
        with self.worker() as w:
            w.initialize()
            self.assertEqual(w.generate(params("fault:overloaded retry_after_ms=2500")),
                             [("error", -32001, {"retry_after_ms": 2500})])
            self.assertEqual(w.generate(params("fault:invalid-params")),
                             [("error", -32602, {"param": "messages"})])
            self.assertEqual(w.generate(params("fault:error code=-32002")), [("error", -32002, None)])
            self.assertEqual(w.generate(params("fault:error retryable=1")),
                             [("error", -32603, {"retryable": True})])

    def test_hang_answers_pings_and_logs_the_cancel(self):
        with self.worker() as w:
            w.initialize()
            gid = w.request("generate", params("fault:hang"))
            ping = w.request("ping", {})
            self.assertEqual(w.answer(ping)[0]["result"], {})
            w.notify("cancel", {"id": gid})
            self.assertEqual(w.answer(gid)[0]["error"]["code"], -32003)
            self.assertEqual([(e["id"], e["known"]) for e in self.events("cancel")], [(gid, True)])

    def test_garbage_and_oversized_lines(self):
        with self.worker() as w:
            w.initialize()
            w.request("generate", params("fault:garbage"))
            with self.assertRaises(ValueError):
                w.read()
            w.buf = b""
            w.request("generate", params("fault:oversized bytes=300000"))
            m = w.read()
            self.assertEqual(len(m["params"]["text"]), 300000)

    def test_crashes_exit_with_their_codes_once_per_tag(self):
        with self.worker() as w:
            w.initialize()
            w.request("generate", params("fault:crash-before-first once=t code=7"))
            self.assertEqual(w.proc.wait(10), 7)
        with self.worker() as w:  # the tag is spent: echoed
            w.initialize()
            self.assertEqual(w.generate(params("fault:crash-before-first once=t"))[-1][0], "usage")
        with self.worker() as w:
            w.initialize()
            gid = w.request("generate", params("fault:crash-mid-stream after=2"))
            notes = [w.read(), w.read()]
            self.assertEqual([(n["params"]["id"], n["params"]["text"]) for n in notes],
                             [(gid, "part0 "), (gid, "part1 ")])
            self.assertEqual(w.proc.wait(10), 3)
        with self.worker() as w:
            w.initialize()
            w.request("generate", params("fault:exit-now"))
            self.assertEqual(w.proc.wait(10), 0)
        self.assertEqual([e["reason"] for e in self.events("exit")],
                         ["crash-before-first", "eof", "crash-mid-stream", "exit-now"])
        self.assertEqual(len(self.events("start")), 4)

    def test_slow_tokens_are_paced(self):
        with self.worker() as w:
            w.initialize()
            start = time.monotonic()
            ev = w.generate(params("fault:slow-tokens tokens=4 ms=100"))
            self.assertGreaterEqual(time.monotonic() - start, 0.35)
            self.assertEqual([e[0] for e in ev], ["delta"] * 4 + ["done", "usage"])

    def test_start_flags(self):
        with self.worker("--crash-at-start") as w:
            self.assertEqual(w.proc.wait(10), 1)
        with self.worker("--slow-init", "300", "--no-ping-answer", "--stderr-spam", "3") as w:
            start = time.monotonic()
            w.initialize()
            self.assertGreaterEqual(time.monotonic() - start, 0.25)
            w.request("ping", {})
            with self.assertRaises(TimeoutError):
                w.read(timeout=0.5)
            w.proc.stdin.close()
            self.assertEqual(w.proc.wait(10), 0)
            self.assertEqual(w.proc.stderr.read().decode().splitlines(),
                             [f"fault worker stderr line {i}" for i in range(3)])
        self.assertEqual([e["answered"] for e in self.events("ping")], [False])

    def test_ignore_eof_and_sigterm(self):
        with self.worker("--ignore-eof", "--ignore-sigterm") as w:
            w.initialize()
            w.proc.stdin.close()
            time.sleep(0.3)
            w.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(w.proc.poll())
            w.proc.kill()
            w.proc.wait(10)
        self.assertTrue(self.events("sigterm-ignored"))


if __name__ == "__main__":
    unittest.main()
