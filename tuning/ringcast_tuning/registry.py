"""The audit's vocabulary: statuses, the check registry, and the shared Context.

A check is a function registered with @check(id, recommended, why, fix). It returns an
Outcome; raising sysfs.Unreadable (or failing to parse what it read) turns it into SKIP
with the reason as the observed value, so a check cannot report PASS on data it did not
read. Only WARN and FAIL carry a
fix. Checks run in registration order, which is the order the audit prints them.
"""

import os
import re
import resource
import shutil
import subprocess

from .sysfs import Unreadable, default_nic, format_cpu_list, kernel_tuple, parse_cpu_list
from .uring_probe import probe_io_uring

STATUSES = ("PASS", "WARN", "FAIL", "SKIP")
# Open files beyond 2 per connection (client and upstream socket): listeners, rings, logs,
# engine children.
FD_HEADROOM = 1024
MIB = 1024 * 1024
CAP_IPC_LOCK, CAP_SYS_ADMIN = 14, 21

CHECKS = []


class Outcome:
    """What a check found. recommended/fix/why override the registered defaults."""

    def __init__(self, status, observed, recommended=None, fix=None, why=None):
        if status not in STATUSES:
            raise ValueError(f"bad status {status}")
        self.status, self.observed = status, str(observed)
        self.recommended, self.fix, self.why = recommended, fix, why


def check(check_id, recommended, why, fix="", sysctl=None):
    """Registers a check. sysctl names the key for checks of 90-ringcast.conf values."""
    def register(fn):
        CHECKS.append((check_id, recommended, why, fix, sysctl, fn))
        return fn
    return register


def run_checks(ctx):
    results = []
    for check_id, recommended, why, fix, sysctl, fn in CHECKS:
        try:
            out = fn(ctx)
        except Unreadable as e:
            out = Outcome("SKIP", f"unreadable: {e}")
        except (ValueError, IndexError) as e:  # A file in an unexpected format.
            out = Outcome("SKIP", f"unparsable: {e}")
        result = {
            "id": check_id,
            "status": out.status,
            "observed": out.observed,
            "recommended": str(out.recommended if out.recommended is not None else recommended),
            "why": out.why or why,
            "fix": (out.fix if out.fix is not None else fix) if out.status in ("WARN", "FAIL")
                   else "",
        }
        if sysctl:
            result["sysctl"] = sysctl
        results.append(result)
    return results


class Context:
    """Everything the checks share: the arguments, the host reader, probe results.

    On an alternate root (tests) the live-only facts are absent: no io_uring probe, no
    systemd unit lookup, and the allowed CPUs are the root's online CPUs.
    """

    def __init__(self, args, host):
        self.host = host
        self.connections = args.connections
        self.fds_needed = 2 * args.connections + FD_HEADROOM
        self.release = host.read_or("/proc/sys/kernel/osrelease", os.uname().release)
        self.kernel = kernel_tuple(self.release)
        self.online = parse_cpu_list(host.read_or("/sys/devices/system/cpu/online", "0"))
        self.allowed = sorted(os.sched_getaffinity(0)) if host.live else self.online
        self.cpus = args.cpus if args.cpus is not None else self.allowed
        self.cpu_text = format_cpu_list(self.cpus)
        self.nic = args.nic or default_nic(host)
        self.status = dict(re.findall(r"^(\w+):\s*(.*)$",
                                      host.read_or("/proc/self/status", ""), re.M))
        self.probe = probe_io_uring() if host.live else None
        self.limits = unit_limits(args.unit) if host.live else None

    def has_cap(self, bit):
        return bool(int(self.status.get("CapEff", "0"), 16) >> bit & 1)


def unit_limits(unit):
    """The soft limits systemd gives the unit if it is loaded here, else None."""
    if not unit or not os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"):
        return None
    try:
        out = subprocess.run(["systemctl", "show", "-p", "LoadState", "-p", "LimitNOFILESoft",
                              "-p", "LimitMEMLOCKSoft", unit],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if props.get("LoadState") != "loaded":
        return None

    def value(v):
        return resource.RLIM_INFINITY if v == "infinity" else int(v)
    return {"source": unit, "nofile": value(props["LimitNOFILESoft"]),
            "memlock": value(props["LimitMEMLOCKSoft"])}


def soft_limit(ctx, name, rlimit):
    """(soft limit, where it comes from): the loaded unit's, else this process's."""
    if ctx.limits:
        return ctx.limits[name], ctx.limits["source"]
    return resource.getrlimit(rlimit)[0], "this shell"


def human_bytes(n):
    if n == resource.RLIM_INFINITY:
        return "unlimited"
    return f"{n // MIB} MiB" if n >= MIB else f"{n // 1024} KiB"
