// Logging for start-up, shutdown and rare events. Never on a per-request path: the data path
// counts things in metrics instead. Lines go to stderr, prefixed with the level and the shard.
//
// Thread-safety: any thread; each line is written with one write(2), so lines don't interleave.
#pragma once

#include <cstdarg>

namespace rc::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(level l);
level current_level();
// The shard id printed in front of lines from this thread (-1: not a shard thread).
void set_thread_shard(int shard);

[[gnu::format(printf, 2, 3)]] void write(level l, const char* fmt, ...);

}  // namespace rc::log

#define RC_LOG(lvl, ...)                                                         \
  do {                                                                           \
    if (static_cast<int>(::rc::log::level::lvl) >=                               \
        static_cast<int>(::rc::log::current_level()))                            \
      ::rc::log::write(::rc::log::level::lvl, __VA_ARGS__);                      \
  } while (0)
#define RC_DEBUG(...) RC_LOG(debug, __VA_ARGS__)
#define RC_INFO(...) RC_LOG(info, __VA_ARGS__)
#define RC_WARN(...) RC_LOG(warn, __VA_ARGS__)
#define RC_ERROR(...) RC_LOG(error, __VA_ARGS__)
