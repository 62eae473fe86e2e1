"""Cluster settings (docs/cluster.md): every bad value stops start-up with a clear message, and
good ones (flags, the config file, the environment) are accepted."""

import os
import signal
import subprocess
import tempfile
import unittest

import harness
from nats_process import free_port, wait_for

BAD = [
    # (arguments, what the message must say)
    (["--node-id", "n1"], "--node-id needs --nats"),
    (["--topic-retention", "a.>=age:1h"], "--topic-retention needs --nats"),
    (["--broker-partitions", "8"], "--broker-partitions needs --nats"),
    (["--nats", "localhost:4222"], "expected nats://HOST[:PORT]"),
    (["--nats", "nats://127.0.0.1:0"], "port must be 1 to 65535"),
    (["--nats", "nats://127.0.0.1:99999"], "port must be 1 to 65535"),
    (["--nats", "nats://127.0.0.1:4222,tls://127.0.0.1:4223"], "only nats:// (plain TCP)"),
    (["--nats", "nats://me:secret@127.0.0.1:4222"], "credentials do not belong in the URL"),
    (["--nats", "nats://127.0.0.1:4222/path"], "no path"),
    (["--nats", "nats://[::1:4222"], "unterminated [IPv6] literal"),
    (["--nats", "nats://"], "empty host"),
    (["--nats", "nats://1", "--nats-user", "u"], "--nats-user needs --nats-password"),
    (["--nats", "nats://1", "--nats-password", "p"], "--nats-password needs --nats-user"),
    (["--nats", "nats://1", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"],
     "a token and a user/password cannot be used together"),
    (["--nats", "nats://1", "--nats-credentials-file", "/nonexistent/creds"],
     "cannot read /nonexistent/creds"),
    (["--nats", "nats://1", "--node-id", "a.b"], "only letters, digits, '_' and '-'"),
    (["--nats", "nats://1", "--node-id", "x" * 33], "longer than 32 characters"),
    (["--nats", "nats://1", "--nats-replicas", "0"], "--nats-replicas"),
    (["--nats", "nats://1", "--nats-replicas", "6"], "--nats-replicas"),
    (["--nats", "nats://1", "--broker-partitions", "0"], "--broker-partitions"),
    (["--nats", "nats://1", "--broker-lease-ms", "10"], "--broker-lease-ms"),
    (["--nats", "nats://1", "--responses-ttl-s", "0"], "--responses-ttl-s"),
    (["--nats", "nats://1", "--topic-retention", "chat.>"], "expected PATTERN=age:24h"),
    (["--nats", "nats://1", "--topic-retention", "chat.>="], "no limits after '='"),
    (["--nats", "nats://1", "--topic-retention", "chat*=age:1h"], "bad topic pattern"),
    (["--nats", "nats://1", "--topic-retention", "a..b=age:1h"], "empty segment"),
    (["--nats", "nats://1", "--topic-retention", "a.>=age:1y"], "unknown unit 'y'"),
    (["--nats", "nats://1", "--topic-retention", "a.>=age"], "expected KEY:VALUE"),
    (["--nats", "nats://1", "--topic-retention", "a.>=ttl:1h"], "unknown key 'ttl'"),
    (["--nats", "nats://1", "--topic-retention", "a.>=age:1h,age:2h"], "'age' given twice"),
    (["--nats", "nats://1", "--topic-retention", "a.>=msgs:lots"], "is not a count"),
    (["--nats", "nats://1", "--topic-retention", "a.>=msgs:0"], "must be at least 1"),
    (["--nats", "nats://1", "--topic-retention", "a.>=bytes:64XB"], "unknown unit 'XB'"),
    (["--nats", "nats://1", "--topic-retention", "a.>=bytes:99999999999TiB"], "too large"),
    (["--nats", "nats://1", "--topic-retention", "a.>=age:1h", "--topic-retention",
      "a.>=msgs:5"], "pattern 'a.>' is given twice"),
]


def run(args, env=None, timeout=30):
    return subprocess.run([harness.RINGCAST_BIN, "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class BadSettings(unittest.TestCase):
    def setUp(self):
        if not harness.RINGCAST_BIN:
            self.skipTest("RINGCAST_BIN is not set (run through ctest)")

    def test_each_bad_value_stops_start_up_with_its_reason(self):
        for args, message in BAD:
            with self.subTest(args=args):
                out = run(args)
                self.assertNotEqual(out.returncode, 0, out.stderr)
                self.assertIn(message, out.stderr)

    def test_bad_credentials_files(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [
                ("", "the file is empty"),
                ("user:\n", "both parts non-empty"),
                ("a\nb\n", "expected one line"),
                ("-----BEGIN NATS USER JWT-----\neyJ...\n", ".creds files (JWT and NKey)"),
            ]
            for i, (content, message) in enumerate(cases):
                path = os.path.join(d, f"creds{i}")
                with open(path, "w") as f:
                    f.write(content)
                with self.subTest(content=content):
                    out = run(["--nats", "nats://127.0.0.1:4222", "--nats-credentials-file", path])
                    self.assertNotEqual(out.returncode, 0, out.stderr)
                    self.assertIn(message, out.stderr)
                    self.assertIn(path, out.stderr)

    def test_environment_and_file_together_are_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".creds") as f:
            f.write("user:password\n")
            f.flush()
            out = run(["--nats", "nats://127.0.0.1:4222", "--nats-credentials-file", f.name],
                      env={"RINGCAST_NATS_TOKEN": "t"})
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn("either in the file or with", out.stderr)
            # The environment alone is checked like the flags.
            out = run(["--nats", "nats://127.0.0.1:4222"], env={"RINGCAST_NATS_USER": "u"})
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn("--nats-user needs --nats-password", out.stderr)

    def test_bad_value_in_the_config_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write('nats = ["nats://127.0.0.1:4222"]\ntopic_retention = ["a.>=age:soon"]\n')
            f.flush()
            out = run(["--config", f.name])
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn("--topic-retention: 'a.>=age:soon'", out.stderr)

    def test_help_documents_the_cluster_flags(self):
        out = subprocess.run([harness.RINGCAST_BIN, "--help"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0)
        for flag in ("--nats", "--nats-token", "--nats-user", "--nats-password",
                     "--nats-credentials-file", "--node-id", "--nats-replicas",
                     "--topic-retention", "--broker-partitions", "--broker-lease-ms",
                     "--responses-ttl-s", "RINGCAST_NATS_TOKEN"):
            self.assertIn(flag, out.stdout)


class GoodSettings(unittest.TestCase):
    def test_config_file_lists_and_node_id_are_accepted(self):
        # Nothing listens on the NATS port: the node starts anyway and says why it is not ready.
        port = free_port()
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write(f'nats = ["nats://127.0.0.1:{port}", "nats://localhost:{port}"]\n'
                    'node_id = "edge-7"\nnats_replicas = 1\nbroker_partitions = 8\n'
                    'topic_retention = ["chat.>=age:1h,msgs:1000", "logs.*=bytes:64MiB"]\n')
            f.flush()
            with harness.Server("--config", f.name) as rc:
                self.assertIn("cluster: node edge-7", rc.log())
                self.assertIn("3 topic retention classes, 8 broker partitions", rc.log())
                r = harness.get(rc.port, "/readyz")
                self.assertEqual(r.status, 503)
                self.assertEqual(r.json()["status"], "not_ready")
                self.assertTrue(r.json()["reason"].startswith("nats: disconnected"), r.body)
                self.assertIsNotNone(r.header("Retry-After"))

    def test_default_node_id_is_host_and_port(self):
        with harness.Server("--nats", f"nats://127.0.0.1:{free_port()}") as rc:
            wait_for(lambda: "cluster: node" in rc.log(), 10)
            self.assertRegex(rc.log(), rf"cluster: node [A-Za-z0-9_-]+-{rc.port},")


    def test_reload_keeps_cluster_settings_and_never_logs_credentials(self):
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "ringcast.toml")
            nats = f"nats://127.0.0.1:{free_port()}"
            with open(config, "w") as f:
                f.write(f'nats = "{nats}"\nbroker_partitions = 8\nnats_token = "first-secret"\n')
            with harness.Server("--config", config) as rc:
                with open(config, "w") as f:
                    f.write(f'nats = "{nats}"\nbroker_partitions = 16\n'
                            'nats_token = "second-secret"\n')
                rc.send_signal(signal.SIGHUP)
                self.assertTrue(wait_for(lambda: "configuration reloaded" in rc.log(), 15), rc.log())
                log = rc.log()
                self.assertIn("--broker-partitions changed from 8 to 16: needs a restart "
                              "(keeping 8)", log)
                self.assertIn("NATS credentials changed: need a restart", log)
                self.assertNotIn("secret", log)


if __name__ == "__main__":
    unittest.main()
