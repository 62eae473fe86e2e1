// PLACEHOLDER copy of the frozen interface (I10-SPEC.md, owner: process); replaced by the
// process part's header on merge.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/reactor.h"
#include "core/unique_function.h"

namespace rc {
struct spawn_options {
  std::vector<std::string> argv;                               // argv[0] searched in PATH if no '/'
  std::vector<std::pair<std::string, std::string>> env;        // added to (override) ringcast's environ
  std::string cwd;                                             // "" = ringcast's
};
struct spawned_process { int pid = -1, pidfd = -1, stdin_fd = -1, stdout_fd = -1, stderr_fd = -1; };
bool spawn_process(const spawn_options& o, spawned_process& out, std::string& error);

class child_process {
 public:
  static std::unique_ptr<child_process> create(reactor& r, const spawned_process& p,
                                               unique_function<void(int wait_status)> on_exit);
  void terminate(uint32_t grace_ms);
  void kill_now();
  int pid() const; bool running() const;
};
class pipe_reader {
 public:
  static std::unique_ptr<pipe_reader> create(reactor& r, int fd,
      unique_function<void(std::string_view bytes)> on_data,   // never called after destruction
      unique_function<void(int err)> on_end,                  // 0 = EOF; once
      size_t chunk_bytes = 65536);
  void pause(); void resume();
};
class pipe_writer {
 public:
  static std::unique_ptr<pipe_writer> create(reactor& r, int fd,
      unique_function<void(int err)> on_error);               // EPIPE etc.; once
  void write(std::string_view bytes);  // copied, queued, written in order
  size_t queued_bytes() const;
  void close_after_flush();            // then closes the fd (the child sees EOF on stdin)
};
}
