"""HTTP/1.1 behaviour of the real server: keep-alive, pipelining, limits, smuggling vectors,
timeouts, concurrency, metrics, and graceful shutdown."""

import os
import resource
import selectors
import signal
import socket
import subprocess
import time
import unittest

from harness import (Server, ResponseReader, assert_error_envelope, connect, get, metric, metric_sum,
                     metrics, request)


class KeepAliveAndPipelining(unittest.TestCase):
    def test_curl_reuses_one_connection(self):
        with Server() as srv:
            out = subprocess.run(
                ["curl", "-sS", "-v", "--max-time", "10", srv.url("/healthz"), srv.url("/healthz")],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout, '{"status":"ok"}{"status":"ok"}')
            self.assertIn("Re-using existing connection", out.stderr)
            self.assertEqual(out.stderr.count("< HTTP/1.1 200 OK"), 2)

    def test_pipelined_requests_answered_in_order(self):
        with Server() as srv, connect(srv.port) as s:
            paths = ["/healthz", "/readyz", "/nope", "/healthz", "/metrics", "/healthz"] * 3
            batch = b"".join(
                f"GET {p} HTTP/1.1\r\nHost: x\r\nx-request-id: req-{i}\r\n\r\n".encode()
                for i, p in enumerate(paths))
            s.sendall(batch)
            reader = ResponseReader(s)
            expected = {"/healthz": 200, "/readyz": 200, "/nope": 404, "/metrics": 200}
            for i, p in enumerate(paths):
                r = reader.read()
                self.assertEqual(r.status, expected[p], p)
                self.assertEqual(r.header("x-request-id"), f"req-{i}")

    def test_pipelined_batch_split_at_every_byte(self):
        # The same two requests, delivered one byte per write.
        with Server() as srv, connect(srv.port) as s:
            batch = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
            for i in range(len(batch)):
                s.sendall(batch[i:i + 1])
                time.sleep(0.001)
            reader = ResponseReader(s)
            self.assertEqual(reader.read().body, b'{"status":"ok"}')
            self.assertEqual(reader.read().body, b'{"status":"ready"}')

    def test_http10_keep_alive_and_close(self):
        with Server() as srv:
            with connect(srv.port) as s:
                s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                reader = ResponseReader(s)
                r = reader.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("connection"), "keep-alive")
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                r = reader.read()
                self.assertEqual(r.header("connection"), "close")
                self.assertTrue(reader.at_eof())

    def test_connection_close_is_honoured(self):
        with Server() as srv, connect(srv.port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reader = ResponseReader(s)
            self.assertEqual(reader.read().header("connection"), "close")
            self.assertTrue(reader.at_eof())

    def test_head_has_length_but_no_body(self):
        with Server() as srv, connect(srv.port) as s:
            s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = ResponseReader(s)
            head = reader.read(head_only=True)
            self.assertEqual(head.status, 200)
            self.assertEqual(head.header("content-length"), "15")
            self.assertEqual(reader.read().body, b'{"status":"ok"}')  # no stray body bytes

    def test_expect_100_continue(self):
        with Server() as srv, connect(srv.port) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            reader = ResponseReader(s)
            interim = reader.read(head_only=True)
            self.assertEqual(interim.status, 100)
            s.sendall(b"hello")
            final = reader.read()
            self.assertEqual(final.status, 405)  # /healthz is GET-only, but the body was read
            self.assertEqual(final.header("allow"), "GET, HEAD")

    def test_chunked_body_across_writes(self):
        with Server() as srv, connect(srv.port) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
            time.sleep(0.05)
            s.sendall(b"lo\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = ResponseReader(s)
            self.assertEqual(reader.read().status, 405)
            self.assertEqual(reader.read().status, 200)

    def test_request_id_generated_or_echoed(self):
        with Server() as srv:
            generated = get(srv.port, "/healthz").header("x-request-id")
            self.assertRegex(generated, r"^[0-9a-f]{16}$")
            self.assertNotEqual(generated, get(srv.port, "/healthz").header("x-request-id"))
            self.assertEqual(get(srv.port, "/healthz", {"X-Request-Id": "abc-123"}).header("x-request-id"),
                             "abc-123")
            # Unacceptable ids (too long) are replaced, not echoed.
            long_id = "a" * 100
            self.assertNotEqual(get(srv.port, "/healthz", {"x-request-id": long_id}).header("x-request-id"),
                                long_id)


class Routing(unittest.TestCase):
    def test_unknown_route_is_404_envelope(self):
        with Server() as srv:
            r = get(srv.port, "/v1/nothing")
            err = assert_error_envelope(self, r, 404)
            self.assertEqual(err["message"], "Invalid URL (GET /v1/nothing)")
            self.assertIsNone(err["param"])
            self.assertIsNone(err["code"])
            self.assertTrue(r.header("x-request-id"))

    def test_wrong_method_is_405_with_allow(self):
        with Server() as srv:
            r = request(srv.port, b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert_error_envelope(self, r, 405, "method_not_allowed")
            self.assertEqual(r.header("allow"), "GET, HEAD")

    def test_readyz_and_healthz(self):
        with Server() as srv:
            self.assertEqual(get(srv.port, "/readyz").json(), {"status": "ready"})
            self.assertEqual(get(srv.port, "/healthz").json(), {"status": "ok"})


class HostileInput(unittest.TestCase):
    """Each smuggling vector and limit: the exact status, the envelope, and a closed connection;
    the server keeps serving everyone else."""

    CASES = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400, "content_length_with_transfer_encoding"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         400, "conflicting_content_length"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_content_length"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400, "bad_content_length"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
         400, "bad_content_length"),
        # RFC 9112 §6.3: chunked not final is 400; a coding we don't implement is 501.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
         "bad_transfer_encoding"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
         "bad_transfer_encoding"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "unsupported_transfer_coding"),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "transfer_encoding_in_http_1_0"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400, "obs_fold"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Space : a\r\n\r\n", 400, "space_before_colon"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad\x01Name: a\r\n\r\n", 400, "bad_header_name"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Val: a\x00b\r\n\r\n", 400, "bad_header_value"),
        (b"GET / HTTP/1.1\r\nHost: x\rX-Injected: 1\r\n\r\n", 400, "bare_cr"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "missing_host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate_host"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
        (b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_chunk"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "body_too_large"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431,
         "header_section_too_large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
         431, "too_many_headers"),
    ]

    def test_each_vector_gets_its_status_and_closes(self):
        with Server() as srv:
            for raw, status, code in self.CASES:
                with self.subTest(code=code), connect(srv.port) as s:
                    s.sendall(raw)
                    reader = ResponseReader(s)
                    r = reader.read()
                    assert_error_envelope(self, r, status, code)
                    self.assertEqual(r.header("connection"), "close")
                    self.assertTrue(reader.at_eof(), "connection must close after a bad request")
            # Nothing else broke.
            self.assertEqual(get(srv.port, "/healthz").status, 200)
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_http_parse_errors_total", kind="obs_fold"),
                             1.0)

    def test_limits_are_configurable(self):
        with Server("--body-bytes-max", "10", "--header-bytes-max", "512") as srv:
            r = request(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
            assert_error_envelope(self, r, 413, "body_too_large")
            r = request(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 600 + b"\r\n\r\n")
            assert_error_envelope(self, r, 431, "header_section_too_large")

    def test_garbage_and_binary_input(self):
        with Server("--header-timeout-ms", "1000") as srv:
            cases = [
                (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), 400),  # TLS
                (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),  # HTTP/2 preface
                (b"\r\n\r\n\r\n", 408),  # empty lines are skipped (RFC 9112 2.2): then a timeout
                (b"\xff" + os.urandom(300), 400),
            ]
            for raw, status in cases:
                with connect(srv.port) as s:
                    s.sendall(raw)
                    r = ResponseReader(s).read()
                    self.assertEqual(r.status, status, raw[:20])
            self.assertEqual(get(srv.port, "/healthz").status, 200)


class Timeouts(unittest.TestCase):
    def test_slowloris_gets_408(self):
        with Server("--header-timeout-ms", "500") as srv, connect(srv.port) as s:
            start = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            # Trickle a header byte every 100 ms: never completes the head.
            reader = ResponseReader(s, timeout=5)
            for ch in b"X-Slow: aaaaaaaaaa":
                try:
                    s.sendall(bytes([ch]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                r, _, _ = __import__("select").select([s], [], [], 0.1)
                if r:
                    break
            r = reader.read()
            elapsed = time.monotonic() - start
            assert_error_envelope(self, r, 408, "request_timeout")
            self.assertEqual(r.header("connection"), "close")
            self.assertGreaterEqual(elapsed, 0.45)
            self.assertTrue(reader.at_eof())
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_timeouts_total", kind="header"), 1.0)

    def test_idle_keepalive_connection_is_closed(self):
        with Server("--idle-timeout-ms", "300") as srv, connect(srv.port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = ResponseReader(s)
            self.assertEqual(reader.read().status, 200)
            self.assertTrue(reader.at_eof(timeout=3))

    def test_silent_connection_is_closed_without_answer(self):
        with Server("--header-timeout-ms", "300") as srv, connect(srv.port) as s:
            self.assertTrue(ResponseReader(s).at_eof(timeout=3))

    def test_timeouts_follow_the_deadline_that_applies_now(self):
        # The connection's timer is armed lazily (it only ever moves earlier): the header
        # deadline's timer firing while the connection is idle must not close it, and the idle
        # deadline that replaced it must still be enforced afterwards.
        with Server("--header-timeout-ms", "200", "--idle-timeout-ms", "900") as srv, \
                connect(srv.port) as s:
            reader = ResponseReader(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(reader.read().status, 200)
            time.sleep(0.5)  # past the first request's header deadline, inside the idle one
            started = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(reader.read().status, 200)
            self.assertTrue(reader.at_eof(timeout=3))
            self.assertGreaterEqual(time.monotonic() - started, 0.85)
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_timeouts_total", kind="idle"), 1.0)
            self.assertEqual(metric_sum(samples, "ringcast_timeouts_total", kind="header"), 0.0)


class Concurrency(unittest.TestCase):
    def test_2000_concurrent_connections_all_served(self):
        n = 2000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < n + 100:
            self.skipTest(f"RLIMIT_NOFILE hard limit {hard} < {n + 100}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 100), hard))
        with Server(shards=2) as srv:
            sel = selectors.DefaultSelector()
            socks = []
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                socks.append(s)
            # All connections are open at once; now every one sends a request.
            for i, s in enumerate(socks):
                s.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nx-request-id: c{i}\r\n\r\n".encode())
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, [i, b""])
            done = 0
            deadline = time.monotonic() + 60
            while done < n and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    data = key.data
                    chunk = key.fileobj.recv(4096)
                    data[1] += chunk
                    if b'{"status":"ok"}' in data[1]:
                        self.assertIn(f"x-request-id: c{data[0]}\r\n".encode(), data[1])
                        sel.unregister(key.fileobj)
                        done += 1
                    elif not chunk:
                        self.fail(f"connection {data[0]} closed early")
            for s in socks:
                s.close()
            self.assertEqual(done, n)
            samples = metrics(srv.port)
            # Both shards took connections (SO_REUSEPORT spreads them).
            for shard in ("0", "1"):
                self.assertGreater(metric(samples, "ringcast_connections_accepted_total", shard=shard), 0)


class Metrics(unittest.TestCase):
    def test_prometheus_text_per_shard_without_a_total_series(self):
        with Server(shards=2) as srv:
            for _ in range(5):
                get(srv.port, "/healthz")
            get(srv.port, "/missing")
            samples = metrics(srv.port)
            # sum() over every series of a family counts each request once: no pre-summed
            # shard="all" series next to the per-shard ones.
            healthz = [v for (name, labels), v in samples.items()
                       if name == "ringcast_requests_total"
                       and {("route", "/healthz"), ("status", "200")} <= labels]
            self.assertEqual(sum(healthz), 5.0)
            per_shard = sum(metric(samples, "ringcast_requests_total", route="/healthz", status="200",
                                   shard=s) or 0 for s in ("0", "1"))
            self.assertEqual(per_shard, 5.0)
            # Process-wide figures, and the upstream and worker families (totals over the
            # shards, labelled by upstream), have no shard label; everything else one per shard.
            unlabelled = {"ringcast_shards", "ringcast_uptime_seconds"}
            for name, labels in samples:
                shard = dict(labels).get("shard")
                if name in unlabelled or "upstream" in dict(labels):
                    self.assertIsNone(shard, name)
                else:
                    self.assertIn(shard, ("0", "1"), (name, labels))
            self.assertEqual(metric(samples, "ringcast_shards"), 2.0)
            self.assertGreaterEqual(metric(samples, "ringcast_uptime_seconds"), 0.0)
            self.assertEqual(metric_sum(samples, "ringcast_requests_total", route="unmatched",
                                        status="404"), 1.0)
            self.assertGreaterEqual(metric_sum(samples, "ringcast_request_duration_seconds_bucket",
                                               le="+Inf"), 6.0)
            # The scrape itself travelled through the mailboxes.
            self.assertGreater(metric_sum(samples, "ringcast_cross_shard_messages_sent_total"), 0)

    def test_metrics_content_type_and_help(self):
        with Server() as srv:
            r = get(srv.port, "/metrics")
            self.assertEqual(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8")
            text = r.body.decode()
            for family in ("ringcast_connections_accepted_total", "ringcast_connections_open",
                           "ringcast_requests_total", "ringcast_received_bytes_total",
                           "ringcast_sent_bytes_total", "ringcast_http_parse_errors_total"):
                self.assertIn(f"# TYPE {family} ", text)


class Shutdown(unittest.TestCase):
    def test_sigterm_answers_in_flight_request_then_exits_0(self):
        srv = Server("--drain-timeout-ms", "5000", "--drain-grace-ms", "0")  # grace: test_drain.py
        try:
            busy = connect(srv.port)
            idle = connect(srv.port)
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            idle_reader = ResponseReader(idle)
            self.assertEqual(idle_reader.read().status, 200)
            busy.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # head not finished yet
            time.sleep(0.1)
            srv.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            # The idle keep-alive connection is closed at once; new connections are refused.
            self.assertTrue(idle_reader.at_eof(timeout=3))
            with self.assertRaises(OSError):
                c = connect(srv.port, timeout=2)
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if ResponseReader(c, timeout=2).read():
                    raise AssertionError("a new connection was served during drain")
            # The request in flight completes and is answered, with Connection: close.
            busy.sendall(b"\r\n")
            reader = ResponseReader(busy)
            r = reader.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("connection"), "close")
            self.assertTrue(reader.at_eof())
            self.assertEqual(srv.proc.wait(10), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_drain_deadline_closes_stragglers(self):
        srv = Server("--drain-timeout-ms", "300")
        try:
            s = connect(srv.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            time.sleep(0.1)
            start = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertLess(time.monotonic() - start, 5)
        finally:
            srv.stop()


class StartUp(unittest.TestCase):
    def _run(self, *args):
        return subprocess.run([os.environ["RINGCAST_BIN"], *args], capture_output=True, text=True,
                              timeout=30)

    def test_help_documents_flags(self):
        if "RINGCAST_BIN" not in os.environ:
            self.skipTest("RINGCAST_BIN unset")
        out = self._run("--help")
        self.assertEqual(out.returncode, 0)
        for flag in ("--listen", "--shards", "--cpus", "--header-timeout-ms", "--idle-timeout-ms",
                     "--write-timeout-ms", "--drain-timeout-ms", "--header-bytes-max",
                     "--body-bytes-max", "--request-line-bytes-max", "--max-connections",
                     "--config"):
            self.assertIn(flag, out.stdout)

    def test_bad_flags_and_config_are_reported(self):
        if "RINGCAST_BIN" not in os.environ:
            self.skipTest("RINGCAST_BIN unset")
        out = self._run("--listen", "nonsense")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("HOST:PORT", out.stderr)
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('listen = "127.0.0.1:0"\n\nheader_timeout_ms = 100\nbogus_key = 3\n')
            path = f.name
        try:
            out = self._run("--config", path)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn(f"{path}:4: unknown key 'bogus_key'", out.stderr)
        finally:
            os.unlink(path)

    def test_config_file_sets_values(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('header_timeout_ms = 300\n')
            path = f.name
        try:
            with Server("--config", path) as srv, connect(srv.port) as s:
                s.sendall(b"GET / HTTP/1.1\r\n")
                r = ResponseReader(s, timeout=5).read()
                self.assertEqual(r.status, 408)
        finally:
            os.unlink(path)


if __name__ == "__main__":
    unittest.main()
