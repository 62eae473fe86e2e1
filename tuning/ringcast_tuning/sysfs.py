"""Reading /proc and /sys, CPU lists and masks, and finding a NIC's queue interrupts.

Every path goes through Host, so the tools can run against a fixture tree (tests) as well
as against the live system. Reads never raise OSError: Host.read raises Unreadable, which
the audit turns into SKIP, so nothing unread is ever reported as fine.
"""

import os
import re


class Unreadable(Exception):
    """A value the audit needed but could not read; its check becomes SKIP."""


class Host:
    """Reads /proc and /sys, optionally under an alternate root (test fixtures)."""

    def __init__(self, root):
        self.root = root
        self.live = os.path.realpath(root) == "/"

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def read(self, p):
        try:
            with open(self.path(p), encoding="utf-8", errors="replace") as f:
                return f.read().strip()
        except OSError as e:
            raise Unreadable(f"{p}: {e.strerror}") from None

    def read_or(self, p, default):
        try:
            return self.read(p)
        except Unreadable:
            return default

    def exists(self, p):
        return os.path.exists(self.path(p))

    def listdir(self, p):
        try:
            return sorted(os.listdir(self.path(p)))
        except OSError:
            return []

    def sysctl(self, key):
        return self.read("/proc/sys/" + key.replace(".", "/"))


def parse_cpu_list(text):
    """'2-5,8' -> [2, 3, 4, 5, 8] in the given order; raises ValueError when malformed."""
    cpus = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi) if hi else int(lo)
        if first < 0 or last < first:
            raise ValueError(f"bad CPU range '{part}'")
        cpus.extend(range(first, last + 1))
    if not cpus:
        raise ValueError("empty CPU list")
    return cpus


def format_cpu_list(cpus):
    """[0, 1, 2, 5] -> '0-2,5' (sorted, duplicates dropped)."""
    cpus = sorted(set(cpus))
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def parse_mask(text):
    """Kernel hex CPU mask ('ff,00000000') -> set of CPU numbers."""
    value = int(text.replace(",", "") or "0", 16)
    return {bit for bit in range(value.bit_length()) if value >> bit & 1}


def format_mask(cpus):
    """{0, 33} -> '2,00000001': hex in 32-bit groups, as /sys CPU masks are written."""
    value = 0
    for cpu in cpus:
        value |= 1 << cpu
    words = []
    while True:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
        if not value:
            break
    words.reverse()
    return ",".join([f"{words[0]:x}"] + [f"{w:08x}" for w in words[1:]])


def kernel_tuple(release):
    """'6.1.0-18-amd64' -> (6, 1, 0); None when unparsable."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


def default_nic(host):
    """The interface of the default route, else the first non-virtual interface."""
    for line in host.read_or("/proc/net/route", "").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return fields[0]
    for name in host.listdir("/sys/class/net"):
        if not is_virtual_nic(host, name):
            return name
    return None


def is_virtual_nic(host, name):
    """Loopback, bridges, veth, bonds, tunnels: no device, no hardware queues."""
    real = os.path.realpath(host.path(f"/sys/class/net/{name}"))
    return "/devices/virtual/" in real or not os.path.exists(os.path.join(real, "device"))


def isolated_cpus(host):
    """CPUs removed from scheduler balancing (isolcpus=); explicit pinning still works."""
    text = host.read_or("/sys/devices/system/cpu/isolated", "")
    return set(parse_cpu_list(text)) if text else set()


def sibling_set(host, cpu):
    """The SMT siblings of a CPU (including itself), or None when topology is not exposed."""
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    text = (host.read_or(base + "thread_siblings_list", "")
            or host.read_or(base + "core_cpus_list", ""))
    return set(parse_cpu_list(text)) if text else None


def cmdline_param(cmdline, name):
    """Value of name= on the kernel command line, or None."""
    m = re.search(rf"(?:^|\s){name}=(\S+)", cmdline)
    return m.group(1) if m else None


# A per-queue vector names a queue ("eth0-TxRx-3", "mlx5_comp3@pci:...", "virtio2-input.3",
# "ena-Tx-Rx-3", "gve-ntfy-blk3", sfc's "eth0-3"); device-wide vectors do not.
QUEUE_HINT = re.compile(r"txrx|tx-rx|rx|tx|input|output|comp|queue|fp|ntfy", re.I)
NOT_QUEUE = re.compile(r"config|async|ctrl|misc|event|fw|cmd|mbx|lsc|aux|link|other", re.I)


def nic_queue_irqs(host, nic):
    """[(queue index, irq, name)] of the NIC's per-queue interrupts, from /proc/interrupts.

    Candidates are the device's MSI vectors (its own, or its PCI parent's as for virtio),
    else IRQs whose name contains the NIC's or the device's name; of those, vectors named
    like a queue and ending in its number. Config/async/misc vectors are not queues.
    """
    device = os.path.realpath(host.path(f"/sys/class/net/{nic}/device"))
    wanted = set()
    for d in (device, os.path.dirname(device)):
        if os.path.isdir(os.path.join(d, "msi_irqs")):
            wanted = {int(x) for x in os.listdir(os.path.join(d, "msi_irqs")) if x.isdigit()}
            break
    tokens = [re.compile(rf"(^|\W){re.escape(t)}(\W|$)") for t in (nic, os.path.basename(device))]
    found = []
    for line in host.read("/proc/interrupts").splitlines()[1:]:
        head, _, rest = line.partition(":")
        if not head.strip().isdigit() or not rest.split():
            continue
        irq, name = int(head), rest.split()[-1]
        if wanted and irq not in wanted or not wanted and not any(t.search(name) for t in tokens):
            continue
        base = name.split("@", 1)[0]
        m = re.search(r"(\d+)$", base)
        if base == nic or not m or NOT_QUEUE.search(base):
            continue
        if QUEUE_HINT.search(base) or re.fullmatch(rf"{re.escape(nic)}-\d+", base):
            found.append((int(m.group(1)), irq, name))
    return sorted(found)


def queue_count(host, nic, kind):
    """Number of 'rx-' or 'tx-' queues the kernel exposes for the NIC."""
    return sum(1 for q in host.listdir(f"/sys/class/net/{nic}/queues") if q.startswith(kind))


def irqbalance_pid(host):
    """The pid of a running irqbalance, None if none runs; raises Unreadable when /proc
    hides other processes (hidepid) so the answer would be a guess."""
    if not host.exists("/proc/1/comm"):
        raise Unreadable("/proc: other processes are hidden (hidepid?)")
    for pid in host.listdir("/proc"):
        if pid.isdigit() and host.read_or(f"/proc/{pid}/comm", "") == "irqbalance":
            return int(pid)
    return None
