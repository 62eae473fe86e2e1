"""The dashboard on the real server (docs/operations.md, "Dashboard"): GET /dashboard (the page
embedded in the binary) and GET /dashboard/ops (SSE snapshots), who may open them (admin keys,
HTTP Basic, Bearer, ?api_key=), the snapshots' contents under load, interval_ms, the end of the
stream on drain, many ops clients at once. Clients: curl, Python's http.client (SSE over chunked
HTTP/1.1), Python `websockets`; every snapshot is checked against docs/schemas/ops with
python3-jsonschema."""

import asyncio
import base64
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import jsonschema
import websockets

from harness import RINGCAST_BIN, Server, assert_error_envelope, get, ws_handshake

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCHEMAS = ROOT / "docs" / "schemas" / "ops"
PAGE = ROOT / "server" / "assets" / "dashboard.html"
REALM = 'Basic realm="ringcast dashboard", charset="UTF-8"'


def validator(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


SNAPSHOT = validator("snapshot")
DRAINING = validator("draining")


def basic(key, user="admin"):
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


class OpsClient:
    """GET /dashboard/ops with http.client; reads the SSE events of the chunked response."""

    def __init__(self, port, query="", headers=None, timeout=15.0, rcvbuf=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        if rcvbuf:  # a small receive window: the server's backlog grows soon when we stop reading
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
            self.conn.sock = sock
        self.conn.request("GET", "/dashboard/ops" + query, headers=headers or {})
        self.resp = self.conn.getresponse()

    def next_event(self):
        """The next event as a dict of its fields (comments skipped); EOFError at the end."""
        fields = {}
        while True:
            raw = self.resp.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields[name] + "\n" + value if name in fields else value

    def snapshot(self, test):
        """The next event, which must be a valid snapshot; returns (id, data)."""
        e = self.next_event()
        test.assertEqual(e.get("event"), "snapshot", e)
        data = json.loads(e["data"])
        SNAPSHOT.validate(data)
        return int(e["id"]), data

    def close(self):
        self.conn.close()


def curl(url, *args):
    """(status, headers text, body) of `curl url` with extra arguments."""
    with tempfile.NamedTemporaryFile("r", suffix=".head") as head:
        p = subprocess.run(["curl", "-s", "--max-time", "10", "-D", head.name, *args, url],
                           capture_output=True, timeout=30)
        text = open(head.name).read()
    status = int(text.split()[1]) if text else 0
    return status, text, p.stdout


def write_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
    f.write(text)
    f.close()
    return f.name


class DashboardOff(unittest.TestCase):
    def test_routes_are_404_without_the_flag(self):
        with Server() as srv:
            unknown = get(srv.port, "/nothing-here")
            for path in ("/dashboard", "/dashboard/ops", "/dashboard/ops?interval_ms=250"):
                r = get(srv.port, path)
                err = assert_error_envelope(self, r, 404)
                self.assertEqual(err["code"], unknown.json()["error"]["code"])
                self.assertIn("Invalid URL (GET /dashboard", err["message"])
            # Every method, like any unknown path (not 405 "allowed: GET", not a preflight).
            for method in ("POST", "DELETE", "PUT", "OPTIONS"):
                for path in ("/dashboard", "/dashboard/ops"):
                    status, head, body = curl(srv.url(path), "-X", method,
                                              "-H", "Origin: http://evil.example",
                                              "-H", "Access-Control-Request-Method: GET")
                    self.assertEqual(status, 404, f"{method} {path}: {head}")
                    self.assertNotIn("allow:", head.lower(), f"{method} {path}")


class DashboardPage(unittest.TestCase):
    def test_page_is_the_embedded_file_and_open_without_keys(self):
        with Server("--dashboard") as srv:
            status, head, body = curl(srv.url("/dashboard"))
            self.assertEqual(status, 200, head)
            self.assertIn("content-type: text/html; charset=utf-8", head.lower())
            self.assertEqual(body, PAGE.read_bytes())  # byte for byte what the repository has
            self.assertIn("content-security-policy:", head.lower())
            self.assertIn("connect-src 'self'", head)
            self.assertIn("no-store", head)
            self.assertIn("dashboard enabled without keys", srv.log())

    def test_page_makes_no_external_requests(self):
        text = PAGE.read_text()
        for needle in ("http://", "https://", "//cdn", "<script src", "<link rel=\"stylesheet\""):
            self.assertNotIn(needle, text.replace("http://www.w3.org/2000/svg", ""), needle)


class DashboardAuth(unittest.TestCase):
    """With keys configured only admin keys open the dashboard, however they are presented."""

    def setUp(self):
        self.keys_file = write_file("sk-file-user name=user\nsk-file-admin name=ops admin=yes\n")

    def tearDown(self):
        os.unlink(self.keys_file)

    def check(self, srv, path, status, code=None, headers=None, query=""):
        if path == "/dashboard/ops":
            # A stream that opens stays open: http.client reads the head, then we hang up.
            ops = OpsClient(srv.port, query, headers)
            got = ops.resp.status
            head = "".join(f"{k}: {v}\n" for k, v in ops.resp.getheaders())
            body = b"" if got == 200 else ops.resp.read()
            ops.close()
        else:
            args = []
            for k, v in (headers or {}).items():
                args += ["-H", f"{k}: {v}"]
            got, head, body = curl(srv.url(path + query), *args)
        what = f"{path}{query} {headers}"
        self.assertEqual(got, status, f"{what}: {head}{body[:300]!r}")
        if status == 200:
            ctype = "text/event-stream" if path == "/dashboard/ops" else "text/html"
            self.assertIn(ctype, head.lower(), what)
            return
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], code, what)
        if status == 401 and path.startswith("/dashboard"):
            self.assertIn(f"www-authenticate: {REALM.lower()}", head.lower(), what)
        else:
            self.assertNotIn("www-authenticate", head.lower(), what)

    def test_auth_matrix(self):
        with Server("--dashboard", "--api-key", "sk-user", "--admin-key", "sk-admin",
                    "--api-keys-file", self.keys_file) as srv:
            for path in ("/dashboard", "/dashboard/ops"):
                self.check(srv, path, 401, "missing_api_key")
                self.check(srv, path, 401, "invalid_api_key", {"Authorization": "Bearer sk-nope"})
                self.check(srv, path, 401, "invalid_api_key", {"Authorization": basic("sk-nope")})
                self.check(srv, path, 401, "invalid_api_key", query="?api_key=sk-nope")
                self.check(srv, path, 401, "invalid_api_key",
                           {"Authorization": "Basic !!not-base64!!"})
                self.check(srv, path, 401, "invalid_api_key",
                           {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()})
                for user_key in ("sk-user", "sk-file-user"):
                    self.check(srv, path, 403, "permission_denied",
                               {"Authorization": f"Bearer {user_key}"})
                    self.check(srv, path, 403, "permission_denied",
                               {"Authorization": basic(user_key)})
                    self.check(srv, path, 403, "permission_denied", query=f"?api_key={user_key}")
                for admin_key in ("sk-admin", "sk-file-admin"):
                    self.check(srv, path, 200, headers={"Authorization": f"Bearer {admin_key}"})
                    self.check(srv, path, 200, headers={"Authorization": basic(admin_key)})
                    self.check(srv, path, 200, headers={"Authorization": basic(admin_key, "")})
                    self.check(srv, path, 200, headers={"X-API-Key": admin_key})
                    self.check(srv, path, 200, query=f"?api_key={admin_key}")
            # curl's own Basic support (-u), as a browser's login prompt sends it.
            status, _, _ = curl(srv.url("/dashboard"), "-u", "anyone:sk-admin")
            self.assertEqual(status, 200)

    def test_basic_credentials_work_on_api_routes(self):
        # Basic is accepted wherever Bearer is; an admin key is also an ordinary API key.
        with Server("--api-key", "sk-user", "--admin-key", "sk-admin") as srv:
            for key in ("sk-user", "sk-admin"):
                status, head, _ = curl(srv.url("/v1/models"), "-u", f"me:{key}")
                self.assertEqual(status, 200, head)
            status, _, body = curl(srv.url("/v1/models"), "-u", "me:sk-wrong")
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(body)["error"]["code"], "invalid_api_key")
            # The dashboard stays 404 without --dashboard, whatever the key.
            status, _, _ = curl(srv.url("/dashboard"), "-u", "me:sk-admin")
            self.assertEqual(status, 404)

    def test_basic_credentials_only_from_the_same_origin(self):
        # A browser attaches cached Basic credentials by itself, also to requests another site
        # starts (a form POST, a WebSocket): those must not carry the key's authority.
        with Server("--dashboard", "--api-key", "sk-user", "--admin-key", "sk-admin") as srv:
            own = f"http://127.0.0.1:{srv.port}"
            auth = ["-H", "Authorization: " + basic("sk-admin")]
            post = ["-X", "POST", "-H", "Content-Type: text/plain", "--data", '{"x":1}']
            for extra in (["-H", "Origin: http://evil.example"],
                          ["-H", "Sec-Fetch-Site: cross-site"],
                          ["-H", "Sec-Fetch-Site: same-site", "-H", f"Origin: {own}"]):
                status, head, body = curl(srv.url("/v1/topics/alerts"), *auth, *post, *extra)
                self.assertEqual(status, 403, f"{extra}: {head}{body!r}")
                err = json.loads(body)["error"]
                self.assertEqual(err["code"], "origin_not_allowed")
                self.assertIn("dashboard's own page", err["message"])
            # The same cross-origin request with a key the page's script attached is fine.
            status, head, _ = curl(srv.url("/v1/topics/alerts"), *post,
                                   "-H", "Authorization: Bearer sk-admin",
                                   "-H", "Origin: http://evil.example")
            self.assertEqual(status, 200, head)
            # Same-origin requests (the dashboard's own) and non-browser clients keep working.
            for extra in ([], ["-H", f"Origin: {own}"], ["-H", "Sec-Fetch-Site: same-origin"],
                          ["-H", "Sec-Fetch-Site: none"]):
                status, head, _ = curl(srv.url("/v1/topics/alerts"), *auth, *post, *extra)
                self.assertEqual(status, 200, f"{extra}: {head}")
            status, head, _ = curl(srv.url("/dashboard/ops"), *auth, "-H", f"Origin: {own}",
                                   "--max-time", "1")
            self.assertEqual(status, 200, head)

            # ws_handshake sends "Host: 127.0.0.1" (no port).
            for origin, status in (("http://evil.example", 403), ("http://127.0.0.1", 101)):
                sock, _, r = ws_handshake(srv.port, extra_headers={
                    "Authorization": basic("sk-admin"), "Origin": origin})
                sock.close()
                self.assertEqual(r.status, status, f"{origin}: {r.raw_head}")
            ops = OpsClient(srv.port, headers={"Authorization": "Bearer sk-admin"})
            try:
                _, s = ops.snapshot(self)
                self.assertEqual(s["refusals"]["by_reason"]["origin"], 4)  # 3 POSTs, 1 upgrade
            finally:
                ops.close()

    def test_admin_key_publishes_anywhere(self):
        # "An admin key has no topic limits": it may publish to any topic.
        with Server("--admin-key", "sk-admin") as srv:
            status, _, body = curl(srv.url("/v1/topics/ops.anything"), "-X", "POST",
                                   "-H", "Authorization: Bearer sk-admin",
                                   "-H", "Content-Type: application/json", "-d", '{"x":1}')
            self.assertEqual(status, 200, body)

    def test_keys_without_an_admin_key_lock_the_dashboard(self):
        with Server("--dashboard", "--api-key", "sk-user") as srv:
            self.check(srv, "/dashboard", 403, "permission_denied",
                       {"Authorization": basic("sk-user")})
            self.check(srv, "/dashboard", 401, "missing_api_key")
            self.assertIn("no admin key configured", srv.log())

    def test_admin_key_from_the_environment_and_the_config_file(self):
        with Server("--dashboard", "--api-key", "sk-user",
                    env={"RINGCAST_ADMIN_KEY": "sk-env-admin"}) as srv:
            self.check(srv, "/dashboard", 200, headers={"Authorization": basic("sk-env-admin")})
            self.check(srv, "/dashboard", 403, "permission_denied",
                       {"Authorization": basic("sk-user")})
        config = write_file('dashboard = true\nadmin_keys = ["sk-toml-admin"]\n')
        try:
            with Server("--config", config) as srv:
                self.check(srv, "/dashboard", 200, headers={"Authorization": basic("sk-toml-admin")})
                self.check(srv, "/dashboard", 401, "missing_api_key")
        finally:
            os.unlink(config)

    def test_bad_admin_attribute_stops_the_server(self):
        if not RINGCAST_BIN:
            self.skipTest("RINGCAST_BIN is not set (run through ctest)")
        cases = {
            "sk-a admin=maybe\n": "admin= is yes or no",
            "sk-b admin=yes subscribe=news.*\n": "an admin key has no topic limits",
        }
        for text, message in cases.items():
            path = write_file(text)
            try:
                p = subprocess.run([RINGCAST_BIN, "--listen", "127.0.0.1:0", "--api-keys-file", path],
                                   capture_output=True, timeout=30)
            finally:
                os.unlink(path)
            self.assertNotEqual(p.returncode, 0, text)
            self.assertIn(f"{path}:1: {message}", p.stderr.decode(), text)

    def test_refusals_are_counted(self):
        with Server("--dashboard", "--api-key", "sk-user", "--admin-key", "sk-admin") as srv:
            self.check(srv, "/dashboard", 401, "missing_api_key")
            self.check(srv, "/dashboard", 403, "permission_denied",
                       {"Authorization": basic("sk-user")})
            self.check(srv, "/v1/models", 401, None)  # OpenAI's envelope: code null
            ops = OpsClient(srv.port, headers={"Authorization": basic("sk-admin")})
            try:
                _, s = ops.snapshot(self)
                self.assertEqual(s["refusals"]["by_reason"]["auth"], 2)
                self.assertEqual(s["refusals"]["by_reason"]["permission"], 1)
                self.assertEqual(s["refusals"]["total"], 3)
            finally:
                ops.close()


class OpsStream(unittest.TestCase):
    def test_first_snapshot(self):
        with Server("--dashboard", shards=2) as srv:
            ops = OpsClient(srv.port)
            try:
                self.assertEqual(ops.resp.status, 200)
                self.assertTrue(ops.resp.getheader("content-type").startswith("text/event-stream"))
                n, s = ops.snapshot(self)
                self.assertEqual(n, 1)
                self.assertEqual([x["shard"] for x in s["shards"]], [0, 1])
                self.assertEqual(s["interval_ms"], 1000)
                self.assertFalse(s["draining"])
                self.assertIsNone(s["cluster"])
                self.assertEqual(s["upstreams"], [])
                self.assertEqual(s["workers"], [])
                self.assertTrue(s["node"].endswith(f"-{srv.port}"), s["node"])
                self.assertRegex(s["version"], r"^\d+\.\d+\.\d+")
                self.assertGreater(s["time_ms"], 1_600_000_000_000)
                # First snapshot: no interval yet, so every rate is 0.
                self.assertEqual(s["totals"]["requests_per_s"], 0)
                self.assertEqual(s["first_token_ms"], {"count": 0, "p50": None, "p99": None})
                # This stream is an open SSE connection on one of the shards.
                self.assertEqual(s["totals"]["connections"]["sse"], 1)
                self.assertEqual(sum(x["connections"]["sse"] for x in s["shards"]), 1)
                n2, s2 = ops.snapshot(self)
                self.assertEqual(n2, 2)
                self.assertGreaterEqual(s2["uptime_s"], s["uptime_s"])
            finally:
                ops.close()

    def test_interval(self):
        with Server("--dashboard") as srv:
            ops = OpsClient(srv.port, "?interval_ms=250")
            try:
                ids, times = [], []
                for _ in range(4):
                    n, s = ops.snapshot(self)
                    ids.append(n)
                    times.append(s["time_ms"])  # the server's clock, not when we read it
                    self.assertEqual(s["interval_ms"], 250)
                self.assertEqual(ids, [1, 2, 3, 4])
                # Three intervals of 250 ms took at least ~0.75 s (never early; late is fine).
                self.assertGreaterEqual(times[-1] - times[0], 700)
            finally:
                ops.close()

    def test_bad_interval(self):
        with Server("--dashboard") as srv:
            for value in ("100", "249", "10001", "abc", "", "1000.5", "-5", "99999999999"):
                r = get(srv.port, f"/dashboard/ops?interval_ms={value}")
                err = assert_error_envelope(self, r, 400, "invalid_interval")
                self.assertEqual(err["type"], "invalid_request_error")
                self.assertEqual(err["param"], "interval_ms")
                self.assertIn("interval_ms", err["message"])
            for value in ("250", "10000"):
                ops = OpsClient(srv.port, f"?interval_ms={value}")
                try:
                    self.assertEqual(ops.snapshot(self)[1]["interval_ms"], int(value))
                finally:
                    ops.close()

    def test_numbers_move_under_load(self):
        with Server("--dashboard", "--mock-first-token-ms", "5", "--mock-tokens-per-s", "2000",
                    shards=2) as srv:
            ops = OpsClient(srv.port, "?interval_ms=250")
            stop = threading.Event()
            errors = []

            def http_load():
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                try:
                    while not stop.is_set():
                        c.request("GET", "/v1/models")
                        c.getresponse().read()
                        body = json.dumps({"model": "ringcast-mock", "stream": True, "max_tokens": 4,
                                           "messages": [{"role": "user", "content": "hi"}]})
                        c.request("POST", "/v1/chat/completions", body,
                                  {"Content-Type": "application/json"})
                        c.getresponse().read()
                        c.request("POST", "/v1/topics/load", '{"n":1}',
                                  {"Content-Type": "application/json"})
                        c.getresponse().read()
                        time.sleep(0.01)
                except Exception as e:  # reported by the test below
                    errors.append(repr(e))
                finally:
                    c.close()

            async def ws_load():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    await ws.send(json.dumps({"id": "s1", "action": "subscribe",
                                              "payload": {"topic": "load"}}))
                    while not stop.is_set():
                        await ws.send(json.dumps({"id": "h", "action": "system.health",
                                                  "payload": {}}))
                        try:
                            await asyncio.wait_for(ws.recv(), 0.05)
                        except asyncio.TimeoutError:
                            pass

            ws_thread = threading.Thread(target=lambda: asyncio.run(ws_load()), daemon=True)
            http_thread = threading.Thread(target=http_load, daemon=True)
            ws_thread.start()
            http_thread.start()
            seen = {"requests": False, "deliveries": False, "publications": False,
                    "ws_messages": False, "ws_open": False, "first_token": False}
            try:
                for _ in range(120):  # up to ~30 s at 250 ms; usually a few snapshots
                    _, s = ops.snapshot(self)
                    t = s["totals"]
                    seen["requests"] |= t["requests_per_s"] > 0
                    seen["deliveries"] |= t["deliveries_per_s"] > 0
                    seen["publications"] |= t["publications_per_s"] > 0
                    seen["ws_messages"] |= t["ws_messages_per_s"] > 0
                    seen["ws_open"] |= t["connections"]["ws"] >= 1
                    ft = s["first_token_ms"]
                    if ft["count"] > 0:
                        seen["first_token"] = True
                        self.assertIsNotNone(ft["p50"])
                        self.assertLessEqual(ft["p50"], ft["p99"])
                        self.assertGreater(ft["p99"], 0)
                    # The totals are the sum of the shards.
                    self.assertAlmostEqual(
                        t["requests_per_s"], sum(x["requests_per_s"] for x in s["shards"]), 6)
                    if all(seen.values()):
                        break
            finally:
                stop.set()
                http_thread.join(15)
                ws_thread.join(15)
                ops.close()
            self.assertEqual(errors, [])
            self.assertTrue(all(seen.values()), seen)

    def test_skipped_snapshots_lose_nothing(self):
        # A client that stops reading misses snapshots; the next one it gets covers the whole
        # time since the last one it got, so counts and rates include the skipped intervals.
        with Server("--dashboard", "--send-buffer-bytes", "4096", "--stream-high-bytes", "2048",
                    "--stream-low-bytes", "1024", "--slow-consumer-ms", "600000",
                    "--write-timeout-ms", "600000", "--mock-first-token-ms", "1",
                    "--mock-tokens-per-s", "2000", shards=4) as srv:  # bigger snapshots
            ops = OpsClient(srv.port, "?interval_ms=250", rcvbuf=4096)
            watcher = OpsClient(srv.port, "?interval_ms=250")
            try:
                n, first = ops.snapshot(self)
                self.assertEqual(n, 1)
                # Stop reading `ops` until the server holds a backlog for it...
                for _ in range(240):  # 250 ms each: bounded
                    if watcher.snapshot(self)[1]["totals"]["outbound_rings"] >= 1:
                        break
                else:
                    self.fail("the unread ops stream never held a backlog")
                for _ in range(8):  # ... well above --stream-high-bytes (2 s more of snapshots)
                    watcher.snapshot(self)
                generations = 12
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                for _ in range(generations):
                    body = json.dumps({"model": "ringcast-mock", "stream": True, "max_tokens": 2,
                                       "messages": [{"role": "user", "content": "hi"}]})
                    c.request("POST", "/v1/chat/completions", body,
                              {"Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
                c.close()
                for _ in range(4):  # a second of snapshots this client misses
                    watcher.snapshot(self)
                done_ms = time.time() * 1000
                # Read on: what was queued, then snapshots made after the generations.
                seen = [first]
                for _ in range(400):  # bounded
                    n, s = ops.snapshot(self)
                    seen.append(s)
                    if s["time_ms"] > done_ms + 300:
                        break
                gaps = [b["time_ms"] - a["time_ms"] for a, b in zip(seen, seen[1:])]
                self.assertGreaterEqual(max(gaps), 1000, gaps)  # snapshots were skipped
                counted = sum(s["first_token_ms"]["count"] for s in seen)
                self.assertEqual(counted, generations, [s["first_token_ms"] for s in seen])
                covered = sum(s["totals"]["requests_per_s"] * g / 1000
                              for s, g in zip(seen[1:], gaps))
                self.assertGreater(covered, generations * 0.8)  # the rates cover the gap too
            finally:
                watcher.close()
                ops.close()

    def test_drain_ends_the_stream(self):
        srv = Server("--dashboard", "--drain-timeout-ms", "5000")
        try:
            ops = OpsClient(srv.port, "?interval_ms=5000")
            ops.snapshot(self)
            srv.send_signal(signal.SIGTERM)
            e = ops.next_event()
            self.assertEqual(e.get("event"), "draining", e)
            self.assertNotIn("id", e)
            data = json.loads(e["data"])
            DRAINING.validate(data)
            self.assertGreater(data["retry_after_ms"], 0)
            with self.assertRaises(EOFError):
                ops.next_event()
            ops.close()
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_streams_are_capped(self):
        with Server("--dashboard", "--dashboard-streams-max", "2", shards=2) as srv:
            open_ = [OpsClient(srv.port, "?interval_ms=250") for _ in range(2)]
            try:
                for c in open_:
                    self.assertEqual(c.snapshot(self)[0], 1)
                status, head, body = curl(srv.url("/dashboard/ops"))
                self.assertEqual(status, 503, head)
                self.assertIn("retry-after:", head.lower())
                err = json.loads(body)["error"]
                self.assertEqual(err["code"], "server_overloaded")
                self.assertIn("--dashboard-streams-max 2", err["message"])
                open_.pop().close()
                for _ in range(100):  # the server notices the close soon: bounded
                    ops = OpsClient(srv.port, "?interval_ms=250")
                    if ops.resp.status == 200:
                        break
                    ops.resp.read()
                    ops.close()
                    time.sleep(0.05)
                open_.append(ops)
                self.assertEqual(ops.snapshot(self)[0], 1)
            finally:
                for c in open_:
                    c.close()

    def test_many_ops_clients(self):
        with Server("--dashboard", shards=2) as srv:
            clients = [OpsClient(srv.port, "?interval_ms=250") for _ in range(40)]
            try:
                for c in clients:
                    self.assertEqual([c.snapshot(self)[0] for _ in range(2)], [1, 2])
                # Streams closed at once (some with a collection in flight) leave nothing behind.
                for c in clients[:20]:
                    c.close()
                for _ in range(20):
                    OpsClient(srv.port, "?interval_ms=250").close()
                watcher = OpsClient(srv.port, "?interval_ms=250")
                try:
                    for _ in range(40):
                        _, s = watcher.snapshot(self)
                        if s["totals"]["connections"]["sse"] == 21:  # 20 left open + watcher
                            break
                    self.assertEqual(s["totals"]["connections"]["sse"], 21)
                finally:
                    watcher.close()
                # The streams left open are still served: each gets a snapshot made after the
                # closes (not one buffered before them).
                after_ms = time.time() * 1000
                for c in clients[20:]:
                    for _ in range(200):  # 250 ms each: bounded
                        _, s = c.snapshot(self)
                        if s["time_ms"] > after_ms:
                            break
                    self.assertGreater(s["time_ms"], after_ms)
                self.assertEqual(get(srv.port, "/healthz").status, 200)
            finally:
                for c in clients:
                    c.close()


if __name__ == "__main__":
    unittest.main()
