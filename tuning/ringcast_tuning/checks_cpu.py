"""Audit checks: the shard CPU layout, NUMA, frequency, isolation, memory settings."""

import os
import re

from .registry import Outcome, check
from .sysfs import (Unreadable, cmdline_param, format_cpu_list, isolated_cpus,
                    parse_cpu_list, sibling_set)


@check("cpu.shard_cpus", "online CPUs this process may use, each once",
       "ringcast pins shard i to the i-th CPU of --cpus; an offline CPU, a repeated one, or "
       "one outside the allowed set (cpuset, taskset, CPUAffinity=) makes pinning fail.",
       "choose CPUs from lscpu -e that are online and allowed "
       "(grep Cpus_allowed_list /proc/self/status)")
def _cpu_shard_cpus(ctx):
    repeated = sorted({c for c in ctx.cpus if ctx.cpus.count(c) > 1})
    offline = [c for c in ctx.cpus if c not in ctx.online]
    isolated = isolated_cpus(ctx.host)
    disallowed = [c for c in ctx.cpus if c not in ctx.allowed and c not in isolated]
    observed = (f"{','.join(map(str, ctx.cpus))} ({len(ctx.cpus)} shards; online "
                f"{format_cpu_list(ctx.online)}, allowed {format_cpu_list(ctx.allowed)})")
    if repeated or offline:
        detail = f"repeated {format_cpu_list(repeated)}" if repeated else \
            f"offline {format_cpu_list(offline)}"
        return Outcome("FAIL", f"{observed}: {detail}")
    if disallowed:
        return Outcome("WARN", f"{observed}: not allowed here {format_cpu_list(disallowed)}")
    return Outcome("PASS", observed)


@check("cpu.housekeeping", "on 8+ CPUs, leave a core out of the shard list",
       "Other devices' IRQs, timers, logging, sshd and the engine children need a CPU that "
       "does not delay a shard.",
       "")
def _cpu_housekeeping(ctx):
    spare = sorted(set(ctx.online) - set(ctx.cpus))
    observed = f"{len(ctx.cpus)} shards on {len(ctx.online)} online CPUs"
    if spare:
        return Outcome("PASS", f"{observed}; spare {format_cpu_list(spare)}")
    if len(ctx.online) < 8:
        return Outcome("PASS", f"{observed} (small host: every CPU may be a shard)")
    core0 = sibling_set(ctx.host, ctx.online[0]) or {ctx.online[0]}
    rest = [c for c in ctx.online if c not in core0]
    return Outcome("WARN", f"{observed}; none spare",
                   fix=f"ringcast --cpus {format_cpu_list(rest)} (leaves CPU "
                       f"{format_cpu_list(core0)} for housekeeping)")




@check("cpu.smt", "one shard per physical core",
       "SMT siblings share a core's execution units and caches; two busy shards on one core "
       "each run slower than on two cores.",
       "")
def _cpu_smt(ctx):
    siblings = {c: sibling_set(ctx.host, c) for c in ctx.online}
    unknown = [c for c in ctx.cpus if not siblings.get(c)]
    if unknown:
        return Outcome("SKIP", f"no topology for CPUs {format_cpu_list(unknown)}")
    shard_set = set(ctx.cpus)
    shared = sorted({frozenset(siblings[c] & shard_set) for c in ctx.cpus
                     if len(siblings[c] & shard_set) > 1}, key=min)
    smt = any(len(s) > 1 for s in siblings.values() if s)
    if not shared:
        state = "SMT on, sibling threads left idle" if smt else "no SMT siblings"
        return Outcome("PASS", f"no two shards share a core ({state})")
    one_per_core = sorted({min(s) for s in siblings.values() if s})
    pairs = "; ".join(format_cpu_list(s) for s in shared)
    return Outcome("WARN", f"shards share cores: {pairs}",
                   fix=f"one CPU per core (lscpu -e=CPU,CORE,NODE), e.g. --cpus "
                       f"{format_cpu_list(one_per_core)}")


@check("cpu.governor", "performance",
       "powersave and schedutil clock down between token bursts, so the first bytes after "
       "an idle gap run slowly: tail latency.",
       "cpupower frequency-set -g performance (apt install linux-cpupower), or: echo "
       "performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor")
def _cpu_governor(ctx):
    governors = {}
    for c in ctx.cpus:
        path = f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
        if ctx.host.exists(path):
            governors[c] = ctx.host.read(path)
    if not governors:
        return Outcome("SKIP", "no cpufreq interface (VM, or frequency set by firmware)")
    by_value = {}
    for c, g in governors.items():
        by_value.setdefault(g, []).append(c)
    observed = "; ".join(f"{g} on {format_cpu_list(cs)}" for g, cs in sorted(by_value.items()))
    if set(by_value) != {"performance"}:
        return Outcome("WARN", observed)
    if len(governors) < len(ctx.cpus):
        missing = [c for c in ctx.cpus if c not in governors]
        return Outcome("SKIP", f"{observed}; no cpufreq for {format_cpu_list(missing)}")
    return Outcome("PASS", observed)




@check("cpu.isolation", "isolcpus=domain,managed_irq and rcu_nocbs on the shard CPUs",
       "Without isolation the scheduler places other tasks and kworkers on shard CPUs and RCU "
       "callbacks run there: jitter on every connection of that shard.",
       "")
def _cpu_isolation(ctx):
    cmdline = ctx.host.read("/proc/cmdline")
    isolated = isolated_cpus(ctx.host)
    nohz = ctx.host.read_or("/sys/devices/system/cpu/nohz_full", "").strip()
    rcu = cmdline_param(cmdline, "rcu_nocbs")
    observed = (f"isolated {format_cpu_list(isolated) or 'none'}, "
                f"nohz_full {nohz if nohz and nohz != '(null)' else 'none'}, "
                f"rcu_nocbs {rcu or 'none'}")
    shards = format_cpu_list(ctx.cpus)
    if set(ctx.cpus) <= isolated:
        return Outcome("PASS", observed)
    if len(ctx.online) < 4:
        return Outcome("PASS", f"{observed} (small host: isolation needs housekeeping CPUs)")
    return Outcome("WARN", observed,
                   fix=f"kernel command line: isolcpus=domain,managed_irq,{shards} "
                       f"rcu_nocbs={shards} (GRUB_CMDLINE_LINUX in /etc/default/grub, "
                       "update-grub, reboot); then pass --cpus explicitly")


# Interrupts and the NIC.


@check("numa.nodes", "shards and NIC on one NUMA node",
       "Cross-node mailbox traffic and remote memory cost latency; the NIC DMAs into its own "
       "node's memory.",
       "")
def _numa_nodes(ctx):
    nodes = [n for n in ctx.host.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", n)]
    if not nodes:
        if ctx.host.exists("/sys/devices/system/cpu"):
            return Outcome("PASS", "no NUMA nodes exposed (one memory domain)")
        raise Unreadable("/sys/devices/system/node: not found")
    node_of = {}
    for n in nodes:
        for c in parse_cpu_list(ctx.host.read(f"/sys/devices/system/node/{n}/cpulist") or "0"):
            node_of[c] = int(n[4:])
    used = sorted({node_of.get(c, -1) for c in ctx.cpus})
    nic_node = nic_numa_node(ctx)
    observed = (f"{len(nodes)} node(s); shards on node(s) {','.join(map(str, used))}; NIC "
                f"{ctx.nic or '-'} on node {nic_node if nic_node is not None else 'unknown'}")
    node_cpus = {n: [c for c, m in node_of.items() if m == n] for n in set(node_of.values())}
    target = nic_node if nic_node in node_cpus else used[0]
    fix = (f"keep --cpus within node {target} ({format_cpu_list(node_cpus.get(target, []))}), "
           "or run one ringcast per node")
    if len(used) > 1 or (nic_node is not None and nic_node >= 0 and nic_node not in used):
        return Outcome("WARN", observed, fix=fix)
    return Outcome("PASS", observed)


def nic_numa_node(ctx):
    if not ctx.nic or not ctx.host.exists(f"/sys/class/net/{ctx.nic}/device"):
        return None
    d = os.path.realpath(ctx.host.path(f"/sys/class/net/{ctx.nic}/device"))
    for _ in range(3):  # virtio: the node is on the PCI parent
        try:
            with open(os.path.join(d, "numa_node"), encoding="utf-8") as f:
                node = int(f.read())
            return node if node >= 0 else None
        except (OSError, ValueError):
            d = os.path.dirname(d)
    return None


# Memory and the rest.

def bracketed(text):
    m = re.search(r"\[(\S+)\]", text)
    return m.group(1) if m else text


@check("mm.thp", "enabled=madvise, defrag not 'always'",
       "THP 'always' lets khugepaged and direct compaction stall shard threads for "
       "milliseconds and bloats many small per-connection allocations.",
       "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; echo defer+madvise > "
       "/sys/kernel/mm/transparent_hugepage/defrag (persist: transparent_hugepage=madvise "
       "on the kernel command line)")
def _mm_thp(ctx):
    base = "/sys/kernel/mm/transparent_hugepage/"
    enabled = bracketed(ctx.host.read(base + "enabled"))
    defrag = bracketed(ctx.host.read(base + "defrag"))
    ok = enabled in ("madvise", "never") and defrag != "always"
    return Outcome("PASS" if ok else "WARN", f"enabled={enabled}, defrag={defrag}")


@check("cpu.mitigations", "kernel default (leave on)",
       "Informational: mitigations tax every kernel entry; ringcast enters the kernel once per "
       "loop turn for a whole batch, so it pays far less than an epoll server. mitigations=off "
       "is only for single-tenant hosts where you measured the gain.")
def _cpu_mitigations(ctx):
    base = "/sys/devices/system/cpu/vulnerabilities"
    names = ctx.host.listdir(base)
    if not names:
        raise Unreadable(f"{base}: not found")
    states = {n: ctx.host.read_or(f"{base}/{n}", "?") for n in names}
    mitigated = [n for n, s in states.items() if s.startswith("Mitigation")]
    vulnerable = [n for n, s in states.items() if s.startswith("Vulnerable")]
    setting = cmdline_param(ctx.host.read("/proc/cmdline"), "mitigations") or "auto (default)"
    observed = f"mitigations={setting}; mitigated: {', '.join(mitigated) or 'none'}"
    if vulnerable:
        observed += f"; vulnerable: {', '.join(vulnerable)}"
    return Outcome("PASS", observed)


@check("mm.swap", "no swap, or vm.swappiness <= 10",
       "A shard that touches a swapped-out page stalls every connection it owns.",
       "sysctl -w vm.swappiness=10 (90-ringcast.conf sets it), or swapoff -a; "
       "tuning/ringcast.service also sets MemorySwapMax=0")
def _mm_swap(ctx):
    devices = ctx.host.read("/proc/swaps").splitlines()[1:]
    swappiness = int(ctx.host.sysctl("vm.swappiness"))
    if not devices:
        return Outcome("PASS", f"no swap (vm.swappiness={swappiness})")
    size_kib = sum(int(d.split()[2]) for d in devices if len(d.split()) > 2)
    observed = f"{len(devices)} device(s), {size_kib // 1024} MiB, vm.swappiness={swappiness}"
    return Outcome("PASS" if swappiness <= 10 else "WARN", observed)
