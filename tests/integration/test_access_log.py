"""The JSON access log (--access-log): one valid line per request, stream, WebSocket and WebSocket
generation, with the right fields; whole lines from every shard; reopening on SIGUSR1 after a
rename (logrotate); nothing when off; and never an API key."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

from harness import Server, ResponseReader, connect, get, metric, metric_sum, metrics, request

KEY = "sk-accesslog-secret-7f3a"
CHAT = {"model": "ringcast-mock", "messages": [{"role": "user", "content": "hi"}]}
ISO_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return []
    assert data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def by_request_id(lines, rid):
    return [line for line in lines if line["request_id"] == rid]


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def curl(*args):
    out = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                         timeout=40)
    assert out.returncode == 0, out.stderr
    return out.stdout


def post_chat(srv, rid, stream, key=KEY, extra=()):
    body = json.dumps({**CHAT, "stream": stream})
    return curl("-N", srv.url("/v1/chat/completions"), "-H", f"Authorization: Bearer {key}",
                "-H", "Content-Type: application/json", "-H", f"x-request-id: {rid}",
                *extra, "-d", body)


class AccessLog(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "access.log")

    def tearDown(self):
        self.dir.cleanup()

    def check_common(self, line):
        self.assertRegex(line["time"], ISO_RE)
        self.assertRegex(line["client"], r"^127\.0\.0\.1:\d+$")
        for field in ("status", "bytes_in", "bytes_out"):
            self.assertIsInstance(line[field], int, field)
        self.assertGreaterEqual(line["duration_ms"], 0)
        self.assertIn(line["close_reason"], ("complete", "client_closed", "deadline",
                                             "slow_consumer", "drain", "timeout", "error"))

    def test_each_kind_of_request_writes_one_line(self):
        async def websocket_session(srv):
            # One echo connection (a line at its end) and one chat generation over /ws (its own
            # line, plus the /ws connection's line).
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/echo",
                                          extra_headers={"x-request-id": "ws-echo"}) as ws:
                await ws.send("hello")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello")
            async with websockets.connect(
                    f"ws://127.0.0.1:{srv.port}/ws",
                    extra_headers={"x-request-id": "ws-broker",
                                   "Authorization": f"Bearer {KEY}"}) as ws:
                await ws.send(json.dumps({"id": "gen-1", "action": "chat.completion",
                                          "payload": CHAT}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg["event"] in ("chat.complete", "error"):
                        break
                self.assertEqual(msg["event"], "chat.complete", msg)

        with Server("--access-log", self.path, "--echo", "--api-key", KEY) as srv:
            self.assertEqual(get(srv.port, "/healthz", {"x-request-id": "plain-1"}).status, 200)
            self.assertEqual(get(srv.port, "/nope?x=1", {"x-request-id": "missing-1"}).status, 404)
            sse = post_chat(srv, "sse-1", True)
            self.assertIn(b"data: [DONE]", sse)
            post_chat(srv, "json-1", False)
            # Hostile: a body far over the limit is refused before it is read.
            r = request(srv.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 99999999\r\n\r\n")
            self.assertEqual(r.status, 413)
            asyncio.run(websocket_session(srv))
            want = 8
            self.assertTrue(wait_for(lambda: len(read_lines(self.path)) >= want), read_lines(self.path))
        lines = read_lines(self.path)
        self.assertEqual(len(lines), want, lines)
        for line in lines:
            self.check_common(line)

        [plain] = by_request_id(lines, "plain-1")
        self.assertEqual((plain["method"], plain["route"], plain["path"], plain["protocol"],
                          plain["status"], plain["close_reason"]),
                         ("GET", "/healthz", "/healthz", "http", 200, "complete"))
        self.assertNotIn("key", plain)  # /healthz is not an API route: anonymous
        self.assertGreater(plain["bytes_in"], 0)
        self.assertGreater(plain["bytes_out"], len('{"status":"ok"}'))

        [missing] = by_request_id(lines, "missing-1")
        self.assertEqual((missing["route"], missing["path"], missing["status"]),
                         ("unmatched", "/nope", 404))

        [sse_line] = by_request_id(lines, "sse-1")
        self.assertEqual((sse_line["method"], sse_line["route"], sse_line["protocol"],
                          sse_line["status"], sse_line["key"], sse_line["close_reason"]),
                         ("POST", "/v1/chat/completions", "sse", 200, "key-1", "complete"))
        self.assertGreaterEqual(sse_line["bytes_out"], len(sse))
        self.assertLessEqual(sse_line["first_byte_ms"], sse_line["first_token_ms"])
        self.assertLessEqual(sse_line["first_token_ms"], sse_line["duration_ms"])

        [json_line] = by_request_id(lines, "json-1")
        self.assertEqual((json_line["protocol"], json_line["status"]), ("http", 200))
        self.assertIn("first_token_ms", json_line)

        [too_big] = [line for line in lines if line["status"] == 413]
        self.assertEqual((too_big["route"], too_big["protocol"]), ("unmatched", "http"))
        self.assertNotIn("method", too_big)  # a request refused before it was understood

        [echo] = by_request_id(lines, "ws-echo")
        self.assertEqual((echo["method"], echo["route"], echo["protocol"], echo["status"],
                          echo["close_reason"]), ("GET", "/echo", "ws", 101, "client_closed"))
        self.assertGreater(echo["bytes_in"], 0)
        self.assertGreater(echo["bytes_out"], 0)

        broker = by_request_id(lines, "ws-broker")
        self.assertEqual(len(broker), 2, broker)
        [conn_line] = [line for line in broker if line["status"] == 101]
        [gen_line] = [line for line in broker if line["status"] != 101]
        self.assertEqual((conn_line["route"], conn_line["key"]), ("/ws", "key-1"))
        self.assertEqual((gen_line["method"], gen_line["ws_id"], gen_line["protocol"],
                          gen_line["status"], gen_line["close_reason"], gen_line["key"]),
                         ("chat.completion", "gen-1", "ws", 200, "complete", "key-1"))
        self.assertIn("first_token_ms", gen_line)

    def test_responses_websocket_generation(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/v1/responses",
                                          extra_headers={"x-request-id": "resp-ws"}) as ws:
                await ws.send(json.dumps({"type": "response.create", "model": "ringcast-mock",
                                          "input": "hi"}))
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if event["type"] in ("response.completed", "error", "response.failed"):
                        break
                self.assertEqual(event["type"], "response.completed", event)

        with Server("--access-log", self.path) as srv:
            asyncio.run(run(srv))
        lines = by_request_id(read_lines(self.path), "resp-ws")
        self.assertEqual(len(lines), 2, lines)
        [gen] = [line for line in lines if line["status"] != 101]
        self.assertEqual((gen["method"], gen["route"], gen["protocol"], gen["status"],
                          gen["close_reason"]), ("response.create", "/v1/responses (websocket)", "ws", 200,
                                                 "complete"))
        self.assertNotIn("ws_id", gen)
        self.assertLessEqual(gen["first_token_ms"], gen["duration_ms"])

    def test_api_key_never_logged(self):
        async def ws_with_query_key(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?api_key={KEY}") as ws:
                await ws.send(json.dumps({"id": "h", "action": "system.health"}))
                await asyncio.wait_for(ws.recv(), 10)

        with Server("--access-log", self.path, "--api-key", KEY) as srv:
            self.assertEqual(get(srv.port, "/v1/models", {"Authorization": f"Bearer {KEY}"}).status,
                             200)
            self.assertEqual(get(srv.port, "/v1/models", {"x-api-key": KEY}).status, 200)
            # A key in a query never reaches the log, whatever the route does with it.
            get(srv.port, f"/v1/models?api_key={KEY}", {"Authorization": f"Bearer {KEY}"})
            get(srv.port, f"/v1/models?api_key={KEY}")
            # A wrong key is not logged either (it might be a real key of another service).
            self.assertEqual(get(srv.port, "/v1/models", {"Authorization": "Bearer sk-wrong-9"}).status,
                             401)
            asyncio.run(ws_with_query_key(srv))
        with open(self.path, "rb") as f:
            data = f.read()
        self.assertNotIn(KEY.encode(), data)
        self.assertNotIn(b"sk-wrong-9", data)
        self.assertNotIn(b"api_key", data)
        lines = read_lines(self.path)
        self.assertEqual(len(lines), 6, lines)
        self.assertEqual(sum(1 for line in lines if line.get("key") == "key-1"), 4)

    def test_hostile_values_are_escaped(self):
        async def ws_hostile_id(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "a\"b\n\u0001\u00e9\ud83d\ude00", "action": "chat.completion",
                                          "payload": CHAT}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg["event"] in ("chat.complete", "error"):
                        break

        with Server("--access-log", self.path) as srv:
            # Quotes and backslashes in a request id (the parser refuses them in paths, and
            # invalid UTF-8 never gets past the parser or the JSON reader: the unit test covers
            # those).
            r = request(srv.port, b'GET /nope HTTP/1.1\r\nHost: x\r\n'
                                  b'x-request-id: q"uote\\d\r\n\r\n')
            self.assertEqual(r.status, 404)
            asyncio.run(ws_hostile_id(srv))
        lines = read_lines(self.path)  # every line parses as JSON
        [id_line] = [line for line in lines if line.get("path") == "/nope"]
        self.assertEqual(id_line["request_id"], 'q"uote\\d')
        [gen] = [line for line in lines if "ws_id" in line]
        self.assertEqual(gen["ws_id"], "a\"b\n\u0001\u00e9\U0001F600")

    def test_shards_write_whole_lines(self):
        threads_n, per_thread = 16, 30  # 16 connections: all on one shard has odds 2^-15

        def client(t):
            with connect(srv.port) as s:
                reader = ResponseReader(s)
                for i in range(per_thread):
                    # Long ids and paths make lines big, so a torn write would show.
                    s.sendall(f"GET /nope/{'x' * 200}/{t}/{i} HTTP/1.1\r\nHost: x\r\n"
                              f"x-request-id: t{t}-{i}-{'y' * 40}\r\n\r\n".encode())
                    self.assertEqual(reader.read().status, 404)

        with Server("--access-log", self.path, shards=2) as srv:
            workers = [threading.Thread(target=client, args=(t,)) for t in range(threads_n)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(60)
            samples = metrics(srv.port)
        lines = read_lines(self.path)
        ids = sorted(line["request_id"] for line in lines if line["route"] == "unmatched")
        want = sorted(f"t{t}-{i}-{'y' * 40}" for t in range(threads_n) for i in range(per_thread))
        self.assertEqual(ids, want)
        # Both shards served (and logged) some of them.
        for shard in ("0", "1"):
            self.assertGreater(metric(samples, "ringcast_access_log_lines_total", shard=shard), 0)

    def test_sigusr1_reopens_after_rename(self):
        self.check_reopens_after_rename(signal.SIGUSR1)

    def test_sighup_reopens_after_rename(self):
        self.check_reopens_after_rename(signal.SIGHUP)

    def check_reopens_after_rename(self, signo):
        with Server("--access-log", self.path, shards=2) as srv:
            get(srv.port, "/healthz", {"x-request-id": "before"})
            self.assertTrue(wait_for(lambda: read_lines(self.path)))
            os.rename(self.path, self.path + ".1")
            srv.send_signal(signo)
            self.assertTrue(wait_for(lambda: metric_sum(
                metrics(srv.port), "ringcast_access_log_reopens_total") == 2))
            for i in range(6):  # several connections: both shards get some
                get(srv.port, "/healthz", {"x-request-id": f"after-{i}"})
        old = [line["request_id"] for line in read_lines(self.path + ".1")]
        new = [line["request_id"] for line in read_lines(self.path)]
        self.assertIn("before", old)
        self.assertEqual(sorted(r for r in new if r.startswith("after")),
                         [f"after-{i}" for i in range(6)])
        self.assertFalse([r for r in old if r.startswith("after")])

    def test_stream_close_reasons(self):
        # A drain lets streams run to their end: the deadline cuts the 20 s one.
        with Server("--access-log", self.path, "--mock-tokens-per-s", "20",
                    "--mock-tokens", "400", "--drain-timeout-ms", "300") as srv:
            # The client leaves mid-stream.
            with connect(srv.port) as s:
                body = json.dumps({**CHAT, "stream": True}).encode()
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          b"x-request-id: leaves\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                self.assertIn(b"data:", s.recv(65536))
            # The deadline passes mid-stream.
            post_chat(srv, "late", True, extra=("-H", "x-ringcast-timeout-ms: 300"))
            self.assertTrue(wait_for(lambda: len(read_lines(self.path)) >= 2), read_lines(self.path))
            # Shutdown ends a running stream.
            drained = subprocess.Popen(
                ["curl", "-sS", "-N", "--max-time", "20", srv.url("/v1/chat/completions"),
                 "-H", "Content-Type: application/json", "-H", "x-request-id: drained",
                 "-d", json.dumps({**CHAT, "stream": True})], stdout=subprocess.DEVNULL)
            self.assertTrue(wait_for(lambda: metric_sum(
                metrics(srv.port), "ringcast_engine_streams") == 1))
            self.assertEqual(srv.stop(), 0)
            drained.communicate(timeout=20)
        reasons = {line["request_id"]: line["close_reason"] for line in read_lines(self.path)
                   if line["protocol"] == "sse"}
        self.assertEqual(reasons, {"leaves": "client_closed", "late": "deadline",
                                   "drained": "drain"})

    def test_failing_writes_are_counted_and_never_block(self):
        with Server("--access-log", "/dev/full") as srv:
            for _ in range(3):
                self.assertEqual(get(srv.port, "/healthz").status, 200)
            self.assertTrue(wait_for(lambda: metric_sum(
                metrics(srv.port), "ringcast_access_log_write_errors_total") >= 1))
            samples = metrics(srv.port)
            self.assertGreaterEqual(
                metric_sum(samples, "ringcast_access_log_dropped_total"), 3)
        self.assertIn("access log /dev/full: write failed", srv.log())

    def test_full_buffer_drops_lines_instead_of_blocking(self):
        # A pipe nobody reads: the first write stalls, lines pile up to the buffer bound, and
        # the rest are dropped and counted while requests are still answered at once.
        fifo = os.path.join(self.dir.name, "fifo")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            with Server("--access-log", fifo) as srv:
                batch, rounds = 200, 40
                with connect(srv.port) as s:
                    responses = ResponseReader(s)
                    path = "/nope/" + "x" * 200
                    for _ in range(rounds):
                        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * batch)
                        for _ in range(batch):
                            self.assertEqual(responses.read().status, 404)
                samples = metrics(srv.port)
                self.assertGreater(
                    metric_sum(samples, "ringcast_access_log_dropped_total"), 0)
                # Let the server finish its last write at shutdown: read everything.
                stop = threading.Event()

                def drain():
                    while not stop.is_set():
                        try:
                            if not os.read(reader, 1 << 16):
                                time.sleep(0.01)
                        except BlockingIOError:
                            time.sleep(0.01)

                t = threading.Thread(target=drain, daemon=True)
                t.start()
                self.assertEqual(srv.stop(), 0)
                stop.set()
                t.join(5)
        finally:
            os.close(reader)

    def flood(self, port, rounds=2, batch=200):
        """Requests whose access lines are ~400 bytes each: enough to fill a 64 KiB pipe."""
        with connect(port) as s:
            responses = ResponseReader(s)
            path = "/nope/" + "x" * 200
            for _ in range(rounds):
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * batch)
                for _ in range(batch):
                    self.assertEqual(responses.read().status, 404)

    def test_shutdown_does_not_wait_for_a_pipe_nobody_reads(self):
        # The write in flight never completes: a second after the drain, what is left is dropped
        # and the process exits (stop() fails if it does not within its timeout).
        fifo = os.path.join(self.dir.name, "fifo")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            srv = Server("--access-log", fifo)
            try:
                self.flood(srv.port)
            finally:
                self.assertEqual(srv.stop(), 0)
        finally:
            os.close(reader)

    def test_full_nonblocking_pipe_is_retried_without_spinning(self):
        # stdout a non-blocking pipe nobody reads: writes end with EAGAIN and are retried on the
        # flush timer, so the idle server uses (almost) no CPU, and it still exits on SIGTERM.
        r, w = os.pipe()
        os.set_blocking(w, False)
        proc = subprocess.Popen([os.environ["RINGCAST_BIN"], "--listen", "127.0.0.1:0", "--shards",
                                 "1", "--no-pin", "--drain-grace-ms", "0", "--access-log", "-"],
                                stdout=w, stderr=subprocess.PIPE)
        os.close(w)
        try:
            port = None
            for raw in proc.stderr:
                if b"listening on" in raw:
                    port = int(raw.split(b"127.0.0.1:")[1].split()[0])
                    break
            self.assertIsNotNone(port)
            self.flood(port)
            self.assertEqual(get(port, "/healthz").status, 200)

            def cpu_ticks():
                with open(f"/proc/{proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])  # utime + stime

            time.sleep(0.5)  # the last requests' lines reach the full pipe
            before = cpu_ticks()
            time.sleep(2)
            used_s = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
            self.assertLess(used_s, 0.5, "the server spins on a full pipe")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
                os.close(r)
                proc.stderr.close()
        self.assertEqual(proc.returncode, 0)

    def run_with_stdout(self, *args):
        """Runs the server with stdout captured, makes one request; returns stdout and the
        access log line count from /metrics."""
        proc = subprocess.Popen([os.environ["RINGCAST_BIN"], "--listen", "127.0.0.1:0", "--shards",
                                 "1", "--no-pin", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            port = None
            for raw in proc.stderr:
                if b"listening on" in raw:
                    port = int(raw.split(b"127.0.0.1:")[1].split()[0])
                    break
            self.assertIsNotNone(port)
            get(port, "/healthz", {"x-request-id": "to-stdout"})
            count = metric_sum(metrics(port), "ringcast_access_log_lines_total")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0)
        return out, count

    def test_header_timeout_and_drain_deadline(self):
        with Server("--access-log", self.path, "--header-timeout-ms", "300",
                    "--drain-timeout-ms", "300", "--mock-first-token-ms", "60000") as srv:
            with connect(srv.port) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
                self.assertEqual(ResponseReader(s).read().status, 408)
            # A generation still waiting for its first token when the drain deadline passes.
            waiting = subprocess.Popen(
                ["curl", "-sS", "--max-time", "20", srv.url("/v1/chat/completions"),
                 "-H", "Content-Type: application/json", "-H", "x-request-id: cut-off",
                 "-d", json.dumps(CHAT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.assertTrue(wait_for(lambda: metric_sum(
                metrics(srv.port), "ringcast_engine_streams") == 1))
            self.assertEqual(srv.stop(), 0)
            waiting.communicate(timeout=20)
        lines = read_lines(self.path)
        [timed_out] = [line for line in lines if line["status"] == 408]
        self.assertEqual((timed_out["close_reason"], timed_out["route"]), ("timeout", "unmatched"))
        [cut] = by_request_id(lines, "cut-off")
        self.assertEqual((cut["status"], cut["close_reason"]), (503, "drain"))  # answered 503

    def test_off_by_default(self):
        out, count = self.run_with_stdout()
        self.assertEqual(out, b"")
        self.assertEqual(count, 0)

    def test_stdout(self):
        out, count = self.run_with_stdout("--access-log", "-")
        lines = [json.loads(x) for x in out.decode().splitlines()]
        self.assertEqual(count, 1)  # /healthz (the /metrics request is logged after it answers)
        self.assertEqual([line["route"] for line in lines], ["/healthz", "/metrics"])

    def test_config_file_key(self):
        config = os.path.join(self.dir.name, "ringcast.toml")
        with open(config, "w") as f:
            f.write(f'access_log = "{self.path}"\n')
        with Server("--config", config) as srv:
            get(srv.port, "/healthz", {"x-request-id": "from-config"})
        self.assertEqual([line["request_id"] for line in read_lines(self.path)], ["from-config"])

    def test_unwritable_path_fails_at_start(self):
        out = subprocess.run([os.environ["RINGCAST_BIN"], "--listen", "127.0.0.1:0",
                              "--access-log", os.path.join(self.dir.name, "no", "such", "file")],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--access-log: cannot open", out.stderr)


if __name__ == "__main__":
    unittest.main()
