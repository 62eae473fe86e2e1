#include "load/proc_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace rc::load {
namespace {

// Reads a small /proc file whole; empty if it cannot be read.
std::string read_small_file(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return s;
}

// utime + stime from a /proc stat line. The command name may hold spaces and parentheses, so
// fields are counted from the last ')': state is field 3, utime 14, stime 15.
bool parse_stat_ticks(std::string_view stat, uint64_t& ticks) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return false;
  std::string_view rest = stat.substr(close + 1);
  uint64_t values[2] = {0, 0};
  int field = 2;
  size_t pos = 0;
  while (pos < rest.size() && field < 15) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    if (field == 14 || field == 15) {
      auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + end, values[field - 14]);
      if (ec != std::errc()) return false;
    }
    pos = end;
  }
  if (field < 15) return false;
  ticks = values[0] + values[1];
  return true;
}

}  // namespace

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t process_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1'000'000u + static_cast<uint64_t>(tv.tv_usec);
  };
  return (us(ru.ru_utime) + us(ru.ru_stime)) * 1000u;
}

uint64_t ticks_to_ns(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  return ticks * (1'000'000'000u / static_cast<uint64_t>(hz > 0 ? hz : 100));
}

uint64_t process_rss_bytes(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::string s = read_small_file(path.c_str());
  size_t at = s.find("VmRSS:");
  if (at == std::string::npos) return 0;
  uint64_t kb = 0;
  const char* p = s.data() + at + 6;
  while (*p == ' ' || *p == '\t') ++p;
  std::from_chars(p, s.data() + s.size(), kb);
  return kb * 1024;
}

process_sample sample_process(int pid) {
  process_sample out;
  out.wall_ns = monotonic_ns();
  std::string base = "/proc/" + std::to_string(pid);
  if (!parse_stat_ticks(read_small_file((base + "/stat").c_str()), out.cpu_ticks)) return out;
  if (DIR* d = opendir((base + "/task").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      task_cpu t;
      t.tid = std::atoi(e->d_name);
      if (parse_stat_ticks(read_small_file((base + "/task/" + e->d_name + "/stat").c_str()),
                           t.ticks))
        out.tasks.push_back(t);
    }
    closedir(d);
  }
  out.rss_bytes = process_rss_bytes(pid);
  out.ok = true;
  return out;
}

machine_sample sample_machine() {
  machine_sample m;
  std::string s = read_small_file("/proc/stat");
  if (s.compare(0, 4, "cpu ") != 0) return m;
  // cpu  user nice system idle iowait irq softirq steal ...
  uint64_t v[8] = {};
  const char* p = s.data() + 4;
  const char* end = s.data() + s.find('\n');
  for (uint64_t& x : v) {
    while (p < end && *p == ' ') ++p;
    auto [next, ec] = std::from_chars(p, end, x);
    if (ec != std::errc()) return m;
    p = next;
  }
  m.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  m.irq_ticks = v[5] + v[6];
  m.total_ticks = m.busy_ticks + v[3] + v[4];
  m.ok = true;
  return m;
}

process_usage usage_between(const process_sample& a, const process_sample& b) {
  process_usage u;
  if (!a.ok || !b.ok || b.wall_ns <= a.wall_ns) return u;
  u.wall_s = static_cast<double>(b.wall_ns - a.wall_ns) / 1e9;
  u.cpu_s = static_cast<double>(ticks_to_ns(b.cpu_ticks - a.cpu_ticks)) / 1e9;
  for (const task_cpu& tb : b.tasks) {
    uint64_t before = 0;
    for (const task_cpu& ta : a.tasks)
      if (ta.tid == tb.tid) before = ta.ticks;
    double share = static_cast<double>(ticks_to_ns(tb.ticks - before)) / 1e9 / u.wall_s;
    if (share > u.busiest_share) u.busiest_share = share;
    if (share > 0.05) ++u.busy_threads;
  }
  return u;
}

group_usage group_usage_between(const std::vector<process_sample>& a,
                                const std::vector<process_sample>& b) {
  group_usage g;
  if (a.empty() || a.size() != b.size()) return g;
  g.ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].ok || !b[i].ok || b[i].wall_ns <= a[i].wall_ns) g.ok = false;
    process_usage u = usage_between(a[i], b[i]);
    g.cpu_s.push_back(u.cpu_s);
    g.total.cpu_s += u.cpu_s;
    g.total.wall_s = std::max(g.total.wall_s, u.wall_s);
    g.total.busiest_share = std::max(g.total.busiest_share, u.busiest_share);
    g.total.busy_threads += u.busy_threads;
  }
  return g;
}

}  // namespace rc::load
