"""[[upstreams]], [[models]] and --upstream: a bad config stops start-up (and a SIGHUP reload
keeps the running one) with "FILE:LINE: reason"; the key's value never appears in any message."""

import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import RINGCAST_BIN, Server, get

SECRET = "sk-never-print-this-0123456789"

UPSTREAM = """[[upstreams]]
name = "gpu"
kind = "openai"
endpoints = ["http://127.0.0.1:8000/v1"]
"""

# (file text, environment, the reason expected after "FILE:LINE: ")
CASES = [
    # Unknown references and names given twice.
    (UPSTREAM + '[[models]]\nname = "m"\nupstream = "nope"\n', {},
     5, "model 'm': unknown upstream 'nope'"),
    (UPSTREAM + UPSTREAM, {},
     5, "upstream 'gpu' is defined twice (first at line 1)"),
    (UPSTREAM + '[[models]]\nname = "m"\nupstream = "gpu"\n[[models]]\nname = "m"\nupstream = "gpu"\n',
     {}, 8, "model 'm' is routed twice (first at line 5)"),
    # URLs.
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = [\n  "http://a:1/v1",\n  "http://a:99999/v1",\n]\n',
     {}, 6, 'bad URL "http://a:99999/v1": port out of range (1-65535)'),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = ["http://user:pw@a/v1"]\n', {},
     4, 'bad URL "http://user:pw@a/v1": user info is not allowed in an upstream URL (put the key in api_key_env)'),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = ["ftp://a"]\n', {},
     4, 'bad URL "ftp://a": unsupported scheme "ftp" (expected http, https, ws or wss)'),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = ["ws://a/v1"]\n', {},
     4, "a ws:// or wss:// endpoint on a openai upstream (it takes http:// or https:// URLs)"),
    ('[[upstreams]]\nname = "w"\nkind = "responses-ws"\nendpoints = ["https://a/v1"]\n', {},
     4, "a http:// or https:// endpoint on a responses-ws upstream (it takes ws:// or wss:// URLs)"),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = ["http://a", "http://a:80/"]\n', {},
     4, 'endpoint "http://a" is listed twice'),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = []\n', {},
     4, 'endpoints must be a non-empty list of URLs, e.g. ["http://10.0.0.5:8000/v1"]'),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\nendpoints = "http://a"\n', {},
     4, 'endpoints must be a non-empty list of URLs, e.g. ["http://10.0.0.5:8000/v1"]'),
    # Keys.
    (UPSTREAM + 'api_key_env = "RC_TEST_MISSING_KEY"\n', {},
     5, "api_key_env: environment variable RC_TEST_MISSING_KEY is not set"),
    (UPSTREAM + 'api_key_env = "RC_TEST_EMPTY_KEY"\n', {"RC_TEST_EMPTY_KEY": ""},
     5, "api_key_env: environment variable RC_TEST_EMPTY_KEY is empty"),
    (UPSTREAM + 'api_key_env = "RC_TEST_SPACE_KEY"\n', {"RC_TEST_SPACE_KEY": SECRET + " x"},
     5, "api_key_env: the value of RC_TEST_SPACE_KEY contains a space or a control character"),
    # Unknown keys, missing keys, wrong types, ranges.
    (UPSTREAM + 'retries = 3\n', {},
     5, "unknown key 'retries' in [[upstreams]] (see docs/operations.md, \"Upstreams and models\")"),
    (UPSTREAM + '[[models]]\nname = "m"\nupstream = "gpu"\ntemperature = 0\n', {},
     8, "unknown key 'temperature' in [[models]] (see docs/operations.md, \"Upstreams and models\")"),
    ('[[upstreams]]\nkind = "openai"\nendpoints = ["http://a"]\n', {},
     1, "[[upstreams]]: name is required"),
    ('[[upstreams]]\nname = "gpu"\nendpoints = ["http://a"]\n', {},
     1, "upstream 'gpu': kind is required (openai or responses-ws)"),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\n', {},
     1, "upstream 'gpu': endpoints is required (a list of URLs)"),
    (UPSTREAM + '[[models]]\nname = "m"\n', {},
     5, "model 'm': upstream is required"),
    (UPSTREAM + '[[models]]\nupstream = "gpu"\n', {},
     5, "[[models]]: name is required"),
    ('[[upstreams]]\nname = "gpu"\nkind = "grpc"\nendpoints = ["http://a"]\n', {},
     3, 'unknown kind "grpc" (known: openai, responses-ws)'),
    (UPSTREAM + 'connect_timeout_ms = "5s"\n', {},
     5, "connect_timeout_ms must be an integer"),
    (UPSTREAM + 'connect_timeout_ms = 0\n', {},
     5, "connect_timeout_ms must be between 1 and 3600000 (got 0)"),
    (UPSTREAM + 'tls_verify = "no"\n', {},
     5, "tls_verify must be true or false"),
    (UPSTREAM + 'api = 3\n', {},
     5, "api must be a string"),
    (UPSTREAM + 'api = "completions"\n', {},
     5, 'api must be "chat", "responses" or "both" (got "completions")'),
    ('[[upstreams]]\nname = "w"\nkind = "responses-ws"\nendpoints = ["wss://a"]\napi = "chat"\n', {},
     5, 'api: a responses-ws upstream speaks "responses" only'),
    (UPSTREAM + 'stateful = true\n', {},
     5, "stateful applies to responses-ws upstreams only"),
    (UPSTREAM + 'backoff_base_ms = 500\nbackoff_cap_ms = 100\n', {},
     1, "upstream 'gpu': backoff_base_ms must not exceed backoff_cap_ms"),
    (UPSTREAM + 'ca_file = "/nonexistent/ca.pem"\n', {},
     5, "ca_file: cannot open /nonexistent/ca.pem: No such file or directory"),
    (UPSTREAM + 'headers = { "Connection" = "close" }\n', {},
     5, "headers: 'connection' is set by ringcast"),
    (UPSTREAM + 'api_key_env = "RC_TEST_KEY"\nheaders = { "Authorization" = "Bearer x" }\n',
     {"RC_TEST_KEY": SECRET}, 6, "headers: 'authorization' is set from api_key_env; give one or the other"),
    (UPSTREAM + 'headers = { "x-a" = 1 }\n', {},
     5, "headers: the value of 'x-a' must be a string"),
    ('[[upstreams]]\nname = "a b"\nkind = "openai"\nendpoints = ["http://a"]\n', {},
     2, "upstream name must not contain spaces, quotes or control characters"),
    (UPSTREAM + '[[models]]\nname = "*"\nupstream = "gpu"\nupstream_model = "x"\n', {},
     8, 'upstream_model: the "*" route sends each client\'s model name unchanged'),
    (UPSTREAM + '[[models]]\nname = "m"\nupstream = "gpu"\nmax_output_tokens = 0\n', {},
     8, "max_output_tokens must be between 1 and 16777216 (got 0)"),
    # Tables where arrays of tables belong.
    ('models = ["a", "b"]\n', {},
     1, "models must be an array of tables: write [[models]] sections (the mock's models are `model = [...]`)"),
    ('[upstreams]\nname = "gpu"\n', {},
     1, "upstreams must be an array of tables: write [[upstreams]] sections"),
]


def run_binary(args, env=None, timeout=30):
    return subprocess.run([RINGCAST_BIN, "--listen", "127.0.0.1:0", "--shards", "1", "--no-pin",
                           *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class ConfigErrors(unittest.TestCase):
    def setUp(self):
        if not RINGCAST_BIN:
            raise unittest.SkipTest("RINGCAST_BIN is not set (run through ctest)")
        self.dir = tempfile.TemporaryDirectory()
        self.config = os.path.join(self.dir.name, "ringcast.toml")

    def tearDown(self):
        self.dir.cleanup()

    def test_each_mistake_stops_start_up_with_file_line_and_reason(self):
        for text, env, line, reason in CASES:
            with self.subTest(reason=reason):
                with open(self.config, "w") as f:
                    f.write(text)
                out = run_binary(["--config", self.config], env)
                self.assertNotEqual(out.returncode, 0, out.stderr)
                self.assertIn(f"{self.config}:{line}: {reason}\n", out.stderr)
                self.assertNotIn(SECRET, out.stderr + out.stdout)

    def test_upstream_flag_mistakes(self):
        for args, reason in [
            (["--upstream", "http://127.0.0.1:8000/v1?x=1"],
             '--upstream: bad URL "http://127.0.0.1:8000/v1?x=1": queries (\'?\') are not allowed in an upstream URL'),
            (["--upstream", "127.0.0.1:8000"],
             '--upstream: bad URL "127.0.0.1:8000": missing scheme (expected http://, https://, ws:// or wss://)'),
            (["--upstream", "http://a", "--upstream", "wss://b"],
             "--upstream: mixes http(s):// and ws(s):// URLs (one upstream, one kind)"),
        ]:
            with self.subTest(reason=reason):
                out = run_binary(args)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(reason, out.stderr)

    def test_upstream_flag_against_the_file(self):
        with open(self.config, "w") as f:
            f.write(UPSTREAM.replace('"gpu"', '"default"'))
        out = run_binary(["--config", self.config, "--upstream", "http://127.0.0.1:9/v1"])
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--upstream: the config file already defines an upstream named 'default' "
                      f"({self.config}:1)", out.stderr)
        with open(self.config, "w") as f:
            f.write(UPSTREAM + '[[models]]\nname = "*"\nupstream = "gpu"\n')
        out = run_binary(["--config", self.config, "--upstream", "http://127.0.0.1:9/v1"])
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn('--upstream: the config file already routes every other model ("*", '
                      f"{self.config}:5)", out.stderr)

    def test_a_route_the_mock_serves_too(self):
        with open(self.config, "w") as f:
            f.write(UPSTREAM + '[[models]]\nname = "ringcast-mock"\nupstream = "gpu"\n')
        out = run_binary(["--config", self.config, "--model", "ringcast-mock"])
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(f"{self.config}:5: model 'ringcast-mock' is also served by the mock "
                      "(--model); route it in one place", out.stderr)


class ReloadErrors(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = os.path.join(self.dir.name, "ringcast.toml")

    def tearDown(self):
        self.dir.cleanup()

    def wait_for_log(self, srv, text, count):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if srv.log().count(text) >= count:
                return srv.log()
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged {count} time(s):\n" + srv.log())

    def test_a_bad_upstream_table_keeps_the_running_configuration(self):
        with open(self.config, "w") as f:
            f.write("heartbeat_ms = 15000\n")
        with Server("--config", self.config, env={"RC_TEST_KEY": SECRET}) as srv:
            bad = [
                (UPSTREAM + '[[models]]\nname = "m"\nupstream = "nope"\n',
                 "5: model 'm': unknown upstream 'nope'"),
                (UPSTREAM + 'api_key_env = "RC_TEST_MISSING_KEY"\n',
                 "5: api_key_env: environment variable RC_TEST_MISSING_KEY is not set"),
                (UPSTREAM.replace("8000", "0"), '4: bad URL "http://127.0.0.1:0/v1": port out of range'),
            ]
            for i, (text, reason) in enumerate(bad, start=1):
                with open(self.config, "w") as f:
                    f.write(text)
                srv.send_signal(signal.SIGHUP)
                log = self.wait_for_log(srv, "keeping the running configuration", i)
                self.assertIn(f"{self.config}:{reason}", log)
                # The mock still serves, as before.
                r = get(srv.port, "/v1/models")
                self.assertEqual(r.status, 200)
                self.assertEqual([m["id"] for m in r.json()["data"]], ["ringcast-mock"])
            self.assertNotIn(SECRET, srv.log())


if __name__ == "__main__":
    unittest.main()
