"""Clients for the cluster tests, each collecting what it receives on a thread of its own so a test
can watch many of them at once: an SSE reader on a raw socket (it can reconnect with
Last-Event-ID, to another node), curl as an SSE client, a Python `websockets` subscriber, and
publish/enqueue helpers over HTTP and WebSocket. Waits are bounded (wait_for)."""

import asyncio
import json
import socket
import subprocess
import threading
import time
import urllib.parse

import websockets

from harness import ResponseReader, connect, request


def post(port, path, body, headers=None, timeout=15.0):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n{extra}\r\n").encode() + data
    return request(port, raw, timeout)


def publish(port, topic, data, timeout=15.0):
    """POST /v1/topics/{topic}: (status, ack or error dict, Retry-After or None); (None, repr) on
    a transport error (a killed node)."""
    try:
        r = post(port, f"/v1/topics/{topic}", data, timeout=timeout)
    except (OSError, TimeoutError) as e:
        return None, repr(e), None
    return r.status, r.json() if r.body else {}, r.header("retry-after")


def parse_event_id(eid):
    epoch, _, seq = eid.rpartition("-")
    return epoch, int(seq)


class Collector:
    """Events received so far (under a condition variable) and a bounded wait on them."""

    def __init__(self):
        self.events = []
        self.errors = []
        self.cond = threading.Condition()
        self.closed = False

    def _add(self, ev):
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def _fail(self, err):
        with self.cond:
            self.errors.append(err)
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def wait_for(self, predicate, timeout=20.0, what="events"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: timed out waiting for {what}; have "
                                         f"{len(self.events)} events, errors {self.errors}; last "
                                         f"{self.events[-3:]}")
                self.cond.wait(min(remaining, 0.2))
            return list(self.events)

    def messages(self):
        """[(id, data)] of the `message` events."""
        return [(e["id"], e["data"]) for e in self.snapshot() if e["event"] == "message"]


class SseSubscriber(Collector):
    """GET /v1/topics/{topic}/events on a raw socket; events are dicts {id, event, data (parsed)}.
    On a broken stream it reconnects (if `reconnect_to` gives a port) with Last-Event-ID, like an
    EventSource behind a load balancer."""

    def __init__(self, port, topic, name="sse", query="", reconnect_to=None, last_event_id=None):
        super().__init__()
        self.name = name
        self.path = f"/v1/topics/{urllib.parse.quote(topic)}/events{query}"
        self.reconnect_to = reconnect_to
        self.last_id = last_event_id
        self.connects = []  # (port, status)
        self.sock = None
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()

    def _run(self, port):
        while not self.closed:
            try:
                self._stream(port)
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                if self.closed:
                    return
                self._fail(f"{port}: {e!r}")
            port = self.reconnect_to() if self.reconnect_to else None
            if port is None:
                return

    def _stream(self, port):
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock = connect(port, timeout=60)
        self.sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        reader = ResponseReader(self.sock, timeout=60)
        head = reader.read(head_only=True)
        with self.cond:
            self.connects.append((port, head.status))
            self.cond.notify_all()
        if head.status != 200:
            n = int(head.header("content-length") or 0)
            body = reader._read_exact(n, time.monotonic() + 10) if n else b""
            raise ValueError(f"status {head.status} {body!r}")
        text = ""
        while True:
            deadline = time.monotonic() + 3600
            line = reader._read_until(b"\r\n", deadline)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                raise EOFError("stream ended")
            text += reader._read_exact(size, deadline).decode()
            reader._read_exact(2, deadline)
            while "\n\n" in text:
                block, text = text.split("\n\n", 1)
                fields = {}
                for ln in block.split("\n"):
                    if not ln or ln.startswith(":"):
                        continue
                    k, _, v = ln.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    fields[k] = fields[k] + "\n" + v if k in fields else v
                if "data" not in fields:
                    continue
                ev = {"id": fields.get("id"), "event": fields.get("event", "message"),
                      "data": json.loads(fields["data"]), "port": port}
                if ev["id"]:
                    self.last_id = ev["id"]
                self._add(ev)

    def close(self):
        self.closed = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self._thread.join(5)


class CurlSubscriber(Collector):
    """curl -N as the SSE client."""

    def __init__(self, port, topic, name="curl"):
        super().__init__()
        self.name = name
        self.proc = subprocess.Popen(
            ["curl", "-sSN", "--max-time", "170", f"http://127.0.0.1:{port}/v1/topics/{topic}/events"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        fields = {}
        for raw in self.proc.stdout:
            line = raw.decode().rstrip("\n").rstrip("\r")
            if not line:
                if "data" in fields:
                    self._add({"id": fields.get("id"), "event": fields.get("event", "message"),
                               "data": json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v

    def close(self):
        self.closed = True
        self.proc.kill()
        self.proc.wait(5)
        self._thread.join(5)


class WsSubscriber(Collector):
    """Python `websockets`: subscribe {topic, since?} on /ws; events are dicts {id (event id),
    event, data (the publication), raw}. Also publishes over the same connection (publish())."""

    def __init__(self, port, topic, name="ws", since=None):
        super().__init__()
        self.name = name
        self.topic = topic
        self.acks = []
        self.subscribed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._ws = None
        self._thread = threading.Thread(target=self._run, args=(port, since), daemon=True)
        self._thread.start()
        if not self.subscribed.wait(20):
            raise AssertionError(f"{name}: no `subscribed` in 20 s: {self.errors}")
        if self.errors:
            raise AssertionError(f"{name}: {self.errors}")

    def _run(self, port, since):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main(port, since))
        except Exception as e:  # noqa: BLE001 - kept for the test's message
            if not self.closed:
                self._fail(repr(e))
        finally:
            self.subscribed.set()

    async def _main(self, port, since):
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            self._ws = ws
            payload = {"topic": self.topic}
            if since is not None:
                payload["since"] = since
            await ws.send(json.dumps({"id": "sub", "action": "subscribe", "payload": payload}))
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("id") == "sub":
                    if msg["event"] == "subscribed":
                        self.subscribed.set()
                    elif msg["event"] == "message":
                        self._add({"id": msg["data"]["id"], "event": "message",
                                   "data": msg["data"]["data"], "raw": msg})
                    elif msg["event"] == "error":
                        self._fail(msg)
                        self.subscribed.set()
                    else:
                        self._add({"id": msg.get("data", {}).get("id"), "event": msg["event"],
                                   "data": msg.get("data"), "raw": msg})
                else:
                    with self.cond:
                        self.acks.append(msg)
                        self.cond.notify_all()

    def publish(self, topic, items, prefix="p"):
        """Sends one `publish` per item (pipelined), returns the acks in request order."""
        n0 = len(self.acks)
        msgs = [json.dumps({"id": f"{prefix}{k}", "action": "publish", "payload": {"topic": topic, "data": d}})
                for k, d in enumerate(items)]

        async def send():
            for m in msgs:
                await self._ws.send(m)
        asyncio.run_coroutine_threadsafe(send(), self.loop).result(20)
        deadline = time.monotonic() + 30
        with self.cond:
            while len(self.acks) < n0 + len(items):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name}: {len(self.acks) - n0}/{len(items)} publish answers")
                self.cond.wait(0.2)
            got = {a["id"]: a for a in self.acks[n0:]}
        return [got[f"{prefix}{k}"] for k in range(len(items))]

    def close(self):
        self.closed = True
        if self._ws is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._ws.close(), self.loop).result(5)
            except Exception:  # noqa: BLE001 - already closed
                pass
        self._thread.join(5)


def barrier(publish_port, topic, subscribers, timeout=20.0):
    """Publishes probes until every subscriber has received one (bounded): after this, each of
    them receives every publication. Returns the id of the last probe."""
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        k += 1
        status, ack, _ = publish(publish_port, topic, {"probe": k})
        assert status == 200, (status, ack)
        try:
            for s in subscribers:
                s.wait_for(lambda evs: any(isinstance(e["data"], dict) and e["data"].get("probe") == k
                                           for e in evs), timeout=0.5, what="probe")
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            continue
        return ack["id"]


def after(events, event_id):
    """The `message` events strictly after the one with `event_id`."""
    ids = [e["id"] for e in events]
    return [e for e in events[ids.index(event_id) + 1:] if e["event"] == "message"]


# ---- broker ----

def enqueue(port, user, text, timeout=15.0, **kw):
    """POST /api/v1/message: (status, body dict, Retry-After); (None, repr, None) on a transport error."""
    body = {"user_id": user, "message": text}
    body.update(kw)
    try:
        r = post(port, "/api/v1/message", body, timeout=timeout)
    except (OSError, TimeoutError) as e:
        return None, repr(e), None
    return r.status, r.json() if r.body else {}, r.header("retry-after")


def broker_log(port, user, message_id, headers=None, timeout=20.0):
    """The whole lifecycle of a message through GET /api/v1/stream (which ends after the terminal
    event): (status, [(event id int, event, data)])."""
    from harness import get
    path = "/api/v1/stream?" + urllib.parse.urlencode({"user_id": user, "message_id": message_id})
    r = get(port, path, headers, timeout=timeout)
    if r.status != 200:
        return r.status, r.body
    out = []
    for block in r.body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v
        if "data" in fields:
            out.append((int(fields["id"]), fields.get("event"), json.loads(fields["data"])))
    return 200, out


TERMINAL = ("done", "error")


def fnv1a(s):
    h = 0xcbf29ce484222325
    for c in s.encode():
        h ^= c
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class PublishLoop:
    """Publishes {"src", "k"} to a topic on one node, one at a time, until stop(); records every
    answer: accepted (200) ids -> data, and refusals (status, body, Retry-After)."""

    def __init__(self, port_fn, topic, src, interval=0.02):
        self.port_fn, self.topic, self.src, self.interval = port_fn, topic, src, interval
        self.accepted = {}
        self.attempted = {}
        self.refused = []
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        k = 0
        while not self._stop.is_set():
            data = {"src": self.src, "k": k}
            status, body, retry_after = publish(self.port_fn(), self.topic, data)
            with self.cond:
                self.attempted[k] = data
                if status == 200:
                    self.accepted[body["id"]] = data
                else:
                    self.refused.append((status, body, retry_after))
                self.cond.notify_all()
            k += 1
            self._stop.wait(self.interval if status == 200 else 0.1)  # a steady trickle, no spin

    def wait_accepted(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.accepted) < n:
                if time.monotonic() > deadline:
                    raise AssertionError(f"publisher {self.src}: {len(self.accepted)}/{n} accepted; "
                                         f"refusals {self.refused[-3:]}")
                self.cond.wait(0.2)

    def count(self):
        with self.cond:
            return len(self.accepted)

    def stop(self):
        self._stop.set()
        self._thread.join(30)


def check_one_order(test, subs, start, loops, timeout=30.0):
    """Every subscriber got every accepted publication of `loops` after the barrier `start`,
    once, with increasing ids of one epoch, no reset, each source in its order, and all of them
    the same sequence (which may hold publications whose answer was lost, never unknown ones)."""
    accepted = {}
    attempted = set()
    for loop in loops:
        with loop.cond:
            accepted.update(loop.accepted)
            attempted.update((d["src"], d["k"]) for d in loop.attempted.values())
    for s in subs:
        try:
            s.wait_for(lambda evs: set(accepted) <= {e["id"] for e in evs}, timeout,
                       f"all {len(accepted)} accepted publications")
        except AssertionError as e:
            have = {e["id"] for e in s.snapshot()}
            missing = sorted((parse_event_id(i)[1], i, accepted[i]) for i in set(accepted) - have)
            raise AssertionError(f"{e}; missing {len(missing)}: {missing[:10]}") from None
    reference = None
    for s in subs:
        evs = after(s.snapshot(), start)
        test.assertEqual([e for e in s.snapshot() if e["event"] != "message"], [], s.name)
        pairs = [(e["id"], e["data"]) for e in evs]
        ids = [i for i, _ in pairs]
        test.assertEqual(len(ids), len(set(ids)), f"{s.name}: duplicate ids")
        test.assertEqual(len({parse_event_id(i)[0] for i in ids}), 1, f"{s.name}: several epochs")
        seqs = [parse_event_id(i)[1] for i in ids]
        test.assertEqual(seqs, sorted(seqs), f"{s.name}: ids out of order")
        keys = [(d["src"], d["k"]) for _, d in pairs]
        test.assertEqual(len(keys), len(set(keys)), f"{s.name}: a publication delivered twice")
        test.assertLessEqual(set(keys), attempted, f"{s.name}: unknown publications")
        for i, d in pairs:
            if i in accepted:
                test.assertEqual(d, accepted[i], s.name)
        for src in {k[0] for k in keys}:
            ks = [k for x, k in keys if x == src]
            test.assertEqual(ks, sorted(ks), f"{s.name}: source {src} out of order")
        if reference is None:
            reference = pairs
        else:
            test.assertEqual(pairs, reference, f"{s.name} differs from {subs[0].name}")
    return reference
