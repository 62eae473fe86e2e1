"""CTest `integration.wire_schemas`: runs the Python suites that speak /ws, topics and the broker
with RINGCAST_WIRE_LOG set (wire_log.py: their clients log every /ws message and topic/broker SSE
event they receive), then validates the whole log against docs/schemas with
tests/node/ringcast_schemas.mjs. Fails when a suite fails, when the log lacks a kind of traffic
it must have (the taps broke), or when any message has no schema or fails its schema.

    RINGCAST_BIN=... RINGCAST_NODE=node python3 wire_schemas.py [--cluster | SUITE...]

(--cluster: the suites across nodes, NATS JetStream included; CTest integration.wire_schemas_cluster.)
"""

import json
import os
import subprocess
import sys
import tempfile

SUITES = ["test_streams", "test_broker", "test_broker_cancel", "test_drain", "test_cuts",
          "test_bounds", "test_auth", "test_limits", "test_admission", "test_openai",
          "test_operations", "test_api_routes"]
CLUSTER_SUITES = ["test_broker_cluster", "test_topics_cluster"]
# What each set's log must hold (kind, first path segment), or the taps are broken.
EXPECTED = {("ws", "ws"), ("sse", "v1"), ("sse", "api")}
HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "node", "ringcast_schemas.mjs")


def main():
    args = sys.argv[1:]
    suites = CLUSTER_SUITES if args == ["--cluster"] else args or SUITES
    node = os.environ.get("RINGCAST_NODE", "node")
    with tempfile.TemporaryDirectory(prefix="rc-wire-") as tmp:
        log = os.path.join(tmp, "wire.jsonl")
        env = {**os.environ, "RINGCAST_WIRE_LOG": log, "PYTHONDONTWRITEBYTECODE": "1"}
        run = subprocess.run([sys.executable, "-m", "unittest", *suites], cwd=HERE, env=env)
        if not os.path.exists(log):
            print("wire_schemas: the suites logged nothing (the taps are broken)")
            return 1
        with open(log, encoding="utf-8") as f:
            kinds = {(e["kind"], e["route"].split("/")[1]) for e in map(json.loads, f)}
        print(f"wire_schemas: logged {sorted(kinds)}")
        missing = EXPECTED - kinds if suites in (SUITES, CLUSTER_SUITES) else set()
        check = subprocess.run([node, CHECKER, log], cwd=os.path.dirname(CHECKER))
        if missing:
            print(f"wire_schemas: no traffic of {sorted(missing)} in the log (the taps are broken)")
        if run.returncode != 0:
            print("wire_schemas: a suite failed (its log may be incomplete)")
        return 1 if run.returncode or check.returncode or missing else 0


if __name__ == "__main__":
    sys.exit(main())
