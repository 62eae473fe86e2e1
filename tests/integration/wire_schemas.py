"""The wire-log fixture of CTest (tests/integration/CMakeLists.txt). The registered tests of the
Python suites that speak /ws, topics, the broker and the ops stream run with
RINGCAST_WIRE_LOG=DIR/<test>.jsonl (wire_log.py: their clients log every /ws message and SSE
event they receive; the file exists as soon as the test's process starts) and require the
fixture `wire_log` (`wire_log_cluster` for the cluster suites, in their own DIR):

    python3 wire_schemas.py --setup DIR               FIXTURES_SETUP: empties DIR
    python3 wire_schemas.py DIR MANIFEST              FIXTURES_CLEANUP: validates every log in DIR

The validation (after every requiring test ran) checks each logged message against docs/schemas
with tests/node/ringcast_schemas.mjs (RINGCAST_NODE) and fails when one has no schema or fails
it. MANIFEST lists the tests of the set, one a line: when every one of them left its log (the
whole set ran), the logs together must also hold each kind of traffic in EXPECTED, or the taps
are broken. When only some ran (`ctest -R one_test`), that check is skipped and said so; the
validation of what was logged is not. A failing suite fails its own CTest tests.
"""

import json
import os
import shutil
import subprocess
import sys

# What a whole set's logs must hold (kind, first path segment), or the taps are broken.
EXPECTED = {("ws", "ws"), ("sse", "v1"), ("sse", "api")}
HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "node", "ringcast_schemas.mjs")


def setup(directory):
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    print(f"wire_schemas: {directory} emptied")
    return 0


def validate(directory, manifest):
    with open(manifest, encoding="utf-8") as f:
        tests = [line.strip() for line in f if line.strip()]
    logs = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith(".jsonl")) if os.path.isdir(directory) else []
    logged = {os.path.basename(p)[:-len(".jsonl")] for p in logs}
    kinds = set()
    for path in logs:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    kinds.add((entry["kind"], entry["route"].split("/")[1]))
                except (ValueError, KeyError, IndexError, AttributeError, TypeError):
                    pass  # the checker reports the line
    print(f"wire_schemas: {len(logs)} log(s) in {directory}; traffic {sorted(kinds)}")
    missing = set()
    absent = [t for t in tests if t not in logged]
    if not absent:
        missing = EXPECTED - kinds
        if missing:
            print(f"wire_schemas: no traffic of {sorted(missing)} in the logs (the taps are broken)")
    else:
        print(f"wire_schemas: partial run ({len(tests) - len(absent)} of {len(tests)} tests logged, "
              f"e.g. {absent[0]} did not): the expected-traffic check is skipped")
    if not logs:
        print("wire_schemas: nothing to validate")
        return 1 if missing else 0
    node = os.environ.get("RINGCAST_NODE", "node")
    check = subprocess.run([node, CHECKER, *logs], cwd=os.path.dirname(CHECKER))
    return 1 if check.returncode or missing else 0


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--setup":
        return setup(args[1])
    if len(args) == 2:
        return validate(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
