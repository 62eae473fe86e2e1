// CPU time and memory of this process and of the server under test, from the kernel.
//
// Our own threads: CLOCK_THREAD_CPUTIME_ID (nanoseconds, per thread) and getrusage(RUSAGE_SELF)
// for the whole process. The server: /proc/PID/stat (utime + stime of the whole process, in clock
// ticks), /proc/PID/task/TID/stat for each thread (a thread-per-core server is saturated when its
// busiest thread is, whatever the average), and VmRSS from /proc/PID/status.
//
// Thread-safety: pure functions over the kernel's files.
#pragma once

#include <cstdint>
#include <vector>

namespace rc::load {

uint64_t thread_cpu_ns();
uint64_t process_cpu_ns();
// Clock ticks to nanoseconds (USER_HZ, usually 100).
uint64_t ticks_to_ns(uint64_t ticks);

struct task_cpu {
  int tid = 0;
  uint64_t ticks = 0;  // utime + stime
};

struct process_sample {
  bool ok = false;
  uint64_t wall_ns = 0;  // CLOCK_MONOTONIC when taken
  uint64_t cpu_ticks = 0;
  std::vector<task_cpu> tasks;
  uint64_t rss_bytes = 0;
};

// Reads the process's CPU times, its threads' and its RSS. ok is false if the process is gone.
process_sample sample_process(int pid);
// VmRSS of `pid` in bytes; 0 if it cannot be read.
uint64_t process_rss_bytes(int pid);

struct process_usage {
  double cpu_s = 0;  // CPU seconds used between the samples
  double wall_s = 0;
  double busiest_share = 0;   // the busiest thread's CPU time / wall time
  unsigned busy_threads = 0;  // threads that used more than 5% of a core
};
process_usage usage_between(const process_sample& a, const process_sample& b);

// Several processes as one (the nodes of a cluster): CPU seconds summed, busy threads counted
// across them, the busiest thread of any; wall time is the longest. Samples are taken in the
// same order at both ends; a process missing at either end (gone) makes `ok` false.
struct group_usage {
  bool ok = false;
  process_usage total;
  std::vector<double> cpu_s;  // per process, in the order given
};
group_usage group_usage_between(const std::vector<process_sample>& a,
                                const std::vector<process_sample>& b);

// The whole machine's CPU time from /proc/stat, in clock ticks summed over all CPUs: to tell
// whether other work competed with the benchmark, and how much went to interrupts (on loopback
// the receiving side of TCP runs in softirq context, charged to no process).
struct machine_sample {
  bool ok = false;
  uint64_t busy_ticks = 0;   // user + nice + system + irq + softirq + steal
  uint64_t irq_ticks = 0;    // irq + softirq
  uint64_t total_ticks = 0;  // the above + idle + iowait
};
machine_sample sample_machine();

}  // namespace rc::load
