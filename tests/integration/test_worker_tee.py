"""tests/workers/tee.py, the wire logger the worker schema tests run workers under: it passes
messages through unchanged in both framings, logs each one with its direction, and exits with the
worker's status."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

TEE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workers", "tee.py")

# A worker that answers each line with its reversal (lines), or each frame likewise.
ECHO_LINES = "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)\n"


class Tee(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "wire.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def entries(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def test_lines_pass_through_and_are_logged_by_direction(self):
        out = subprocess.run([sys.executable, TEE, "--log", self.log, "--", sys.executable, "-c",
                              ECHO_LINES], input=b'{"a":1}\n{"b":"\xc3\xa9"}\n',
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, '}1:"a"{\n}"\xe9":"b"{\n'.encode())
        got = [(e["dir"], e["text"]) for e in self.entries()]
        self.assertEqual(sorted(got), sorted([("to_worker", '{"a":1}'), ("to_worker", '{"b":"é"}'),
                                              ("from_worker", '}1:"a"{'), ("from_worker", '}"é":"b"{')]))
        self.assertTrue(all(isinstance(e["t"], float) for e in self.entries()))
        self.assertEqual(len({e["pid"] for e in self.entries()}), 1)

    def test_content_length_frames_pass_through_unchanged(self):
        frames = b'Content-Length: 7\r\n\r\n{"a":1}Content-Length: 11\r\n\r\n{"b":"x\ny"}'
        out = subprocess.run([sys.executable, TEE, "--framing", "content-length", "--log", self.log,
                              "--", "cat"], input=frames, capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, frames)
        self.assertEqual([e["text"] for e in self.entries() if e["dir"] == "to_worker"],
                         ['{"a":1}', '{"b":"x\ny"}'])
        self.assertEqual([e["text"] for e in self.entries() if e["dir"] == "from_worker"],
                         ['{"a":1}', '{"b":"x\ny"}'])

    def test_exit_status_and_signals_are_the_workers(self):
        out = subprocess.run([sys.executable, TEE, "--log", self.log, "--", "sh", "-c",
                              "echo '{}'; exit 7"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=30)
        self.assertEqual(out.returncode, 7)
        self.assertEqual(out.stdout, b"{}\n")
        out = subprocess.run([sys.executable, TEE, "--log", self.log, "--", "sh", "-c",
                              "kill -9 $$"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=30)
        self.assertEqual(out.returncode, 128 + 9)


if __name__ == "__main__":
    unittest.main()
