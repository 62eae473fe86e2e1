#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace rc::log {
namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
thread_local int t_shard = -1;
constexpr const char* level_names[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
level current_level() { return static_cast<level>(g_level.load(std::memory_order_relaxed)); }
void set_thread_shard(int shard) { t_shard = shard; }

void write(level l, const char* fmt, ...) {
  char line[1024];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                        t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                        ts.tv_nsec / 1000000, level_names[static_cast<int>(l)]);
  if (t_shard >= 0) n += std::snprintf(line + n, sizeof line - n, "[shard %d] ", t_shard);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - n, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace rc::log
