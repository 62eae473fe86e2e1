"""Operating the real server: a port already in use, the process-wide connection limit, and
SIGHUP reloads of the config and keys files."""

import os
import subprocess
import unittest

from harness import Server, get


class ExclusivePort(unittest.TestCase):
    def test_second_server_on_the_same_port_is_refused(self):
        with Server(shards=2) as first:
            out = subprocess.run(
                [os.environ["RINGCAST_BIN"], "--listen", f"127.0.0.1:{first.port}", "--shards", "2",
                 "--no-pin"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn(f"127.0.0.1:{first.port}", out.stderr)
            self.assertIn("already in use", out.stderr)
            # Both processes run as this user, so the other one can be named.
            self.assertIn(f"pid {first.proc.pid}", out.stderr)
            self.assertIn("ringcast", out.stderr)
            # The first server still has all the traffic.
            for _ in range(20):
                self.assertEqual(get(first.port, "/healthz").status, 200)

    def test_wildcard_address_over_a_specific_one_is_refused(self):
        with Server() as first:
            out = subprocess.run(
                [os.environ["RINGCAST_BIN"], "--listen", f":{first.port}", "--shards", "1",
                 "--no-pin"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn(f"port {first.port} is already in use", out.stderr)
            self.assertEqual(get(first.port, "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
