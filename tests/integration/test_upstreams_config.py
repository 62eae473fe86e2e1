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
     1, "upstream 'gpu': kind is required (jsonrpc, openai, responses-ws)"),
    ('[[upstreams]]\nname = "gpu"\nkind = "openai"\n', {},
     1, "upstream 'gpu': endpoints is required (a list of URLs)"),
    (UPSTREAM + '[[models]]\nname = "m"\n', {},
     5, "model 'm': upstream is required"),
    (UPSTREAM + '[[models]]\nupstream = "gpu"\n', {},
     5, "[[models]]: name is required"),
    ('[[upstreams]]\nname = "gpu"\nkind = "grpc"\nendpoints = ["http://a"]\n', {},
     3, 'unknown kind "grpc" (known: jsonrpc, openai, responses-ws)'),
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

# kind = "jsonrpc" (local workers, docs/workers.md). WORKER is lines 1-5.
WORKER = """[[upstreams]]
name = "local"
kind = "jsonrpc"
protocol = "ringcast"
command = ["python3", "worker.py"]
"""
CODEX = WORKER.replace('"ringcast"', '"codex-app-server"')
NO_ENDPOINTS = "does not apply to a jsonrpc upstream: it has no endpoints, it runs `command` (docs/workers.md)"
ONLY_WORKERS = 'applies to upstreams that run workers (kind = "jsonrpc") only'
WORKER_CASES = [
    # Endpoints and the other network keys.
    (WORKER + 'endpoints = ["http://127.0.0.1:8000/v1"]\n', 6, "endpoints " + NO_ENDPOINTS),
    (WORKER + 'api_key_env = "HOME"\n', 6, "api_key_env " + NO_ENDPOINTS),
    (WORKER + 'connect_timeout_ms = 100\n', 6, "connect_timeout_ms " + NO_ENDPOINTS),
    (WORKER + 'headers = { "x-a" = "b" }\n', 6, "headers " + NO_ENDPOINTS),
    (WORKER + 'url = "http://a"\n', 6,
     "unknown key 'url' in [[upstreams]] (see docs/operations.md, \"Upstreams and models\")"),
    (WORKER + 'commands = ["a"]\n', 6,
     "unknown key 'commands' in [[upstreams]] (see docs/operations.md, \"Upstreams and models\")"),
    # Worker keys on an upstream with endpoints.
    (UPSTREAM + 'command = ["python3", "worker.py"]\n', 5, "command " + ONLY_WORKERS),
    (UPSTREAM + 'workers = 2\n', 5, "workers " + ONLY_WORKERS),
    # command.
    ('[[upstreams]]\nname = "local"\nkind = "jsonrpc"\nprotocol = "ringcast"\n', 1,
     "upstream 'local': command is required for a jsonrpc upstream (the worker's argv, "
     'e.g. ["python3", "worker.py"])'),
    (WORKER.replace('["python3", "worker.py"]', "[]"), 5,
     'command must be a non-empty list of strings (the worker\'s argv), e.g. ["python3", "worker.py"]'),
    (WORKER.replace('["python3", "worker.py"]', '"python3 worker.py"'), 5,
     'command must be a non-empty list of strings (the worker\'s argv), e.g. ["python3", "worker.py"]'),
    (WORKER.replace('["python3", "worker.py"]', '["python3", 3]'), 5, "command[1] must be a string"),
    (WORKER.replace('["python3", "worker.py"]', '["python3", ["-u"]]'), 5, "command[1] must be a string"),
    (WORKER.replace('["python3", "worker.py"]', '["", "worker.py"]'), 5,
     "command[0] (the program) must not be empty"),
    (WORKER.replace('"worker.py"', '"a\\u0000b"'), 5, "command[1] contains a NUL byte"),
    # protocol.
    (WORKER.replace('protocol = "ringcast"\n', ""), 1,
     "upstream 'local': protocol is required (\"ringcast\" or \"codex-app-server\")"),
    (WORKER.replace('"ringcast"', '"lsp"'), 4,
     'protocol must be "ringcast" or "codex-app-server" (got "lsp")'),
    (WORKER.replace('"ringcast"', "1"), 4, "protocol must be a string"),
    # framing.
    (WORKER + 'framing = "lsp"\n', 6, 'framing must be "lines" or "content-length" (got "lsp")'),
    (WORKER + 'framing = 1\n', 6, "framing must be a string"),
    (CODEX + 'framing = "content-length"\n', 6,
     "framing: the codex-app-server protocol is framed by lines only"),
    # env.
    (WORKER + 'env = "A=1"\n', 6, 'env must be a table of strings, e.g. env = { MODEL_DIR = "/models" }'),
    (WORKER + 'env = ["A=1"]\n', 6, 'env must be a table of strings, e.g. env = { MODEL_DIR = "/models" }'),
    (WORKER + 'env = { A = 1 }\n', 6, "env: the value of A must be a string"),
    (WORKER + 'env = { A = { B = "c" } }\n', 6, "env: the value of A must be a string"),
    (WORKER + 'env = { "A=B" = "c" }\n', 6, "env: invalid variable name 'A=B' (empty, or contains '=' or NUL)"),
    (WORKER + 'env = { "" = "c" }\n', 6, "env: invalid variable name '' (empty, or contains '=' or NUL)"),
    (WORKER + 'env = { A = "x\\u0000y" }\n', 6, "env: the value of A contains a NUL byte"),
    # cwd.
    (WORKER + 'cwd = ""\n', 6, "cwd must be a directory path"),
    (WORKER + 'cwd = 1\n', 6, "cwd must be a directory path"),
    (WORKER + 'cwd = "/nonexistent/dir"\n', 6, "cwd: cannot use /nonexistent/dir: No such file or directory"),
    (WORKER + 'cwd = "/dev/null"\n', 6, "cwd: /dev/null is not a directory"),
    # codex-app-server only.
    (CODEX + 'thread_params = "x"\n', 6,
     'thread_params must be a table (merged into the thread/start params), e.g. thread_params = '
     '{ approvalPolicy = "never" }'),
    (CODEX + 'thread_params = [1]\n', 6,
     'thread_params must be a table (merged into the thread/start params), e.g. thread_params = '
     '{ approvalPolicy = "never" }'),
    (WORKER + 'thread_params = { a = 1 }\n', 6, 'thread_params applies to protocol "codex-app-server" only'),
    (CODEX + 'thread_params = { a = nan }\n', 6, "thread_params: nan and inf have no JSON form"),
    (WORKER + 'retain_threads = true\n', 6, 'retain_threads applies to protocol "codex-app-server" only'),
    (CODEX + 'retain_threads = "yes"\n', 6, "retain_threads must be true or false"),
    # Numbers.
    (WORKER + 'restart_backoff_base_ms = 500\nrestart_backoff_cap_ms = 100\n', 1,
     "upstream 'local': restart_backoff_base_ms must not exceed restart_backoff_cap_ms"),
    (WORKER + 'workers = "2"\n', 6, "workers must be an integer"),
    (WORKER + 'workers = 2.0\n', 6, "workers must be an integer"),
    (WORKER + 'workers = -1\n', 6, "workers must be between 1 and 256 (got -1)"),
]
# (key, lowest, highest): one case below and one above each range.
WORKER_RANGES = [
    ("workers", 1, 256), ("max_concurrency_per_worker", 1, 10000), ("queue_max", 0, 1000000),
    ("init_timeout_ms", 1, 3600000), ("ping_interval_ms", 0, 3600000),
    ("ping_timeout_ms", 1, 3600000), ("max_line_bytes", 1024, 268435456),
    ("stop_grace_ms", 0, 600000), ("restart_backoff_base_ms", 1, 3600000),
    ("restart_backoff_cap_ms", 1, 3600000), ("crash_loop_restarts", 1, 1000000),
    ("crash_loop_window_ms", 1, 86400000), ("stderr_lines_per_s", 0, 1000000),
]
for key, lo, hi in WORKER_RANGES:
    for bad in ([lo - 1] if lo > 0 else []) + [hi + 1]:
        WORKER_CASES.append((WORKER + f"{key} = {bad}\n", 6,
                             f"{key} must be between {lo} and {hi} (got {bad})"))

# Every worker key, within range: the file is valid.
GOOD_WORKER = """[[upstreams]]
name = "local"
kind = "jsonrpc"
protocol = "ringcast"
command = ["python3", "-c", "import sys; sys.stdin.read()"]
env = { RC_TEST_WORKER = "1" }
cwd = "/"
framing = "content-length"
workers = 2
max_concurrency_per_worker = 4
queue_max = 10
init_timeout_ms = 60000
ping_interval_ms = 0
ping_timeout_ms = 1000
max_line_bytes = 1024
stop_grace_ms = 100
restart_backoff_base_ms = 1000
restart_backoff_cap_ms = 60000
crash_loop_restarts = 2
crash_loop_window_ms = 1000
stderr_lines_per_s = 0

[[upstreams]]
name = "codex"
kind = "jsonrpc"
protocol = "codex-app-server"
command = ["python3", "-c", "import sys; sys.stdin.read()"]
retain_threads = true
thread_params = { approvalPolicy = "never", config = { n = [1, 2.5] } }

[[models]]
name = "small"
upstream = "local"

[[models]]
name = "agent"
upstream = "codex"
"""


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

    def test_each_worker_mistake_stops_start_up_with_file_line_and_reason(self):
        for text, line, reason in WORKER_CASES:
            with self.subTest(reason=reason):
                with open(self.config, "w") as f:
                    f.write(text)
                out = run_binary(["--config", self.config])
                self.assertNotEqual(out.returncode, 0, out.stderr)
                self.assertIn(f"{self.config}:{line}: {reason}\n", out.stderr)

    def test_a_good_worker_config(self):
        with open(self.config, "w") as f:
            f.write(GOOD_WORKER)
        with Server("--config", self.config) as srv:
            self.assertEqual(get(srv.port, "/healthz").status, 200)
            log = srv.log()
            self.assertIn("upstream 'local': jsonrpc (protocol ringcast), 2 worker(s) running python3", log)
            self.assertIn("upstream 'codex': jsonrpc (protocol codex-app-server), 1 worker(s) running python3", log)
            self.assertNotIn("RC_TEST_WORKER", log)

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
                (WORKER + 'workers = 0\n', "6: workers must be between 1 and 256 (got 0)"),
                (WORKER + 'env = { A = 1 }\n', "6: env: the value of A must be a string"),
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
