"""The wire-log fixture of CTest (wire_schemas.py): a tapped process leaves its log even without
traffic, so the validator tells a whole set's run from a partial one; it checks the expected
kinds of traffic only for a whole set, and validates every log either way. Needs node."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = os.environ.get("RINGCAST_NODE") or shutil.which("node")


@unittest.skipUnless(NODE, "needs node")
class WireFixture(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.logs = os.path.join(self.tmp.name, "logs")
        self.manifest = os.path.join(self.tmp.name, "tests")
        with open(self.manifest, "w", encoding="utf-8") as f:
            f.write("m.C.test_a\nm.C.test_b\n")
        self.assertEqual(self.run_script("--setup", self.logs).returncode, 0)

    def tearDown(self):
        self.tmp.cleanup()

    def run_script(self, *args, env=None):
        return subprocess.run([sys.executable, "wire_schemas.py", *args], cwd=HERE, text=True,
                              capture_output=True, timeout=120,
                              env={**os.environ, "RINGCAST_NODE": NODE, **(env or {})})

    def tap(self, test):
        """A tapped process that receives nothing: its log exists all the same."""
        path = os.path.join(self.logs, f"{test}.jsonl")
        subprocess.run([sys.executable, "-c", "import wire_log"], cwd=HERE, check=True, timeout=60,
                       env={**os.environ, "RINGCAST_WIRE_LOG": path})
        self.assertTrue(os.path.exists(path))
        return path

    def test_setup_empties_the_directory(self):
        self.tap("m.C.test_a")
        self.assertEqual(self.run_script("--setup", self.logs).returncode, 0)
        self.assertEqual(os.listdir(self.logs), [])

    def test_whole_set_without_expected_traffic_fails_partial_set_skips_that_check(self):
        self.tap("m.C.test_a")
        partial = self.run_script(self.logs, self.manifest)
        self.assertEqual(partial.returncode, 0, partial.stdout)
        self.assertIn("partial run (1 of 2", partial.stdout)
        self.tap("m.C.test_b")
        whole = self.run_script(self.logs, self.manifest)
        self.assertEqual(whole.returncode, 1, whole.stdout)
        self.assertIn("the taps are broken", whole.stdout)

    def test_a_message_without_schema_fails_partial_run_or_not(self):
        path = self.tap("m.C.test_a")
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "ws", "route": "/ws", "message": {"event": "nope"}}) + "\n")
        out = self.run_script(self.logs, self.manifest)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("no schema for event 'nope'", out.stdout)
        self.assertIn("test_a.jsonl:1:", out.stdout)


if __name__ == "__main__":
    unittest.main()
