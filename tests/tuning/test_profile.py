#!/usr/bin/python3
"""Tests of the static deployment files: the sysctl profile, the systemd unit, the
example config, and that they agree with each other and with the audit.
"""

import os
import re
import shutil
import subprocess
import tempfile

from tuning_test_lib import FIXTURES, TUNING, audit_json, main, run, skip

CONF = os.path.join(TUNING, "sysctl.d", "90-ringcast.conf")
UNIT = os.path.join(TUNING, "ringcast.service")
TOML = os.path.join(TUNING, "ringcast.toml.example")
TOML_KEYS = {"listen", "shards", "cpus", "max_connections", "header_timeout_ms",
             "idle_timeout_ms", "write_timeout_ms", "drain_timeout_ms", "drain_grace_ms",
             "header_bytes_max", "body_bytes_max"}


def read_profile():
    """{key: (value, optional)} from 90-ringcast.conf; asserts every line is well formed."""
    settings = {}
    with open(CONF, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            m = re.fullmatch(r"(-?)([a-z0-9_]+(?:\.[a-z0-9_-]+)+)\s*=\s*(\S.*)", line)
            assert m, f"90-ringcast.conf:{number}: not 'key = value': {line}"
            optional, key, value = m.groups()
            assert key not in settings, f"90-ringcast.conf:{number}: {key} set twice"
            assert re.fullmatch(r"\d+(\s+\d+)*", value), f"{key}: value '{value}' not numeric"
            settings[key] = (" ".join(value.split()), bool(optional))
    assert settings, "no settings"
    return settings


def case_sysctl_conf():
    for key, (_, optional) in read_profile().items():
        path = "/proc/sys/" + key.replace(".", "/")
        assert optional or os.path.exists(path), f"{key}: no {path} on this machine and the " \
                                                 "line is not marked optional with '-'"


def case_sysctl_matches_audit():
    """The audit recommends the profile's values, and passes a host that has them."""
    profile = read_profile()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        shutil.copytree(os.path.join(FIXTURES, "bigbox"), root, symlinks=True)
        for key, (value, _) in profile.items():
            path = os.path.join(root, "proc/sys", key.replace(".", "/"))
            if os.path.exists(path):
                with open(path, "w", encoding="ascii") as f:
                    f.write(value.replace(" ", "\t") + "\n")
        doc, _ = audit_json("--root", root, "--cpus", "2-9", "--connections", "1")
    audited = [c for c in doc["checks"] if c.get("sysctl")]
    assert len(audited) >= 12, f"only {len(audited)} sysctl checks"
    for c in audited:
        assert c["sysctl"] in profile, f"audit checks {c['sysctl']}, the profile lacks it"
        assert c["recommended"] == profile[c["sysctl"]][0], \
            f"{c['sysctl']}: audit recommends {c['recommended']}, profile sets " \
            f"{profile[c['sysctl']][0]}"
        assert c["status"] == "PASS", f"{c['id']} is {c['status']} at the profile's value"


def unit_values(name):
    with open(UNIT, encoding="utf-8") as f:
        return [m.group(1).strip() for m in re.finditer(rf"^{name}=(.*)$", f.read(), re.M)]


def syscall_groups():
    """{'@group': set of members, groups expanded} from systemd-analyze."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed")
    out = subprocess.run([analyze, "syscall-filter", "--no-pager"], capture_output=True,
                         text=True, check=True).stdout
    raw, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = raw.setdefault(line.split()[0], set())
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.add(line.strip())

    def expand(name, seen=()):
        members = set()
        for item in raw.get(name, {name}):
            members |= expand(item, seen + (name,)) if item.startswith("@") and \
                item not in seen else {item}
        return members
    return {name: expand(name) for name in raw}


def unit_allowed_syscalls(groups):
    allowed, denied = None, set()
    for value in unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= groups.get(item, {item})
        if deny:
            denied |= names
        elif allowed is None:
            allowed = names
        else:
            allowed |= names
    assert allowed is not None, "the unit has no SystemCallFilter allow list"
    return allowed - denied


def case_unit_syscall_filter():
    groups = syscall_groups()
    io_uring = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
    allowed = unit_allowed_syscalls(groups)
    needed = io_uring | {"sched_setaffinity", "setrlimit", "mmap", "socket", "accept4",
                         "setsockopt", "clone3", "futex", "execve", "prctl"}
    assert needed <= allowed, f"the unit's filter blocks {sorted(needed - allowed)}"
    assert "mount" not in allowed and "reboot" not in allowed, "filter too wide"
    # The claims in the unit's comments, on this systemd.
    assert io_uring <= groups["@aio"] and io_uring <= groups["@system-service"]
    assert not io_uring & groups["@io-event"], "@io-event now holds io_uring: fix the comment"


def case_unit_verify():
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        unit = os.path.join(tmp, "ringcast.service")
        with open(UNIT, encoding="utf-8") as f:
            text = f.read().replace("/usr/local/bin/ringcast", "/bin/true")
        with open(unit, "w", encoding="utf-8") as f:
            f.write(text)
        proc = run([analyze, "verify", unit])
    complaints = [l for l in proc.stderr.splitlines() if "ringcast.service" in l]
    assert proc.returncode == 0 and not complaints, proc.stderr


def case_config_consistency():
    """Unit, example config and audit agree on limits and deadlines."""
    with open(TOML, encoding="utf-8") as f:
        text = f.read()
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, re.M))
    assert documented == TOML_KEYS, f"example documents {sorted(documented)}"
    try:
        import tomllib  # pylint: disable=import-outside-toplevel
    except ImportError:
        skip("tomllib needs Python 3.11")
    config = tomllib.loads(text)
    assert set(config) <= TOML_KEYS
    stop_s = int(unit_values("TimeoutStopSec")[0].rstrip("s"))
    assert stop_s * 1000 >= config["drain_timeout_ms"] + 10000, \
        f"TimeoutStopSec={stop_s}s leaves under 10 s beyond drain_timeout_ms"
    nofile = int(unit_values("LimitNOFILE")[0])
    assert nofile >= 2 * config["max_connections"] + 1024, "LimitNOFILE below the audit's need"
    assert unit_values("LimitMEMLOCK") == ["infinity"]
    assert unit_values("ExecStart")[0].startswith("/usr/local/bin/ringcast --config ")
    assert unit_values("KillSignal") == ["SIGTERM"] and unit_values("Restart") == ["on-failure"]


if __name__ == "__main__":
    raise SystemExit(main({name[5:]: fn for name, fn in globals().items()
                           if name.startswith("case_")}))
