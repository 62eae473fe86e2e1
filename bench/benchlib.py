"""Measuring plumbing shared by ringcast's peer-comparison benchmarks (bench/http-compare,
bench/idle-rss): machine description, descriptor limits, CPU time and resident memory from /proc,
and a minimal HTTP/1.1 client check. The servers themselves are started by peers.py.
Python 3 standard library only; Linux only (it reads /proc).

Single-threaded: the scripts call this from their main thread only.
"""

import os
import resource
import shlex
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "bench" / "http-compare.d"
HOST = "127.0.0.1"
HEALTH_PATH = "/healthz"
CLK_TCK = os.sysconf("SC_CLK_TCK")  # Unit of /proc/PID/stat times and of /proc/stat.


class Skip(Exception):
    """A target cannot be measured; the message says why and, where possible, what to do."""


def log(msg=""):
    print(msg, flush=True)


def quote(argv):
    return " ".join(shlex.quote(str(a)) for a in argv)


def cpu_list(spec):
    """Parses a taskset-style CPU list ("0", "0-3,6") into a sorted list of ints."""
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return sorted(cpus)


# --------------------------------------------------------------------------- machine


def _first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (r.stdout + r.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info(nginx=None):
    """What the numbers were measured on; printed and stored with every result."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    distro = "unknown"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    info = {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": os.uname().release,
        "distro": distro,
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "cc": _first_line(["cc", "--version"]),
    }
    if nginx:
        info["nginx"] = _first_line([nginx, "-v"])
    return info


def print_machine(info):
    log("machine: nproc=%s, %s, kernel %s, %s, load %s" % (
        info["nproc"], info["cpu_model"], info["kernel"], info["distro"],
        " ".join(info["loadavg"])))
    for tool in ("nginx", "cc"):
        if info.get(tool):
            log("  %-6s %s" % (tool + ":", info[tool]))


def raise_nofile(needed):
    """Raises the soft RLIMIT_NOFILE to the hard limit (children inherit it).

    Returns the soft limit now in force; the caller compares it with what it needs, because
    raising the hard limit takes CAP_SYS_RESOURCE, which even root in a container may lack.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_advice(needed, soft):
    return ("RLIMIT_NOFILE is %d (the hard limit) but %d descriptors are needed: raise the hard "
            "limit (ulimit -Hn, prlimit --nofile, systemd LimitNOFILE=) or use fewer "
            "connections" % (soft, needed))


# --------------------------------------------------------------------------- /proc


def descendants(pid):
    """pid and all its descendants (nginx: master and workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # Exited while we looked.
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def process_cpu_seconds(pid):
    """utime + stime of the whole process (all threads), fields 14 and 15 of /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        # Field 2 (comm) may contain spaces; everything after its closing ')' starts at field 3.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0  # A zombie has no VmRSS.


def core_times(cpus):
    """Busy and steal seconds summed over the given CPUs, from /proc/stat.

    Busy = user+nice+system+irq+softirq: all work on those cores, not only the server's, so
    busy minus the server's own CPU time shows how much else ran there during a measurement.
    """
    busy = steal = 0
    wanted = {"cpu%d" % c for c in cpus}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in wanted:
                v = [int(x) for x in parts[1:9]]
                busy += v[0] + v[1] + v[2] + v[5] + v[6]
                steal += v[7]
    return busy / CLK_TCK, steal / CLK_TCK


class Quiet:
    """Waits for other work on the benchmark's cores to stop before a run.

    Other jobs on a shared machine often come in bursts; waiting one out is cheaper than
    re-running a noisy measurement. Sustained load is not waited out forever: each wait is
    capped at wait_s and all waits together at budget_s.
    """

    def __init__(self, cores, sample_s, wait_s, budget_s, threshold_pct):
        self.cores, self.sample_s, self.wait_s = cores, sample_s, wait_s
        self.budget_s, self.threshold_pct = budget_s, threshold_pct

    def busiest_pct(self):
        """Busy+steal % of the busiest core over sample_s seconds (the servers idle between
        runs, so this is other work)."""
        before = [core_times([c]) for c in self.cores]
        time.sleep(self.sample_s)
        after = [core_times([c]) for c in self.cores]
        return max(100 * ((b1 - b0) + (s1 - s0)) / self.sample_s
                   for (b0, s0), (b1, s1) in zip(before, after))

    def wait(self):
        """Takes at least one sample; returns True when the cores are quiet, False when it
        gave up waiting."""
        t0 = time.monotonic()
        busy = self.busiest_pct()
        if busy > self.threshold_pct and self.budget_s > 0:
            log("  (cores %.0f%% busy with other work; waiting up to %.0f s for quiet)"
                % (busy, min(self.wait_s, self.budget_s)))
        while busy > self.threshold_pct and self.budget_s > 0:
            spent = time.monotonic() - t0
            if spent > self.wait_s or spent > self.budget_s:
                break
            busy = self.busiest_pct()
        had_budget = self.budget_s > 0
        self.budget_s -= time.monotonic() - t0 - self.sample_s
        if had_budget and self.budget_s <= 0:
            log("  (quiet budget spent: from now on runs start without waiting for quiet)")
        return busy <= self.threshold_pct


# --------------------------------------------------------------------------- HTTP


def parse_response(buf):
    """Parses one HTTP/1.1 response at the start of buf.

    Returns None while incomplete, else (status, body, consumed). Raises ValueError on a
    malformed response or one without Content-Length (every target answers a fixed body).
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError("bad status line %r" % lines[0][:80])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length: %r" % buf[:end][:200])
    if len(buf) < end + 4 + length:
        return None
    return int(parts[1]), bytes(buf[end + 4:end + 4 + length]), end + 4 + length


def request_bytes(port):
    return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (HEALTH_PATH, HOST, port)).encode()


def check_http(port, expect_body, timeout_s=5.0):
    """Sends two pipelined GET /healthz on one connection; both must be 200 with the body.

    That proves keep-alive and pipelining work before any load is applied. Returns the size of
    one response in bytes, so a benchmark can tell whether its traffic got the same answer.
    """
    with socket.create_connection((HOST, port), timeout=timeout_s) as s:
        s.sendall(request_bytes(port) * 2)
        buf, answers = b"", []
        deadline = time.monotonic() + timeout_s
        while len(answers) < 2:
            r = parse_response(buf)
            if r:
                answers.append((r[0], r[1], r[2]))
                buf = buf[r[2]:]
                continue
            if time.monotonic() > deadline:
                raise Skip("GET %s: no complete answer within %.0f s" % (HEALTH_PATH, timeout_s))
            chunk = s.recv(65536)
            if not chunk:
                raise Skip("GET %s: connection closed after %d of 2 pipelined answers "
                           "(keep-alive or pipelining broken?)" % (HEALTH_PATH, len(answers)))
            buf += chunk
    for status, body, _ in answers:
        if status != 200 or not expect_body(body):
            raise Skip("GET %s answered %d %r, expected 200 with a tiny \"ok\" body"
                       % (HEALTH_PATH, status, body[:100]))
    return answers[0][2]


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
