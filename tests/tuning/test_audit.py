#!/usr/bin/python3
"""Tests of tuning/audit: JSON shape, exit status, verdicts on fixture hosts, honesty.

Cases run the real script with /usr/bin/python3. Live cases audit this machine and check
only what holds everywhere; fixture cases (tests/tuning/fixtures) pin exact verdicts.
"""

import os
import re
import shutil
import tempfile

from tuning_test_lib import (FIXTURES, HERE, PYTHON, audit_json, by_id, main, run, skip,
                             statuses, tool)

STATUSES = {"PASS", "WARN", "FAIL", "SKIP"}
CHECK_KEYS = {"id", "status", "observed", "recommended", "why", "fix"}


def validate(doc, rc):
    assert set(doc) == {"tool", "format", "context", "summary", "checks", "exit_code"}, set(doc)
    assert doc["tool"] == "ringcast-audit" and doc["format"] == 1
    for key in ("kernel", "euid", "root", "shard_cpus", "shards", "connections", "nic"):
        assert key in doc["context"], f"context lacks {key}"
    checks = doc["checks"]
    assert len(checks) >= 25, f"only {len(checks)} checks"
    ids = [c["id"] for c in checks]
    assert len(ids) == len(set(ids)), "duplicate check ids"
    for c in checks:
        assert CHECK_KEYS <= set(c) <= CHECK_KEYS | {"sysctl"}, f"{c.get('id')}: keys {set(c)}"
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", c["id"]), c["id"]
        assert c["status"] in STATUSES, f"{c['id']}: status {c['status']}"
        for key in CHECK_KEYS:
            assert isinstance(c[key], str), f"{c['id']}.{key} is not a string"
        for key in ("observed", "recommended", "why"):
            assert c[key].strip(), f"{c['id']}: empty {key}"
        if c["status"] in ("WARN", "FAIL"):
            assert c["fix"].strip(), f"{c['id']}: {c['status']} without a fix"
        else:
            assert c["fix"] == "", f"{c['id']}: {c['status']} with a fix"
    counts = {s: sum(c["status"] == s for c in checks) for s in STATUSES}
    assert doc["summary"] == counts, f"summary {doc['summary']} != {counts}"
    expected_rc = 1 if counts["FAIL"] else 0
    assert doc["exit_code"] == expected_rc == rc, (doc["exit_code"], expected_rc, rc)


def case_json_shape():
    doc, rc = audit_json()
    validate(doc, rc)
    for required in ("kernel.version", "io_uring.sysctl", "io_uring.probe", "io_uring.memlock",
                     "limits.nofile", "net.tcp_notsent_lowat", "cpu.smt", "nic.irq_affinity"):
        by_id(doc, required)


def case_exit_fail():
    # Two billion connections exceed any open-files limit (fs.nr_open caps at ~2^30).
    doc, rc = audit_json("--connections", "2000000000", check_rc=1)
    validate(doc, rc)
    assert by_id(doc, "limits.nofile")["status"] == "FAIL"
    assert run(tool("audit") + ["--connections", "2000000000"]).returncode == 1


def case_exit_usage():
    for args in (["--cpus", "3-1"], ["--cpus", "x"], ["--connections", "0"], ["--bogus"]):
        proc = run(tool("audit") + args, check_rc=2)
        assert "usage" in proc.stderr, proc.stderr


def bigbox(*args, root=None):
    return audit_json("--root", root or os.path.join(FIXTURES, "bigbox"), "--connections", "1",
                      *args)


def case_fixture_bigbox():
    doc, rc = bigbox("--cpus", "2-9")
    validate(doc, rc)
    assert rc == 0, f"exit {rc}"
    expected = {
        "kernel.version": "PASS", "io_uring.sysctl": "PASS", "io_uring.probe": "SKIP",
        "io_uring.features": "SKIP", "fs.nr_open": "PASS", "fs.file_max": "PASS",
        "net.somaxconn": "WARN", "cpu.shard_cpus": "PASS", "cpu.housekeeping": "PASS",
        "cpu.smt": "PASS", "cpu.governor": "WARN", "cpu.isolation": "PASS",
        "numa.nodes": "PASS", "mm.thp": "WARN", "cpu.mitigations": "PASS", "mm.swap": "PASS",
        "irq.irqbalance": "WARN", "nic.queues": "PASS", "nic.irq_affinity": "WARN",
    }
    got = statuses(doc)
    for check_id, status in expected.items():
        assert got[check_id] == status, f"{check_id}: {got[check_id]}, expected {status}"
    for c in doc["checks"]:
        if c.get("sysctl") and c["id"] != "net.somaxconn":
            assert c["status"] == "PASS", f"{c['id']}: {c['status']} ({c['observed']})"
    assert "powersave on 8-9" in by_id(doc, "cpu.governor")["observed"]
    fix = by_id(doc, "nic.irq_affinity")["fix"]
    assert "irq-affinity --nic ens1f0 --cpus 2,3,4,5,6,7,8,9" in fix, fix


def case_fixture_layouts():
    doc, _ = bigbox("--cpus", "2,34")  # SMT siblings
    assert statuses(doc)["cpu.smt"] == "WARN", by_id(doc, "cpu.smt")
    doc, _ = bigbox("--cpus", "14-17")  # across NUMA nodes 0 and 1
    assert statuses(doc)["numa.nodes"] == "WARN", by_id(doc, "numa.nodes")
    doc, _ = bigbox("--cpus", "34-37")  # fewer shards than queues is fine
    assert statuses(doc)["nic.queues"] == "PASS"
    doc, rc = bigbox("--cpus", "62-64")  # CPU 64 does not exist
    assert statuses(doc)["cpu.shard_cpus"] == "FAIL" and rc == 1, (by_id(doc, "cpu.shard_cpus"), rc)
    doc, _ = bigbox("--cpus", "0-63")  # every CPU a shard on a big box
    assert statuses(doc)["cpu.housekeeping"] == "WARN"
    doc, _ = bigbox("--nic", "lo")
    assert statuses(doc)["nic.queues"] == statuses(doc)["nic.irq_affinity"] == "SKIP"


def case_fixture_virtio():
    doc, rc = audit_json("--root", os.path.join(FIXTURES, "virtio"), "--connections", "1")
    validate(doc, rc)
    got = statuses(doc)
    assert got["io_uring.sysctl"] == "FAIL" and rc == 1, (by_id(doc, "io_uring.sysctl"), rc)
    assert got["nic.queues"] == "WARN" and got["nic.irq_affinity"] == "WARN"
    assert doc["context"]["nic"] == "eth0" and doc["context"]["shard_cpus"] == "0-1"


def case_unreadable_is_skip():
    """Values that cannot be read or parsed are SKIP with the reason, never PASS."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        shutil.copytree(os.path.join(FIXTURES, "bigbox"), root, symlinks=True)
        for path in ("proc/sys/net/ipv4/tcp_notsent_lowat", "proc/swaps"):
            os.remove(os.path.join(root, path))
        shutil.rmtree(os.path.join(root, "sys/kernel/mm/transparent_hugepage"))
        for path, garbage in (("proc/sys/net/core/somaxconn", ""),
                              ("proc/sys/net/ipv4/tcp_wmem", "4096 16384"),
                              ("proc/irq/101/smp_affinity_list", "zero")):
            with open(os.path.join(root, path), "w", encoding="ascii") as f:
                f.write(garbage + "\n")
        doc, rc = bigbox("--cpus", "2-9", root=root)
        validate(doc, rc)
        for check_id, reason in (("net.tcp_notsent_lowat", "unreadable:"),
                                 ("mm.swap", "unreadable:"), ("mm.thp", "unreadable:"),
                                 ("net.somaxconn", "unparsable:"),
                                 ("net.tcp_wmem", "unparsable:"),
                                 ("nic.irq_affinity", "unparsable:")):
            c = by_id(doc, check_id)
            assert c["status"] == "SKIP", f"{check_id}: {c['status']} ({c['observed']})"
            assert c["observed"].startswith(reason), f"{check_id}: {c['observed']}"


def case_seccomp_named():
    """A seccomp filter that blocks io_uring_setup is reported as such, with exit 1."""
    doc, _ = audit_json()
    if by_id(doc, "io_uring.probe")["status"] != "PASS":
        skip("io_uring is not available here without a filter either")
    for err in ("EPERM", "ENOSYS"):
        wrapper = [PYTHON, os.path.join(HERE, "seccomp_exec.py"), err]
        proc = run(wrapper + tool("audit") + ["--json"])
        if proc.returncode == 77:
            skip(proc.stderr.strip())
        doc, rc = audit_json(prefix=wrapper)
        validate(doc, rc)
        probe = by_id(doc, "io_uring.probe")
        assert probe["status"] == "FAIL" and rc == 1, probe
        assert err in probe["observed"] and "seccomp" in probe["observed"], probe["observed"]
        assert "io_uring" in probe["fix"], probe["fix"]
        assert by_id(doc, "io_uring.features")["status"] == "SKIP"


if __name__ == "__main__":
    raise SystemExit(main({name[5:]: fn for name, fn in globals().items()
                           if name.startswith("case_")}))
