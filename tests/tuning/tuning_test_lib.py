"""Shared helpers of the tuning tests: paths, running the tools, failing and skipping.

Each test file is a small CLI, `<file> CASE`, registered per case with CTest
(tests/tuning/CMakeLists.txt). A case raises AssertionError to fail and calls skip() to
report "skipped" (exit 77, CTest's SKIP_RETURN_CODE).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TUNING = os.path.join(REPO, "tuning")
FIXTURES = os.path.join(HERE, "fixtures")
EXPECTED = os.path.join(HERE, "expected")
PYTHON = sys.executable
SKIPPED = 77


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def run(args, env=None, check_rc=None):
    """Runs a command; returns CompletedProcess. check_rc asserts the exit status."""
    full_env = dict(os.environ)
    full_env.pop("RINGCAST_SYSROOT", None)
    full_env.update(env or {})
    proc = subprocess.run(args, capture_output=True, text=True, env=full_env, timeout=120,
                          check=False)
    if check_rc is not None:
        assert proc.returncode == check_rc, (
            f"{' '.join(args)}: exit {proc.returncode}, expected {check_rc}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def tool(name):
    return [PYTHON, os.path.join(TUNING, name)]


def audit_json(*args, prefix=(), check_rc=None):
    """Runs audit --json; returns (parsed document, exit status)."""
    proc = run(list(prefix) + tool("audit") + ["--json", *args], check_rc=check_rc)
    try:
        doc = json.loads(proc.stdout)
    except ValueError as e:
        raise AssertionError(f"audit --json printed no JSON ({e}):\n{proc.stdout}\n"
                             f"{proc.stderr}") from None
    return doc, proc.returncode


def statuses(doc):
    return {c["id"]: c["status"] for c in doc["checks"]}


def by_id(doc, check_id):
    for c in doc["checks"]:
        if c["id"] == check_id:
            return c
    raise AssertionError(f"no check {check_id} in the audit output")


def main(cases):
    """Runs the case named by argv[1]; exit 0 pass, 1 fail, 77 skipped."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(f"usage: {sys.argv[0]} {{{','.join(cases)}}}", file=sys.stderr)
        return 2
    try:
        cases[sys.argv[1]]()
    except Skip as e:
        print(f"skipped: {e}")
        return SKIPPED
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print("ok")
    return 0
