"""Audit checks: irqbalance, NIC queues versus shards, queue IRQ and RPS placement."""

import re

from .registry import Outcome, check
from .sysfs import (format_cpu_list, is_virtual_nic, irqbalance_pid, nic_queue_irqs,
                    parse_cpu_list, parse_mask, queue_count)


@check("irq.irqbalance", "not running (or NIC queue IRQs banned from it)",
       "irqbalance periodically moves IRQs, undoing the one-to-one queue-to-shard mapping "
       "that irq-affinity sets.",
       "systemctl disable --now irqbalance; or list the NIC queue IRQs as --banirq=N in "
       "IRQBALANCE_ARGS (/etc/default/irqbalance)")
def _irq_irqbalance(ctx):
    pid = irqbalance_pid(ctx.host)
    if pid is None:
        return Outcome("PASS", "not running")
    config = ctx.host.read_or("/etc/default/irqbalance", "")
    banned = {int(irq) for irq in re.findall(r"--banirq[= ](\d+)", config)}
    nic, _ = hardware_nic(ctx)
    queue_irqs = {irq for _, irq, _ in nic_queue_irqs(ctx.host, nic)} if nic else set()
    if queue_irqs and queue_irqs <= banned:
        return Outcome("PASS", f"running (pid {pid}), {nic} queue IRQs banned from it")
    return Outcome("WARN", f"running (pid {pid})")


def hardware_nic(ctx):
    """The NIC to check, or an Outcome saying why there is none."""
    if ctx.nic is None:
        return None, Outcome("SKIP", "no NIC with hardware queues (loopback/virtual only)")
    if not ctx.host.exists(f"/sys/class/net/{ctx.nic}"):
        return None, Outcome("SKIP", f"interface {ctx.nic} not found")
    if is_virtual_nic(ctx.host, ctx.nic):
        return None, Outcome("SKIP", f"{ctx.nic} is virtual: no hardware queues to align")
    return ctx.nic, None




@check("nic.queues", ">= one RX queue per shard",
       "RSS hashes each connection to a NIC queue; with a queue per shard, packets reach the "
       "owning shard's CPU without software steering (RPS costs an IPI per batch).",
       "")
def _nic_queues(ctx):
    nic, skip = hardware_nic(ctx)
    if skip:
        return skip
    rx, tx = queue_count(ctx.host, nic, "rx-"), queue_count(ctx.host, nic, "tx-")
    shards = len(ctx.cpus)
    observed = f"{nic}: {rx} RX / {tx} TX queues for {shards} shards"
    if rx >= shards:
        extra = " (extra queues share shard CPUs)" if rx > shards else ""
        return Outcome("PASS", observed + extra)
    return Outcome("WARN", observed,
                   fix=f"ethtool -L {nic} combined {shards} (maximum: ethtool -l {nic}); "
                       "otherwise irq-affinity spreads the remaining shards with RPS")


@check("nic.irq_affinity", "each queue IRQ on one shard CPU; every shard CPU fed by IRQ or RPS",
       "A connection's packets should be processed on the CPU of the shard that owns it (pairs "
       "with CPU-steered SO_REUSEPORT); a shard CPU no queue or RPS mask feeds gets no local "
       "softirq work, so its connections' packets are processed on another CPU.",
       "")
def _nic_irq_affinity(ctx):
    nic, skip = hardware_nic(ctx)
    if skip:
        return skip
    shards = set(ctx.cpus)
    irq_cpus, misplaced = set(), []
    irqs = nic_queue_irqs(ctx.host, nic)
    for _, irq, name in irqs:
        affinity = set(parse_cpu_list(ctx.host.read(f"/proc/irq/{irq}/smp_affinity_list")))
        if len(affinity) == 1 and affinity <= shards:
            irq_cpus |= affinity
        else:
            misplaced.append(f"IRQ {irq} ({name}) on {format_cpu_list(affinity)}")
    rps_cpus = set()
    for q in range(queue_count(ctx.host, nic, "rx-")):
        rps = ctx.host.read_or(f"/sys/class/net/{nic}/queues/rx-{q}/rps_cpus", "0")
        rps_cpus |= parse_mask(rps)
    unfed = shards - irq_cpus - rps_cpus
    observed = (f"{len(irqs)} queue IRQs on CPUs {format_cpu_list(irq_cpus) or 'none'}, "
                f"RPS to {format_cpu_list(rps_cpus) or 'none'}")
    if len(misplaced) > 3:
        misplaced = misplaced[:2] + [f"{len(misplaced) - 2} more IRQs off the shard CPUs"]
    problems = misplaced + ([f"shard CPUs {format_cpu_list(unfed)} get no packets"]
                            if unfed else [])
    if not problems:
        return Outcome("PASS", observed)
    return Outcome("WARN", observed + "; " + "; ".join(problems),
                   fix=f"tuning/irq-affinity --nic {nic} --cpus {','.join(map(str, ctx.cpus))}")
