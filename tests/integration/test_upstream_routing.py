"""Model routing to upstreams end to end, with second ringcast processes on mock as the
upstreams: --upstream routes every model and lists the upstream's models, [[models]] routes map
names, and a SIGHUP reload swaps routes while streams in progress finish on the engine they
started with. Skipped while the build has no engine for the "openai" kind."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import RINGCAST_BIN, Server, get, metric_sum, metrics
from openai_client import post_json, sse_events


def openai_kind_available():
    if not RINGCAST_BIN:
        return False
    # A start-up that fails right after the routing table is built (--listen on a bad address)
    # says whether the table was refused for want of an engine.
    out = subprocess.run([RINGCAST_BIN, "--shards", "1", "--no-pin",
                          "--upstream", "http://127.0.0.1:9/v1", "--listen", "bad-address"],
                         capture_output=True, text=True, timeout=30)
    return "has no engine in this build" not in out.stderr


def chat(model, stream=False):
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def completion_tokens(response):
    """usage.completion_tokens of a chat answer, JSON or SSE."""
    if response.header("content-type").startswith("text/event-stream"):
        events = [json.loads(d) for _, d in sse_events(response.body) if d != "[DONE]"]
        for e in events:
            if "error" in e:
                raise AssertionError(f"stream ended with an error: {e}")
        return [e for e in events if e.get("usage")][-1]["usage"]["completion_tokens"]
    return response.json()["usage"]["completion_tokens"]


def listed(port):
    r = get(port, "/v1/models")
    assert r.status == 200, r.status
    return [(m["id"], m["owned_by"]) for m in r.json()["data"]]


def wait_until(what, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@unittest.skipUnless(openai_kind_available(), "no engine for the openai kind in this build")
class UpstreamByName(unittest.TestCase):
    def test_a_host_name_goes_through_the_shards_resolver(self):
        # "localhost" comes from the hosts file (127.0.0.1 and ::1; the upstream listens on the
        # first): the shard's resolver answers, and /metrics counts the lookup.
        with Server("--mock-tokens", "3") as up:
            with Server("--upstream", f"http://localhost:{up.port}/v1") as front:
                r = post_json(front.port, "/v1/chat/completions", chat("ringcast-mock"))
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(completion_tokens(r), 3)
                samples = metrics(front.port)
                self.assertGreaterEqual(metric_sum(samples, "ringcast_resolver_lookups_total"), 1)
                self.assertEqual(metric_sum(samples, "ringcast_resolver_failures_total"), 0)


class UpstreamFlag(unittest.TestCase):
    def test_every_model_goes_upstream_and_models_lists_the_upstreams(self):
        with Server("--model", "alpha", "--model", "beta", "--mock-tokens", "3") as up:
            with Server("--upstream", f"http://127.0.0.1:{up.port}/v1") as front:
                want = [("alpha", "default"), ("beta", "default")]
                wait_until("the upstream's models", lambda: listed(front.port) == want)
                r = get(front.port, "/v1/models/beta")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["owned_by"], "default")
                self.assertEqual(get(front.port, "/v1/models/ringcast-mock").status, 404)
                r = post_json(front.port, "/v1/chat/completions", chat("beta"))
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json()["model"], "beta")
                self.assertEqual(completion_tokens(r), 3)
                # A name the upstream does not serve goes there too: its 404 reaches the client.
                for stream in (False, True):
                    r = post_json(front.port, "/v1/chat/completions", chat("gamma", stream))
                    self.assertEqual(r.status, 404, r.body)
                    self.assertEqual(r.json()["error"]["code"], "model_not_found")

    def test_an_explicit_model_keeps_the_mock_beside_the_upstream(self):
        with Server("--model", "alpha", "--mock-tokens", "3") as up:
            with Server("--upstream", f"http://127.0.0.1:{up.port}/v1", "--model", "local",
                        "--mock-tokens", "5") as front:
                wait_until("the upstream's models",
                           lambda: listed(front.port) == [("local", "ringcast"), ("alpha", "default")])
                r = post_json(front.port, "/v1/chat/completions", chat("local"))
                self.assertEqual(completion_tokens(r), 5)
                r = post_json(front.port, "/v1/chat/completions", chat("alpha"))
                self.assertEqual(completion_tokens(r), 3)


CONFIG = """
[[upstreams]]
name = "a"
kind = "openai"
endpoints = ["http://127.0.0.1:{a}/v1"]
connect_timeout_ms = {timeout}

[[upstreams]]
name = "b"
kind = "openai"
endpoints = ["http://127.0.0.1:{b}/v1"]

[[models]]
name = "m"
upstream = "{route}"
upstream_model = "{upstream_model}"
"""


@unittest.skipUnless(openai_kind_available(), "no engine for the openai kind in this build")
class ReloadRoutes(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = os.path.join(self.dir.name, "ringcast.toml")

    def tearDown(self):
        self.dir.cleanup()

    def write(self, **kw):
        with open(self.config, "w") as f:
            f.write(CONFIG.format(**kw))

    def test_a_reload_swaps_routes_and_streams_in_progress_finish_on_their_engine(self):
        # a: 40 tokens at 20/s (a stream takes about 2 s); b: 5 tokens at once.
        with Server("--model", "alpha", "--mock-tokens", "40", "--mock-tokens-per-s", "20") as a, \
                Server("--model", "beta", "--mock-tokens", "5") as b:
            self.write(a=a.port, b=b.port, timeout=5000, route="a", upstream_model="alpha")
            with Server("--config", self.config, shards=2) as front:
                self.assertEqual(listed(front.port), [("m", "a")])
                result = {}

                def slow_stream():
                    result["r"] = post_json(front.port, "/v1/chat/completions", chat("m", True))

                t = threading.Thread(target=slow_stream)
                t.start()
                wait_until("the stream to start", lambda: (metric_sum(
                    metrics(front.port), "ringcast_engine_running") or 0) >= 1)
                # Upstream a's settings change (its engine is replaced) and m moves to b.
                self.write(a=a.port, b=b.port, timeout=6000, route="b", upstream_model="beta")
                front.send_signal(signal.SIGHUP)
                wait_until("the reload", lambda: "configuration reloaded" in front.log())
                self.assertEqual(listed(front.port), [("m", "b")])
                for _ in range(4):  # both shards
                    r = post_json(front.port, "/v1/chat/completions", chat("m"))
                    self.assertEqual(r.status, 200, r.body)
                    self.assertEqual(r.json()["model"], "m")
                    self.assertEqual(completion_tokens(r), 5)
                t.join(30)
                self.assertFalse(t.is_alive())
                # The stream that started before the reload ran to its end on a's old engine.
                self.assertEqual(result["r"].status, 200)
                self.assertEqual(completion_tokens(result["r"]), 40)
                # A bad file now keeps the routes.
                with open(self.config, "a") as f:
                    f.write('[[models]]\nname = "x"\nupstream = "nope"\n')
                front.send_signal(signal.SIGHUP)
                wait_until("the refusal", lambda: "keeping the running configuration" in front.log())
                self.assertIn(f"{self.config}:17: model 'x': unknown upstream 'nope'", front.log())
                self.assertEqual(listed(front.port), [("m", "b")])


BROKER_CONFIG = """
[[upstreams]]
name = "a"
kind = "openai"
endpoints = ["http://127.0.0.1:{a}/v1"]

[[models]]
name = "{name}"
upstream = "a"
upstream_model = "alpha"
"""


def broker_log(port, user, message_id):
    """The (event, data) pairs of a broker message, once it has ended."""
    query = urllib.parse.urlencode({"user_id": user, "message_id": message_id})
    r = get(port, "/api/v1/stream?" + query, timeout=30)
    assert r.status == 200, r.body
    return [(e, json.loads(d)) for e, d in sse_events(r.body)]


@unittest.skipUnless(openai_kind_available(), "no engine for the openai kind in this build")
class BrokerAcrossReload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = os.path.join(self.dir.name, "ringcast.toml")

    def tearDown(self):
        self.dir.cleanup()

    def test_a_queued_message_whose_route_a_reload_removed_ends_with_an_error(self):
        # Each message streams 60 tokens at 20/s (about 3 s) from the upstream.
        with Server("--model", "alpha", "--mock-tokens", "60", "--mock-tokens-per-s", "20") as a:
            with open(self.config, "w") as f:
                f.write(BROKER_CONFIG.format(a=a.port, name="m"))
            with Server("--config", self.config) as front:
                # Without `model`, a message gets the first route.
                first = post_json(front.port, "/api/v1/message", {"user_id": "u", "message": "x"})
                self.assertEqual(first.status, 202, first.body)
                queued = post_json(front.port, "/api/v1/message",
                                   {"user_id": "u", "message": "y", "model": "m"})
                self.assertEqual(queued.status, 202, queued.body)
                with open(self.config, "w") as f:
                    f.write(BROKER_CONFIG.format(a=a.port, name="other"))
                front.send_signal(signal.SIGHUP)
                wait_until("the reload", lambda: "configuration reloaded" in front.log())
                log = broker_log(front.port, "u", first.json()["message_id"])
                self.assertEqual(log[-1][0], "done", log[-1])
                self.assertEqual(log[-1][1]["usage"]["completion_tokens"], 60)
                log = broker_log(front.port, "u", queued.json()["message_id"])
                self.assertEqual(log[-1][0], "error", log[-1])
                self.assertEqual(log[-1][1]["code"], "model_not_found")
                # The server is fine, and the default model follows the routes.
                r = post_json(front.port, "/api/v1/message",
                              {"user_id": "v", "message": "z", "max_tokens": 2})
                self.assertEqual(r.status, 202, r.body)
                log = broker_log(front.port, "v", r.json()["message_id"])
                self.assertEqual(log[-1][0], "done", log[-1])

    def test_without_a_default_model_a_message_must_name_one(self):
        with Server("--model", "alpha") as a:
            with Server("--upstream", f"http://127.0.0.1:{a.port}/v1") as front:
                r = post_json(front.port, "/api/v1/message", {"user_id": "u", "message": "x"})
                self.assertEqual(r.status, 400, r.body)
                self.assertEqual(r.json()["error"]["message"],
                                 "'model' is required (no default model is configured)")
                r = post_json(front.port, "/api/v1/message",
                              {"user_id": "u", "message": "x", "model": "alpha", "max_tokens": 2})
                self.assertEqual(r.status, 202, r.body)
                log = broker_log(front.port, "u", r.json()["message_id"])
                self.assertEqual(log[-1][0], "done", log[-1])


if __name__ == "__main__":
    unittest.main()
