"""Audit checks of network sysctls. Each recommended value is the one in
tuning/sysctl.d/90-ringcast.conf (tests/tuning cross-checks the two); PASS means the host
is at least as good as the profile for ringcast, WARN that it is not.
"""

from .registry import Outcome, check


def at_least(n):
    return lambda v: int(v) >= n


def at_most(n):
    return lambda v: int(v) <= n


def port_range(count):
    def ok(v):
        lo, hi = (int(x) for x in v.split())
        return hi - lo + 1 >= count
    return ok


def buffer_triple(default, maximum):
    def ok(v):
        _, dflt, mx = (int(x) for x in v.split())
        return dflt >= default and mx >= maximum
    return ok


SYSCTLS = [
    ("net.somaxconn", "net.core.somaxconn", "8192", at_least(8192),
     "Caps each shard's listen backlog; after a deploy every client reconnects at once and "
     "what overflows is dropped (nstat -az TcpExtListenOverflows)."),
    ("net.tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog", "8192", at_least(8192),
     "Half-open connections per listener during a reconnect storm; past it SYNs need "
     "syncookies or are dropped."),
    ("net.netdev_max_backlog", "net.core.netdev_max_backlog", "16384", at_least(16384),
     "Per-CPU queue for RPS-steered packets; bursts past it are dropped (2nd column of "
     "/proc/net/softnet_stat)."),
    ("net.ip_local_port_range", "net.ipv4.ip_local_port_range", "10240 65535", port_range(55296),
     "Ephemeral ports cap ringcast's connections to each upstream address:port; connect() "
     "slows as the range fills."),
    ("net.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse", "1", lambda v: v == "1",
     "Lets new upstream connections reuse ports in TIME_WAIT (outgoing only, safe with TCP "
     "timestamps); the default 2 allows it on loopback only."),
    ("net.tcp_fin_timeout", "net.ipv4.tcp_fin_timeout", "15", at_most(15),
     "Seconds an orphaned socket waits in FIN_WAIT_2 for a client that vanished, holding "
     "memory and a port."),
    ("net.core_rmem_max", "net.core.rmem_max", "16777216", at_least(16777216),
     "Ceiling for SO_RCVBUF; memory is used only on demand, so a high ceiling costs nothing "
     "idle."),
    ("net.core_wmem_max", "net.core.wmem_max", "16777216", at_least(16777216),
     "Ceiling for SO_SNDBUF; memory is used only on demand, so a high ceiling costs nothing "
     "idle."),
    ("net.tcp_rmem", "net.ipv4.tcp_rmem", "4096 131072 16777216",
     buffer_triple(131072, 16777216),
     "min/default/max receive buffer per TCP socket; autotuning grows toward max for "
     "high-bandwidth upstreams and uploads."),
    ("net.tcp_wmem", "net.ipv4.tcp_wmem", "4096 16384 16777216", buffer_triple(16384, 16777216),
     "min/default/max send buffer per TCP socket; autotuning grows toward max for far, fast "
     "clients of large responses."),
    ("net.tcp_notsent_lowat", "net.ipv4.tcp_notsent_lowat", "16384", at_most(16384),
     "Bounds unsent bytes queued in the kernel per socket (default: unbounded). Sends stop "
     "early, so tokens wait in ringcast's per-connection ring where backpressure, coalescing "
     "and slow-consumer limits act, not in a deep socket queue that delays every later token."),
    ("net.tcp_slow_start_after_idle", "net.ipv4.tcp_slow_start_after_idle", "0",
     lambda v: v == "0",
     "Streams idle between tokens longer than an RTO; with 1 the congestion window collapses "
     "after each pause and the next burst is throttled."),
]


def sysctl_fix(key, value):
    arg = f"'{key}={value}'" if " " in value else f"{key}={value}"
    return (f"sysctl -w {arg}; persist: cp tuning/sysctl.d/90-ringcast.conf /etc/sysctl.d/ "
            "&& sysctl --system")


def register_sysctl(check_id, key, recommended, ok, why):
    def run(ctx):
        value = " ".join(ctx.host.sysctl(key).split())
        observed = value
        if key == "net.core.netdev_max_backlog":
            observed += f" (drops since boot: {softnet_drops(ctx.host)})"
        return Outcome("PASS" if ok(value) else "WARN", observed)
    check(check_id, recommended, why, sysctl_fix(key, recommended), sysctl=key)(run)


def softnet_drops(host):
    rows = host.read_or("/proc/net/softnet_stat", "").splitlines()
    return sum(int(row.split()[1], 16) for row in rows if len(row.split()) > 1) if rows else "?"


for _entry in SYSCTLS:
    register_sysctl(*_entry)


# CPUs: the shard layout.
