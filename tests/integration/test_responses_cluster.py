"""Stored responses across nodes (--nats): a response created on one ringcast node is continued
(previous_response_id over HTTP JSON, SSE and the Responses WebSocket mode), retrieved, listed
(input_items) and deleted from another, through the JetStream key-value bucket rc_responses. A real
`nats-server -js` on a kernel-chosen loopback port, two ringcast nodes, raw HTTP and Python
`websockets`; then NATS stopped: 503 nats_unavailable for what is not local, local responses keep
working, and everything recovers when NATS is back."""

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

from harness import Server, assert_error_envelope, get, metrics, request
from openai_client import post_json, sse_events

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"
NATS_LISTEN_RE = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
MODEL = "ringcast-mock"


class NatsServer:
    """One nats-server with JetStream, its store in a temporary directory. start() may be called
    again after stop(): same port, same store."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rc-nats-")
        self.port = None
        self.proc = None

    def start(self, timeout=15.0):
        port = str(self.port) if self.port else "-1"
        self.proc = subprocess.Popen([NATS_BIN, "-js", "-sd", self.dir, "-a", "127.0.0.1", "-p", port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seen = threading.Event()
        lines = []

        def read():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                m = NATS_LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    seen.set()

        threading.Thread(target=read, daemon=True).start()
        if not seen.wait(timeout):
            self.stop()
            raise AssertionError("nats-server did not start:\n" + "".join(lines))

    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def ready(port):
    try:
        return get(port, "/readyz", timeout=5).status == 200
    except OSError:
        return False


def delete(port, path):
    return request(port, f"DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())


def create(port, **kw):
    body = {"model": MODEL, "input": "Tell me about rivers"}
    body.update(kw)
    r = post_json(port, "/v1/responses", body)
    assert r.status == 200, r.body
    return r.json()


def kv_count(port, family, result):
    samples = metrics(port)
    return sum(v for (name, labels), v in samples.items()
               if name == family and ("result", result) in labels)


async def ws_follow_up(port, body):
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/responses") as ws:
        await ws.send(json.dumps({"type": "response.create", **body}))
        events = []
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 30))
            events.append(ev)
            if ev["type"] in ("response.completed", "response.incomplete", "response.failed", "error"):
                return events


class ResponsesCluster(unittest.TestCase):
    def setUp(self):
        self.nats = NatsServer()
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.nodes = []
        for name in ("n1", "n2"):
            node = Server("--nats", self.nats.url(), "--node-id", name, shards=2)
            self.addCleanup(self._stop, node)
            self.nodes.append(node)
        self.n1, self.n2 = (n.port for n in self.nodes)
        for port in (self.n1, self.n2):
            self.wait_usable(port)

    def wait_usable(self, port):
        wait_until(lambda: ready(port), timeout=30, what="node ready")
        # Every shard can ask the bucket: an unknown id is a 404, not a 503.
        for shard in range(2):
            path = f"/v1/responses/resp_{shard}_0000000000000000"
            wait_until(lambda: get(port, path).status == 404, what="bucket reachable")

    def _stop(self, node):
        self.assertEqual(node.stop(), 0, node.log())

    def wait_written(self, port, count):
        wait_until(lambda: kv_count(port, "ringcast_responses_kv_writes_total", "ok") >= count,
                   what=f"{count} bucket writes")

    def test_follow_up_on_another_node_continues_the_conversation(self):
        first = create(self.n1)
        self.wait_written(self.n1, 1)
        # The same follow-up on the node that stored it and on the other one: the conversation is
        # the same, so are the engine's input and its answer.
        local = create(self.n1, input="and lakes?", previous_response_id=first["id"])
        remote = create(self.n2, input="and lakes?", previous_response_id=first["id"])
        fresh = create(self.n2, input="and lakes?")
        self.assertEqual(remote["previous_response_id"], first["id"])
        self.assertEqual(remote["usage"]["input_tokens"], local["usage"]["input_tokens"])
        self.assertGreater(remote["usage"]["input_tokens"], fresh["usage"]["input_tokens"])
        self.assertEqual(remote["output"][0]["content"][0]["text"], local["output"][0]["content"][0]["text"])
        self.assertEqual(kv_count(self.n2, "ringcast_responses_kv_lookups_total", "hit"), 1)
        # The copy is local now: a second follow-up does not ask the bucket again.
        create(self.n2, input="and seas?", previous_response_id=first["id"])
        self.assertEqual(kv_count(self.n2, "ringcast_responses_kv_lookups_total", "hit"), 1)
        # A chain across nodes: the follow-up made on n2 is continued on n1.
        self.wait_written(self.n2, 1)
        third = create(self.n1, input="and oceans?", previous_response_id=remote["id"])
        self.assertGreater(third["usage"]["input_tokens"], remote["usage"]["input_tokens"])

    def test_follow_up_streams_and_websocket_on_another_node(self):
        first = create(self.n1)
        self.wait_written(self.n1, 1)
        r = post_json(self.n2, "/v1/responses", {"model": MODEL, "input": "more", "stream": True,
                                                 "previous_response_id": first["id"]})
        self.assertEqual(r.status, 200, r.body)
        events = sse_events(r.body)
        self.assertEqual(events[-1][0], "response.completed")
        self.assertEqual(json.loads(events[-1][1])["response"]["previous_response_id"], first["id"])
        events = asyncio.run(ws_follow_up(self.n2, {"model": MODEL, "input": "more",
                                                    "previous_response_id": first["id"]}))
        self.assertEqual(events[-1]["type"], "response.completed", events[-1])
        unknown = asyncio.run(ws_follow_up(self.n2, {"model": MODEL, "input": "more",
                                                     "previous_response_id": "resp_0_0123456789abcdef"}))
        self.assertEqual(unknown[-1]["type"], "error")
        self.assertEqual(unknown[-1]["error"]["code"], "previous_response_not_found")

    def test_get_input_items_and_delete_from_another_node(self):
        items = [{"role": "user", "content": "first"},
                 {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": "{\"a\":1}"},
                 {"type": "function_call_output", "call_id": "call_1", "output": "3"}]
        first = create(self.n1, input=items, metadata={"k": "v"}, instructions="be brief", temperature=0.3)
        self.wait_written(self.n1, 1)
        path = "/v1/responses/" + first["id"]
        there = get(self.n2, path)
        self.assertEqual(there.status, 200, there.body)
        self.assertEqual(there.json(), get(self.n1, path).json())
        self.assertEqual(get(self.n2, path + "/input_items?order=asc").json(),
                         get(self.n1, path + "/input_items?order=asc").json())
        # Deleted on n2: gone from the bucket, from n2 and (announced) from n1's own store.
        d = delete(self.n2, path)
        self.assertEqual(d.status, 200, d.body)
        self.assertEqual(d.json(), {"id": first["id"], "object": "response", "deleted": True})
        wait_until(lambda: get(self.n1, path).status == 404, what="n1 to forget the deleted response")
        assert_error_envelope(self, get(self.n2, path), 404)
        assert_error_envelope(self, get(self.n2, path + "/input_items"), 404)
        assert_error_envelope(self, delete(self.n1, path), 404)
        follow = post_json(self.n1, "/v1/responses", {"model": MODEL, "input": "more",
                                                      "previous_response_id": first["id"]})
        assert_error_envelope(self, follow, 400, "previous_response_not_found")
        self.assertGreaterEqual(kv_count(self.n2, "ringcast_responses_kv_deletes_total", "ok"), 1)

    def test_store_false_is_never_written(self):
        misses = kv_count(self.n2, "ringcast_responses_kv_lookups_total", "miss")
        kept = create(self.n1, store=False)
        self.assertEqual(get(self.n1, "/v1/responses/" + kept["id"]).status, 404)
        assert_error_envelope(self, get(self.n2, "/v1/responses/" + kept["id"]), 404)
        self.assertEqual(kv_count(self.n1, "ringcast_responses_kv_writes_total", "ok"), 0)
        self.assertEqual(kv_count(self.n2, "ringcast_responses_kv_lookups_total", "miss"), misses + 1)
        stored = create(self.n1)  # the control: a stored one is written
        self.wait_written(self.n1, 1)
        self.assertEqual(get(self.n2, "/v1/responses/" + stored["id"]).status, 200)

    def test_nats_down_refuses_what_is_not_local_and_recovers(self):
        shared = create(self.n1, input="shared")
        self.wait_written(self.n1, 1)
        self.assertEqual(get(self.n2, "/v1/responses/" + shared["id"]).status, 200)  # n2 has a copy
        self.nats.stop()
        wait_until(lambda: not ready(self.n1) and not ready(self.n2), what="nodes to see NATS gone")
        # Local responses keep working on both nodes.
        local = create(self.n1, input="while down")
        create(self.n1, input="more", previous_response_id=local["id"])
        create(self.n2, input="more", previous_response_id=shared["id"])
        self.assertEqual(get(self.n2, "/v1/responses/" + shared["id"]).status, 200)
        # n1's write of `local` failed, counted; the response was answered all the same.
        wait_until(lambda: kv_count(self.n1, "ringcast_responses_kv_writes_total", "error") >= 1,
                   what="the failed write counted")
        # Not local and the bucket unreachable: 503 nats_unavailable with Retry-After.
        for r in (get(self.n2, "/v1/responses/" + local["id"]),
                  get(self.n2, "/v1/responses/" + local["id"] + "/input_items"),
                  post_json(self.n2, "/v1/responses", {"model": MODEL, "input": "x",
                                                       "previous_response_id": local["id"]}),
                  post_json(self.n2, "/v1/responses", {"model": MODEL, "input": "x", "stream": True,
                                                       "previous_response_id": local["id"]})):
            err = assert_error_envelope(self, r, 503, "nats_unavailable")
            self.assertEqual(err["type"], "server_error")
            self.assertGreaterEqual(int(r.header("retry-after")), 1)
        events = asyncio.run(ws_follow_up(self.n2, {"model": MODEL, "input": "x",
                                                    "previous_response_id": local["id"]}))
        self.assertEqual(events[-1]["type"], "error")
        self.assertEqual(events[-1]["error"]["code"], "nats_unavailable")
        # DELETE needs the bucket (else the entry would outlive it): 503, nothing deleted.
        assert_error_envelope(self, delete(self.n1, "/v1/responses/" + local["id"]), 503, "nats_unavailable")
        self.assertEqual(get(self.n1, "/v1/responses/" + local["id"]).status, 200)
        self.assertGreaterEqual(kv_count(self.n2, "ringcast_responses_kv_lookups_total", "error"), 1)
        # NATS back (same port, same store): no restart of the nodes.
        self.nats.start()
        for port in (self.n1, self.n2):
            self.wait_usable(port)
        again = create(self.n1, input="after")
        self.wait_written(self.n1, 2)
        self.assertEqual(create(self.n2, input="more", previous_response_id=again["id"])["previous_response_id"],
                         again["id"])
        d = delete(self.n1, "/v1/responses/" + local["id"])
        self.assertEqual(d.status, 200, d.body)


class ResponsesSingleNode(unittest.TestCase):
    def test_no_bucket_without_nats(self):
        with Server(shards=2) as srv:
            r = create(srv.port)
            self.assertEqual(get(srv.port, "/v1/responses/" + r["id"]).status, 200)
            d = delete(srv.port, "/v1/responses/" + r["id"])
            self.assertEqual(d.status, 200, d.body)
            self.assertFalse([k for k in metrics(srv.port) if k[0].startswith("ringcast_responses_kv_")])


if __name__ == "__main__":
    unittest.main()
