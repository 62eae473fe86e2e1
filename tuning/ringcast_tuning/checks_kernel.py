"""Audit checks: the kernel, io_uring availability and features, descriptor limits."""

import errno
import grp
import os
import resource

from .registry import (CAP_IPC_LOCK, CAP_SYS_ADMIN, FD_HEADROOM, MIB, Outcome, check,
                       human_bytes, soft_limit)
from .uring_probe import REQUIRED_OPS


@check("kernel.version", ">= 6.1",
       "ringcast needs SINGLE_ISSUER/DEFER_TASKRUN (6.1), multishot recv (6.0), "
       "provided-buffer rings (5.19) and MSG_RING (5.18).",
       "install a 6.1+ kernel: Debian 12 ships 6.1 LTS (apt install linux-image-amd64), "
       "bookworm-backports has newer ones")
def _kernel_version(ctx):
    if ctx.kernel is None:
        return Outcome("SKIP", f"unparsable kernel release '{ctx.release}'")
    return Outcome("PASS" if ctx.kernel >= (6, 1) else "FAIL", ctx.release)


@check("io_uring.sysctl", "kernel.io_uring_disabled = 0",
       "6.6+: 1 allows io_uring only to members of kernel.io_uring_group and CAP_SYS_ADMIN, "
       "2 disables it for everyone; the switch is host-wide, containers inherit it.",
       "sysctl -w kernel.io_uring_disabled=0 (persist in /etc/sysctl.d/)")
def _io_uring_sysctl(ctx):
    if not ctx.host.exists("/proc/sys/kernel/io_uring_disabled"):
        if ctx.host.exists("/proc/sys/kernel") and ctx.kernel and ctx.kernel < (6, 6):
            return Outcome("PASS", "absent (kernels before 6.6 have no such switch)")
        return Outcome("SKIP", "absent: kernel may lack CONFIG_IO_URING (see io_uring.probe)")
    value = ctx.host.sysctl("kernel.io_uring_disabled")
    if value == "0":
        return Outcome("PASS", "0")
    if value != "1":
        return Outcome("FAIL", f"{value} (io_uring disabled for all processes)")
    group = int(ctx.host.sysctl("kernel.io_uring_group"))
    if group < 0:
        return Outcome("FAIL", "1 with kernel.io_uring_group=-1 (only CAP_SYS_ADMIN may use it)")
    try:
        name = grp.getgrgid(group).gr_name
    except KeyError:
        name = str(group)
    member = group in os.getgroups() or group == os.getegid() or ctx.has_cap(CAP_SYS_ADMIN)
    observed = f"1, io_uring_group={name}; this user {'is' if member else 'is not'} allowed"
    fix = (f"SupplementaryGroups={name} in ringcast.service (shell users: usermod -aG {name} "
           "ringcast), or sysctl -w kernel.io_uring_disabled=0")
    return Outcome("PASS" if member else "FAIL", observed, fix=fix)


def container_kind(host):
    if host.exists("/.dockerenv"):
        return "docker"
    if host.exists("/run/.containerenv"):
        return "podman"
    cgroup = host.read_or("/proc/1/cgroup", "")
    for kind in ("kubepods", "docker", "containerd", "libpod", "lxc"):
        if kind in cgroup:
            return kind
    return None


SECCOMP_FIX = {
    "docker": "docker run --security-opt seccomp=ringcast-seccomp.json (Docker's default "
              "profile plus io_uring_setup/io_uring_enter/io_uring_register, README: Containers)",
    "kubepods": "securityContext.seccompProfile {type: Localhost, localhostProfile: "
                "ringcast-seccomp.json} (README: Containers)",
}


def explain_setup_error(ctx, err):
    """Names why io_uring_setup failed; returns (cause, fix)."""
    seccomp = ctx.status.get("Seccomp") == "2"
    kind = container_kind(ctx.host)
    seccomp_fix = SECCOMP_FIX.get(kind, "allow io_uring_setup, io_uring_enter and "
                                  "io_uring_register in the seccomp filter (systemd: "
                                  "SystemCallFilter=, container: its seccomp profile)")
    where = f" ({kind} container)" if kind else ""
    disabled = ctx.host.read_or("/proc/sys/kernel/io_uring_disabled", "0")
    if err == errno.EPERM:
        if disabled == "2":
            return "kernel.io_uring_disabled=2", "sysctl -w kernel.io_uring_disabled=0 on the host"
        if disabled == "1":
            return ("kernel.io_uring_disabled=1 and this user is not in kernel.io_uring_group",
                    "add the user to kernel.io_uring_group, or "
                    "sysctl -w kernel.io_uring_disabled=0")
        if seccomp:
            return f"blocked by a seccomp filter{where}", seccomp_fix
        return ("denied by a security module (SELinux io_uring class, AppArmor) or policy",
                "check the audit log: journalctl -k | grep -iE 'avc|apparmor'")
    if err == errno.ENOSYS:
        if seccomp:
            return f"a seccomp filter returns ENOSYS{where}", seccomp_fix
        return ("kernel without CONFIG_IO_URING, or a sandbox such as gVisor",
                "use a kernel with CONFIG_IO_URING=y (Debian's are), on the host or a VM")
    if err == errno.ENOMEM:
        limit = human_bytes(resource.getrlimit(resource.RLIMIT_MEMLOCK)[0])
        return (f"RLIMIT_MEMLOCK ({limit}) too small for ring memory",
                "ulimit -l unlimited; LimitMEMLOCK=infinity in ringcast.service")
    if err in (errno.EMFILE, errno.ENFILE):
        return "out of file descriptors", "raise ulimit -n / LimitNOFILE"
    return os.strerror(err), "check dmesg and the host's security policy for io_uring"


@check("io_uring.probe", "io_uring_setup succeeds",
       "Every shard runs on its own io_uring ring; without rings ringcast exits at start-up. "
       "The probe runs as this user, under this process's seccomp filter and limits.")
def _io_uring_probe(ctx):
    if ctx.probe is None:
        return Outcome("SKIP", "not probed: alternate root (the probe would test this machine)")
    err = ctx.probe["errno"]
    if err == 0:
        return Outcome("PASS", "io_uring_setup ok")
    cause, fix = explain_setup_error(ctx, err)
    name = errno.errorcode.get(err, str(err))
    return Outcome("FAIL", f"io_uring_setup failed with {name}: {cause}", fix=fix)


@check("io_uring.features", "SINGLE_ISSUER|DEFER_TASKRUN, ACCEPT/SEND/RECV/MSG_RING, buffer rings",
       "DEFER_TASKRUN runs completions only when the shard asks (6.1); MSG_RING wakes other "
       "shards (5.18); provided-buffer rings feed multishot recv (5.19, 6.0).",
       "install a 6.1+ kernel")
def _io_uring_features(ctx):
    if ctx.probe is None:
        return Outcome("SKIP", "not probed: alternate root")
    if ctx.probe["errno"]:
        return Outcome("SKIP", "io_uring unavailable (see io_uring.probe)")
    ops, pbuf = ctx.probe["ops"], ctx.probe["pbuf_ring"]
    if not ops:
        return Outcome("SKIP", "IORING_REGISTER_PROBE failed; opcodes unknown")
    missing = [name for name in REQUIRED_OPS if not ops[name]]
    if pbuf is not True:
        missing.append(f"buffer rings ({errno.errorcode.get(pbuf, pbuf)})")
    parts = ["SINGLE_ISSUER|DEFER_TASKRUN " + ("ok" if ctx.probe["defer_taskrun"] else "missing"),
             "ACCEPT/SEND/RECV/MSG_RING " + ("ok" if all(ops[n] for n in REQUIRED_OPS)
                                            else "incomplete"),
             "buffer rings " + ("ok" if pbuf is True else "missing"),
             "SEND_ZC " + ("ok" if ops["SEND_ZC"] else "missing (ringcast uses plain sends)")]
    observed = ", ".join(parts)
    if missing:
        return Outcome("FAIL", observed + "; missing: " + ", ".join(missing))
    if not ctx.probe["defer_taskrun"]:
        return Outcome("WARN", observed + " (ringcast falls back to plain rings)")
    return Outcome("PASS", observed)


@check("io_uring.memlock", "unlimited",
       "Ring and buffer-ring memory counts against RLIMIT_MEMLOCK, per user, for processes "
       "without CAP_IPC_LOCK on kernels < 5.12 and >= 6.14 (io_uring region API), about "
       "0.4 MiB per 4096-entry ring; too little and ring setup fails with ENOMEM. On 5.12-6.13 "
       "only registered buffers and SEND_ZC are charged.",
       "LimitMEMLOCK=infinity in ringcast.service (tuning/ringcast.service sets it); shells: "
       "'ringcast - memlock unlimited' in /etc/security/limits.d/ringcast.conf")
def _io_uring_memlock(ctx):
    if ctx.kernel is None:
        return Outcome("SKIP", "kernel version unknown")
    limit, source = soft_limit(ctx, "memlock", resource.RLIMIT_MEMLOCK)
    shards = len(ctx.cpus)
    rings_charged = ctx.kernel < (5, 12) or ctx.kernel >= (6, 14)
    need = shards * 2 * MIB if rings_charged else 8 * MIB
    observed = f"{human_bytes(limit)} ({source})"
    if source == "this shell" and ctx.has_cap(CAP_IPC_LOCK):
        observed += "; this process has CAP_IPC_LOCK and is exempt, the ringcast user is not"
    recommended = f"unlimited, or >= {human_bytes(need)} for {shards} shards"
    if limit == resource.RLIM_INFINITY or limit >= need:
        return Outcome("PASS", observed, recommended)
    if rings_charged and limit < shards * MIB // 2:
        return Outcome("FAIL", observed, recommended)
    return Outcome("WARN", observed, recommended)


# File descriptors: client sockets, upstream sockets, direct-descriptor tables.

@check("limits.nofile", "",
       "Each client connection is a descriptor (direct descriptors too: the registered file "
       "table is capped by RLIMIT_NOFILE), upstream connections add one more.",
       "")
def _limits_nofile(ctx):
    soft, source = soft_limit(ctx, "nofile", resource.RLIMIT_NOFILE)
    need = ctx.fds_needed
    observed = f"{soft} ({source})"
    if source == "this shell":
        observed += f", hard {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}"
    recommended = f">= {need} (2 x {ctx.connections} connections + {FD_HEADROOM})"
    unit = ("tuning/ringcast.service sets LimitNOFILE=1048576" if need <= 1048576
            else f"LimitNOFILE={need} in ringcast.service")
    fix = f"{unit}; for a shell: ulimit -n {need}"
    if soft >= need:
        return Outcome("PASS", observed, recommended)
    return Outcome("FAIL" if soft < ctx.connections else "WARN", observed, recommended, fix)


@check("fs.nr_open", "",
       "The ceiling for any process's open-files limit; LimitNOFILE above it fails.",
       "")
def _fs_nr_open(ctx):
    value = int(ctx.host.sysctl("fs.nr_open"))
    need = ctx.fds_needed
    fix = f"sysctl -w fs.nr_open={max(need, 1048576)} (persist in /etc/sysctl.d/)"
    if value >= need:
        return Outcome("PASS", value, f">= {need}")
    return Outcome("FAIL" if value < ctx.connections else "WARN", value, f">= {need}", fix)


@check("fs.file_max", "",
       "System-wide open files, shared by ringcast and everything else on the host.",
       "")
def _fs_file_max(ctx):
    value = int(ctx.host.sysctl("fs.file-max"))
    in_use = ctx.host.read_or("/proc/sys/fs/file-nr", "?").split()[0]
    need = 2 * ctx.fds_needed
    observed = f"{value} ({in_use} in use)"
    fix = f"sysctl -w fs.file-max={need} (persist in /etc/sysctl.d/)"
    if value >= need:
        return Outcome("PASS", observed, f">= {need}")
    return Outcome("FAIL" if value < ctx.connections else "WARN", observed, f">= {need}", fix)
