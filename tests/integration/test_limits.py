"""Limits that hold for the whole process: per-key rates, bursts and stream caps over several
shards (the kernel spreads connections over shards by their source port, so a client's
connections land on different shards), the x-ratelimit-* headers, and per-address budgets for
anonymous clients. Counts over a window are checked against the exact bound (burst + rate x
window) and loose lower bounds; nothing asserts on speed."""

import asyncio
import json
import os
import socket
import tempfile
import time
import unittest

import websockets

from harness import Server, ResponseReader, assert_error_envelope, metric_sum, metrics

MODEL = "ringcast-mock"
SHARDS = 4


def keys_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
    f.write(text)
    f.close()
    return f.name


def chat_body(**kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    body.update(kw)
    return json.dumps(body).encode()


class Conn:
    """A keep-alive HTTP connection (optionally from a given source address)."""

    def __init__(self, port, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.reader = ResponseReader(self.sock)

    def send(self, method, path, headers=None, body=b"", head_only=False):
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if body:
            extra += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode() + body)
        return self.reader.read(head_only=head_only)

    def close(self):
        self.sock.close()


def open_conns(port, n, source=None):
    return [Conn(port, source) for _ in range(n)]


def shards_used(port, names=("ringcast_admission_admitted_total",)):
    """How many shards counted admission decisions (admitted or refused)."""
    samples = metrics(port)
    used = 0
    for s in range(SHARDS):
        total = sum(v for (name, labels), v in samples.items()
                    if name.startswith("ringcast_admission_") and ("shard", str(s)) in labels)
        used += total > 0
    return used


class CrossShardRates(unittest.TestCase):
    def test_burst_is_exact_across_connections_then_refills_at_the_rate(self):
        path = keys_file("sk-a rps=2 burst=3\n")
        try:
            with Server("--api-keys-file", path, shards=SHARDS) as srv:
                auth = {"Authorization": "Bearer sk-a"}
                conns = open_conns(srv.port, 12)
                start = time.monotonic()
                burst = [c.send("GET", "/v1/models", auth) for c in conns]
                elapsed = time.monotonic() - start
                statuses = [r.status for r in burst]
                self.assertEqual(statuses[:3], [200, 200, 200], statuses)
                ok_burst = ok = statuses.count(200)
                # Exact: never more than burst + rate x elapsed, whichever shards served them.
                self.assertLessEqual(ok, 3 + int(2 * elapsed), (statuses, elapsed))
                if elapsed < 0.4:  # (always, unless the machine stalled for a refill)
                    self.assertEqual(statuses[3:], [429] * 9, statuses)
                    self.assertEqual(
                        [r.header("x-ratelimit-remaining-requests") for r in burst[:3]],
                        ["2", "1", "0"])
                for r in burst:
                    self.assertEqual(r.header("x-ratelimit-limit-requests"), "120")
                refused = burst[3]
                if refused.status == 429:
                    assert_error_envelope(self, refused, 429, "rate_limit_exceeded")
                    self.assertEqual(refused.header("x-ratelimit-remaining-requests"), "0")
                    self.assertTrue(0 < int(refused.header("retry-after-ms")) <= 500,
                                    refused.header("retry-after-ms"))
                self.assertGreaterEqual(shards_used(srv.port), 2, "connections all landed on one shard")

                # Refill: over a window, admitted requests follow the rate (2/s), never above it.
                t0 = time.monotonic()
                ok = 0
                i = 0
                while time.monotonic() - t0 < 3.0:
                    r = conns[i % len(conns)].send("GET", "/v1/models", auth)
                    ok += r.status == 200
                    i += 1
                    time.sleep(0.02)
                window = time.monotonic() - t0
                # Since the first request: at most the burst plus what refilled.
                self.assertLessEqual(ok_burst + ok, 3 + 2 * (time.monotonic() - start), (ok, window))
                self.assertGreaterEqual(ok, 3, (ok, window))
                for c in conns:
                    c.close()
        finally:
            os.unlink(path)

    def test_busy_key_with_leases_stays_within_the_bound(self):
        # A fast key: non-home shards hold leases; the total still never exceeds the bucket.
        path = keys_file("sk-f rps=200 burst=50\n")
        try:
            with Server("--api-keys-file", path, shards=SHARDS) as srv:
                auth = {"Authorization": "Bearer sk-f"}
                conns = open_conns(srv.port, 8)
                start = time.monotonic()
                ok = 0
                n = 0
                while time.monotonic() - start < 1.0:
                    for c in conns:
                        ok += c.send("GET", "/v1/models", auth).status == 200
                        n += 1
                elapsed = time.monotonic() - start
                self.assertLessEqual(ok, 50 + 200 * elapsed, (ok, n, elapsed))
                self.assertGreaterEqual(ok, min(n, 50), (ok, n))
                for c in conns:
                    c.close()
        finally:
            os.unlink(path)


    def test_websocket_actions_share_the_key_budget_in_order(self):
        # Every /ws upgrade and action takes a token of the key's one budget, whichever shard
        # the socket landed on; an action whose token must come from the home shard waits for
        # it, and the actions behind it wait their turn.
        async def run(port, sockets):
            socks = [await websockets.connect(f"ws://127.0.0.1:{port}/ws?api_key=sk-r")
                     for _ in range(sockets)]
            try:
                for i, ws in enumerate(socks):
                    for j in range(2):
                        await ws.send(json.dumps({"id": f"s{i}-{j}", "action": "system.health"}))
                out = []
                for ws in socks:
                    got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
                    out.append([(e["id"], e["event"], e.get("error", {}).get("code")) for e in got])
                return out
            finally:
                for ws in socks:
                    await ws.close()

        # Eight sockets, so that they land on one shard of four only once in ~16,000 runs.
        path = keys_file("sk-r rps=0.01 burst=16\n")
        try:
            with Server("--api-keys-file", path, shards=SHARDS) as srv:
                out = asyncio.run(run(srv.port, 8))  # 8 upgrades + 16 actions, 16 tokens
                for i, events in enumerate(out):
                    # (system.health answers asynchronously: answers may come in either order.)
                    got = {e[0]: e[1:] for e in events}
                    self.assertEqual(set(got), {f"s{i}-0", f"s{i}-1"})
                    for event, code in got.values():
                        self.assertIn((event, code), [("system.health", None), ("error", "rate_limited")])
                    # Taken in order: the second action of a socket never got a token its first
                    # was refused (the budget only shrinks during the test).
                    if got[f"s{i}-1"][0] == "system.health":
                        self.assertEqual(got[f"s{i}-0"][0], "system.health", out)
                ok = sum(e[1] == "system.health" for events in out for e in events)
                self.assertEqual(ok, 8, out)
                self.assertGreaterEqual(shards_used(srv.port), 2)
        finally:
            os.unlink(path)


    def test_refused_websocket_is_refused_locally_without_asking_the_home(self):
        # Once the key's home said "no token for 100 s", a socket on another shard refuses its
        # next actions itself: no message to the home shard per action.
        actions = 40

        async def run(port, sockets):
            socks = [await websockets.connect(f"ws://127.0.0.1:{port}/ws?api_key=sk-x")
                     for _ in range(sockets)]
            try:
                before = metric_sum(metrics(port), "ringcast_cross_shard_messages_sent_total")
                for i, ws in enumerate(socks):
                    for j in range(actions):
                        await ws.send(json.dumps({"id": f"s{i}-{j}", "action": "system.health"}))
                for ws in socks:
                    for _ in range(actions):
                        e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        self.assertEqual((e["event"], e["error"]["code"]), ("error", "rate_limited"))
                after = metric_sum(metrics(port), "ringcast_cross_shard_messages_sent_total")
                return after - before
            finally:
                for ws in socks:
                    await ws.close()

        # The 8 upgrades take the 8 tokens; 8 sockets land on one shard of four ~1 run in 16,000.
        path = keys_file("sk-x rps=0.01 burst=8\n")
        try:
            with Server("--api-keys-file", path, shards=SHARDS) as srv:
                sent = asyncio.run(run(srv.port, 8))
                # A scrape and one refusal per socket, against 2 per action (~80 per socket on
                # another shard) when every action asked the home.
                self.assertLess(sent, 100)
        finally:
            os.unlink(path)

    def test_half_closed_clients_waiting_for_a_token_are_answered(self):
        # A client may send its request and shut down its side at once; a request waiting for its
        # key's home shard is still answered.
        path = keys_file("sk-h rps=0.01 burst=12\n")
        try:
            with Server("--api-keys-file", path, shards=SHARDS) as srv:
                conns = open_conns(srv.port, 12)
                for c in conns:
                    c.sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n"
                                   b"Authorization: Bearer sk-h\r\n\r\n")
                    c.sock.shutdown(socket.SHUT_WR)
                self.assertEqual([c.reader.read().status for c in conns], [200] * 12)
                self.assertGreaterEqual(shards_used(srv.port), 2)
                for c in conns:
                    c.close()
        finally:
            os.unlink(path)


class CrossShardStreams(unittest.TestCase):
    def test_one_stream_across_shards(self):
        path = keys_file("sk-s streams=1\n")
        try:
            with Server("--api-keys-file", path, "--mock-tokens-per-s", "20", shards=SHARDS) as srv:
                auth = {"Authorization": "Bearer sk-s"}
                conns = open_conns(srv.port, 8)
                first = conns[0].send("POST", "/v1/chat/completions", auth,
                                      chat_body(stream=True, max_tokens=400), head_only=True)
                self.assertEqual(first.status, 200)
                for c in conns[1:]:
                    r = c.send("POST", "/v1/chat/completions", auth, chat_body(stream=True))
                    assert_error_envelope(self, r, 429, "too_many_streams")
                    self.assertIsNotNone(r.header("retry-after"))
                self.assertGreaterEqual(shards_used(srv.port), 2)
                conns[0].close()  # the stream ends with its connection: the slot comes back
                deadline = time.monotonic() + 10
                got = None
                while time.monotonic() < deadline:
                    for c in conns[1:]:
                        got = c.send("POST", "/v1/chat/completions", auth, chat_body(max_tokens=2))
                        if got.status == 200:
                            break
                    if got.status == 200:
                        break
                    time.sleep(0.05)
                self.assertEqual(got.status, 200, "the slot was not released across shards")
                # Every finished stream gives its slot back (by message when it ran away from the
                # key's home): one after the other, each connection gets its turn.
                for c in conns[1:]:
                    deadline = time.monotonic() + 10
                    while True:
                        r = c.send("POST", "/v1/chat/completions", auth, chat_body(max_tokens=2))
                        if r.status == 200 or time.monotonic() > deadline:
                            break
                        assert_error_envelope(self, r, 429, "too_many_streams")
                        time.sleep(0.02)
                    self.assertEqual(r.status, 200)
                for c in conns[1:]:
                    c.close()
        finally:
            os.unlink(path)

    def test_two_streams_on_one_websocket(self):
        async def one_socket(port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws?api_key=sk-w") as ws:
                payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                           "max_tokens": 400}
                for i in range(3):
                    await ws.send(json.dumps({"id": f"c{i}", "action": "chat.completion",
                                              "payload": payload}))
                started, refused = set(), {}
                deadline = time.monotonic() + 10
                while len(started) + len(refused) < 3 and time.monotonic() < deadline:
                    e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if e["event"] == "error":
                        refused[e["id"]] = e["error"]["code"]
                    elif e["event"] == "chat.delta":
                        started.add(e["id"])
                return started, refused

        path = keys_file("sk-w streams=2\n")
        try:
            with Server("--api-keys-file", path, "--mock-tokens-per-s", "20", shards=SHARDS) as srv:
                # Several sockets, one after the other, so some land away from the key's home.
                for _ in range(8):  # all on one shard of four: once in ~16,000 runs
                    started, refused = asyncio.run(one_socket(srv.port))
                    self.assertEqual(started, {"c0", "c1"})
                    self.assertEqual(refused, {"c2": "too_many_streams"})
                    # The socket closed: both slots come back before the next one's streams.
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        if metric_sum(metrics(srv.port), "ringcast_engine_streams") == 0:
                            break
                        time.sleep(0.05)
                    time.sleep(0.1)
                self.assertGreaterEqual(shards_used(srv.port), 2)
        finally:
            os.unlink(path)


class AnonymousAddresses(unittest.TestCase):
    def test_each_address_has_its_own_bucket(self):
        with Server("--anon-rate-limit-rps", "0.1", "--anon-rate-limit-burst", "2",
                    shards=2) as srv:
            a = open_conns(srv.port, 4, source="127.0.0.2")
            seen = [c.send("GET", "/v1/models") for c in a]
            self.assertEqual([r.status for r in seen], [200, 200, 429, 429])
            self.assertEqual(seen[0].header("x-ratelimit-limit-requests"), "6")
            b = open_conns(srv.port, 3, source="127.0.0.3")
            self.assertEqual([c.send("GET", "/v1/models").status for c in b], [200, 200, 429])
            for c in a + b:
                c.close()

    def test_streams_per_address(self):
        with Server("--anon-streams-max", "1", "--mock-tokens-per-s", "20", shards=2) as srv:
            a = open_conns(srv.port, 4, source="127.0.0.2")
            self.assertEqual(a[0].send("POST", "/v1/chat/completions", body=chat_body(
                stream=True, max_tokens=400), head_only=True).status, 200)
            for c in a[1:]:
                r = c.send("POST", "/v1/chat/completions", body=chat_body(stream=True))
                assert_error_envelope(self, r, 429, "too_many_streams")
            # No rate limit was set: no x-ratelimit headers.
            self.assertIsNone(r.header("x-ratelimit-limit-requests"))
            b = Conn(srv.port, source="127.0.0.3")
            self.assertEqual(b.send("POST", "/v1/chat/completions",
                                    body=chat_body(max_tokens=2)).status, 200)
            for c in a + [b]:
                c.close()

    def test_without_anon_flags_anonymous_clients_share_one_budget(self):
        with Server("--rate-limit-rps", "0.1", "--rate-limit-burst", "2", shards=2) as srv:
            a = Conn(srv.port, source="127.0.0.2")
            b = Conn(srv.port, source="127.0.0.3")
            self.assertEqual([a.send("GET", "/v1/models").status, b.send("GET", "/v1/models").status,
                              a.send("GET", "/v1/models").status, b.send("GET", "/v1/models").status],
                             [200, 200, 429, 429])
            a.close()
            b.close()


if __name__ == "__main__":
    unittest.main()
