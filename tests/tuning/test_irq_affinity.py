#!/usr/bin/python3
"""Tests of tuning/irq-affinity against the fixture trees in tests/tuning/fixtures.

The dry-run plans are compared with reviewed golden files in tests/tuning/expected/
(one per layout: as many shards as queues, more, fewer, and a single-queue virtio NIC).
Applying a plan to a copy of a fixture must write exactly the planned values and turn
the audit's nic.irq_affinity check from WARN to PASS.
"""

import os
import re
import shutil
import tempfile

from tuning_test_lib import (EXPECTED, FIXTURES, audit_json, by_id, main, run, skip, tool)

LAYOUTS = {
    # golden name: (fixture, nic, --cpus or None for the default)
    "bigbox-2-9": ("bigbox", "ens1f0", "2-9"),     # 8 shards, 8 queues: one to one
    "bigbox-2-13": ("bigbox", "ens1f0", "2-13"),   # 12 shards, 8 queues: RPS for 4
    "bigbox-34-37": ("bigbox", "ens1f0", "34-37"),  # 4 shards, 8 queues; masks past 32 bits
    "virtio": ("virtio", "eth0", None),            # 2 shards, 1 queue pair, no XPS
}


def snapshot(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with open(path, encoding="ascii") as f:
                    files[os.path.relpath(path, root)] = f.read()
    return files


def copy_fixture(tmp, fixture):
    root = os.path.join(tmp, fixture)
    shutil.copytree(os.path.join(FIXTURES, fixture), root, symlinks=True)
    return root


def irq_affinity(root, nic, cpus, *extra, check_rc=None):
    args = tool("irq-affinity") + ["--nic", nic, *extra]
    if cpus:
        args += ["--cpus", cpus]
    # Exercise both ways of naming the root.
    if cpus:
        return run(args + ["--root", root], check_rc=check_rc)
    return run(args, env={"RINGCAST_SYSROOT": root}, check_rc=check_rc)


def case_dry_run():
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fixture, nic, cpus) in LAYOUTS.items():
            root = copy_fixture(tmp, fixture)
            before = snapshot(root)
            proc = irq_affinity(root, nic, cpus, "--dry-run", check_rc=0)
            with open(os.path.join(EXPECTED, f"{name}.txt"), encoding="ascii") as f:
                golden = f.read()
            assert proc.stdout == golden, f"{name}: plan differs from expected/{name}.txt:\n" \
                                          f"{proc.stdout}"
            assert snapshot(root) == before, f"{name}: --dry-run changed files"
            shutil.rmtree(root)


def planned_writes(stdout):
    writes = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"echo (\S+) > (\S+)  # .*", line)
        assert m, f"not a plan line: {line}"
        writes[m.group(2)] = m.group(1)
    return writes


def case_apply_then_audit():
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fixture, nic, cpus) in LAYOUTS.items():
            root = copy_fixture(tmp, fixture)
            audit_args = ["--root", root, "--nic", nic, "--connections", "1"]
            audit_args += ["--cpus", cpus] if cpus else []
            doc, _ = audit_json(*audit_args)
            assert by_id(doc, "nic.irq_affinity")["status"] == "WARN", name
            plan = planned_writes(irq_affinity(root, nic, cpus, "--dry-run", check_rc=0).stdout)
            proc = irq_affinity(root, nic, cpus, check_rc=0)
            assert proc.stdout.count("wrote ") == len(plan), proc.stdout
            for path, value in plan.items():
                with open(os.path.join(root, path.lstrip("/")), encoding="ascii") as f:
                    assert f.read().strip() == value, f"{name}: {path}"
            doc, _ = audit_json(*audit_args)
            check = by_id(doc, "nic.irq_affinity")
            assert check["status"] == "PASS", f"{name}: {check}"
            shutil.rmtree(root)


def expect_refusal(args, message, env=None):
    proc = run(args, env=env, check_rc=2)
    assert message in proc.stderr, f"expected '{message}' in:\n{proc.stderr}"


def case_refusals():
    bigbox = ["--root", os.path.join(FIXTURES, "bigbox"), "--dry-run"]
    ia = tool("irq-affinity")
    expect_refusal(ia + bigbox + ["--nic", "eth9"], "no network interface named 'eth9'")
    expect_refusal(ia + bigbox + ["--nic", "lo"], "'lo' is a virtual interface")
    expect_refusal(ia + bigbox + ["--nic", "ens1f0", "--cpus", "60-65"], "64-65 are not online")
    expect_refusal(ia + bigbox + ["--nic", "ens1f0", "--cpus", "2,3,2"], "repeats a CPU")
    expect_refusal(ia + bigbox + ["--nic", "ens1f0", "--cpus", "5-2"], "bad CPU range")
    expect_refusal(ia + bigbox, "the following arguments are required: --nic")


def case_refuses_non_root():
    """Without --dry-run on the live system, a non-root user is refused before any write."""
    prefix = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            skip("running as root and setpriv is missing")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    proc = run(prefix + tool("irq-affinity") + ["--nic", "eth0", "--cpus", "0"])
    if proc.returncode != 2 and "Permission denied" in proc.stderr:
        skip("the source tree is not readable by the unprivileged user")
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr}"
    assert "needs root" in proc.stderr, proc.stderr


if __name__ == "__main__":
    raise SystemExit(main({name[5:]: fn for name, fn in globals().items()
                           if name.startswith("case_")}))
