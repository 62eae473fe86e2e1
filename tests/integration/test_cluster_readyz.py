"""A node's NATS side as operators see it: /readyz and /metrics against a real nats-server that
is started, killed and restarted under a running ringcast (which is never restarted), and the
credentials the server accepts or refuses."""

import json
import os
import re
import tempfile
import unittest

import harness
from nats_process import NatsServer, nats_request, wait_for
from test_streams import post


def readyz(rc):
    return harness.get(rc.port, "/readyz")


def wait_ready(rc, timeout=20.0):
    return wait_for(lambda: readyz(rc).status == 200, timeout)


def wait_not_ready(rc, reason_part, timeout=20.0):
    """The first 503 whose reason contains `reason_part`, or None."""
    def check():
        r = readyz(rc)
        return r if r.status == 503 and reason_part in r.json().get("reason", "") else None
    return wait_for(check, timeout)


def metrics(rc):
    r = harness.get(rc.port, "/metrics")
    assert r.status == 200
    return r.body.decode()


def sample(text, name, labels):
    m = re.search(r"^" + re.escape(name) + r"\{" + re.escape(labels) + r"\} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Readiness(unittest.TestCase):
    def test_ready_then_nats_killed_then_back_without_restarting_ringcast(self):
        with NatsServer(jetstream=True) as nats, \
                harness.Server("--nats", nats.url, shards=2) as rc:
            self.assertTrue(wait_ready(rc), readyz(rc).body)
            text = metrics(rc)
            for shard in ("0", "1"):
                self.assertEqual(sample(text, "ringcast_nats_connected", f'shard="{shard}"'), 1)
                self.assertEqual(sample(text, "ringcast_cluster_available", f'shard="{shard}"'), 1)
            # Shard 0 ensured the streams: its requests went out and were answered.
            self.assertGreater(sample(text, "ringcast_nats_messages_total",
                                      'direction="out",shard="0"'), 0)
            self.assertGreater(sample(text, "ringcast_nats_bytes_total",
                                      'direction="in",shard="0"'), 0)
            self.assertEqual(sample(text, "ringcast_jetstream_pending_acks", 'shard="0"'), 0)
            self.assertIn('ringcast_jetstream_publish_seconds_count{shard="0"}', text)
            self.assertIn('ringcast_jetstream_errors_total{kind="api",shard="0"}', text)
            # Per shard only: no total series for the cluster families (nor any other).
            self.assertNotIn('shard="all"', text)

            nats.kill()
            r = wait_not_ready(rc, "nats: disconnected")
            self.assertIsNotNone(r, readyz(rc).body)
            self.assertEqual(r.json()["status"], "not_ready")
            self.assertGreaterEqual(int(r.header("Retry-After")), 1)
            self.assertGreaterEqual(int(r.header("retry-after-ms")), 1000)
            self.assertTrue(wait_for(lambda: sample(metrics(rc), "ringcast_nats_connected",
                                                    'shard="1"') == 0, 20))

            nats.start()
            self.assertTrue(wait_ready(rc, 30), readyz(rc).body)
            text = metrics(rc)
            self.assertEqual(sample(text, "ringcast_nats_connected", 'shard="0"'), 1)
            self.assertGreaterEqual(sample(text, "ringcast_nats_reconnects_total", 'shard="0"'), 1)
            self.assertIn("cluster: node", rc.log())

    def test_server_without_jetstream_is_not_ready_and_says_why(self):
        with NatsServer(jetstream=False) as nats, harness.Server("--nats", nats.url) as rc:
            r = wait_not_ready(rc, "JetStream is not enabled")
            self.assertIsNotNone(r, readyz(rc).body)
            self.assertIn("nats: streams not ready", r.json()["reason"])
            self.assertEqual(sample(metrics(rc), "ringcast_nats_connected", 'shard="0"'), 1)
            self.assertEqual(sample(metrics(rc), "ringcast_cluster_available", 'shard="0"'), 0)

    def test_more_replicas_than_servers_is_not_ready_and_says_why(self):
        with NatsServer(jetstream=True) as nats, \
                harness.Server("--nats", nats.url, "--nats-replicas", "3") as rc:
            r = wait_not_ready(rc, "nats: streams not ready: RC_T0")
            self.assertIsNotNone(r, readyz(rc).body)
            self.assertIn("JetStream error", r.json()["reason"])

    def test_second_url_is_used_when_the_first_is_down(self):
        with NatsServer(jetstream=True) as down, NatsServer(jetstream=True) as up:
            down.kill()
            with harness.Server("--nats", f"{down.url},{up.url}") as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)


class SingleNode(unittest.TestCase):
    def test_without_nats_nothing_of_the_cluster_shows(self):
        with harness.Server(shards=2) as rc:
            self.assertEqual(readyz(rc).status, 200)
            text = metrics(rc)
            self.assertNotIn("ringcast_nats_", text)
            self.assertNotIn("ringcast_jetstream_", text)
            self.assertNotIn("ringcast_cluster_", text)
            self.assertNotIn("cluster: node", rc.log())


class Streams(unittest.TestCase):
    def stream(self, nats, name):
        return json.loads(nats_request(nats.port, f"$JS.API.STREAM.INFO.{name}"))

    def test_streams_and_buckets_follow_the_settings_and_are_updated_on_restart(self):
        with NatsServer(jetstream=True) as nats:
            args = ["--nats", nats.url, "--topic-retention", "chat.>=age:1h,msgs:500",
                    "--topic-retention", "logs.*=bytes:1MiB,per_subject:7",
                    "--broker-lease-ms", "3000", "--responses-ttl-s", "120"]
            with harness.Server(*args) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)
            t0, t1, t2 = (self.stream(nats, f"RC_T{i}")["config"] for i in range(3))
            # A topic stream's subjects carry the epoch its description names.
            epochs = [re.fullmatch(r"ringcast epoch ([0-9a-f]{8})", t["description"]).group(1)
                      for t in (t0, t1, t2)]
            self.assertEqual(t0["subjects"], [f"rc.t0.{epochs[0]}.>"])
            self.assertEqual(t0["max_age"], 24 * 3600 * 10**9)
            self.assertEqual(t1["subjects"], [f"rc.t1.{epochs[1]}.>"])
            self.assertEqual((t1["max_age"], t1["max_msgs"]), (3600 * 10**9, 500))
            self.assertEqual((t2["max_bytes"], t2["max_msgs_per_subject"]), (1 << 20, 7))
            self.assertEqual(t2["storage"], "file")
            self.assertEqual(self.stream(nats, "RC_BROKER")["config"]["subjects"], ["rc.bq.>"])
            self.assertEqual(self.stream(nats, "RC_BROKER_LOG")["config"]["subjects"], ["rc.bl.>"])
            self.assertEqual(self.stream(nats, "KV_rc_owners")["config"]["max_age"], 3 * 10**9)
            self.assertEqual(self.stream(nats, "KV_rc_responses")["config"]["max_age"], 120 * 10**9)
            created = self.stream(nats, "RC_T1")["created"]

            # New limits at the next start update the streams in place (same creation time, so the
            # same epoch in event ids).
            args[3] = "chat.>=age:2h"
            with harness.Server(*args) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)
            t1 = self.stream(nats, "RC_T1")
            self.assertEqual(t1["config"]["max_age"], 2 * 3600 * 10**9)
            self.assertEqual(t1["created"], created)
            self.assertEqual(t1["config"]["subjects"], [f"rc.t1.{epochs[1]}.>"])

    def test_a_topic_stream_without_the_epoch_in_its_subjects_gets_it(self):
        # Made by an older ringcast (subjects rc.t0.>): its epoch stays, its subjects follow it.
        with NatsServer(jetstream=True) as nats:
            old = {"name": "RC_T0", "subjects": ["rc.t0.>"], "storage": "file",
                   "description": "ringcast epoch 12ab34cd"}
            made = json.loads(nats_request(nats.port, "$JS.API.STREAM.CREATE.RC_T0",
                                           json.dumps(old).encode()))
            self.assertNotIn("error", made)
            with harness.Server("--nats", nats.url) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)
                r = post(rc.port, "/v1/topics/news", {"i": 1})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json()["id"], "12ab34cd-1")
            config = self.stream(nats, "RC_T0")["config"]
            self.assertEqual(config["subjects"], ["rc.t0.12ab34cd.>"])
            self.assertEqual(config["description"], "ringcast epoch 12ab34cd")


class Credentials(unittest.TestCase):
    def test_token_from_the_environment_accepted_and_a_wrong_one_refused(self):
        with NatsServer(jetstream=True, args=["--auth", "s3cret-token"]) as nats:
            with harness.Server("--nats", nats.url, env={"RINGCAST_NATS_TOKEN": "s3cret-token"}) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)
            with harness.Server("--nats", nats.url, "--nats-token", "wrong") as rc:
                r = wait_not_ready(rc, "uthorization")
                self.assertIsNotNone(r, readyz(rc).body)
                self.assertIn("nats: disconnected", r.json()["reason"])
                self.assertNotIn("wrong", r.body.decode())

    def test_user_and_password_from_a_file_accepted_and_a_wrong_password_refused(self):
        with NatsServer(jetstream=True, args=["--user", "edge", "--pass", "pa55:word"]) as nats, \
                tempfile.TemporaryDirectory() as d:
            good, bad = os.path.join(d, "good"), os.path.join(d, "bad")
            with open(good, "w") as f:
                f.write("edge:pa55:word\n")  # split at the first ':'
            with open(bad, "w") as f:
                f.write("edge:nope\n")
            with harness.Server("--nats", nats.url, "--nats-credentials-file", good) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)
            with harness.Server("--nats", nats.url, "--nats-credentials-file", bad) as rc:
                self.assertIsNotNone(wait_not_ready(rc, "uthorization"), readyz(rc).body)
            env = {"RINGCAST_NATS_USER": "edge", "RINGCAST_NATS_PASSWORD": "pa55:word"}
            with harness.Server("--nats", nats.url, env=env) as rc:
                self.assertTrue(wait_ready(rc), readyz(rc).body)


if __name__ == "__main__":
    unittest.main()
