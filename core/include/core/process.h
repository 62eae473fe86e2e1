// process: child processes and their stdio pipes on a shard's reactor (the jsonrpc upstream's
// workers).
//
// spawn_process() starts a program posix_spawn-style: clone(CLONE_VM | CLONE_VFORK |
// CLONE_PIDFD) on a small dedicated stack, so no page table is copied (fork + pidfd_open where
// that is unavailable); the calling thread waits only until the child execs. Every signal is
// blocked in the calling thread around the clone. Everything that allocates (argv, the
// environment with the overrides applied, the PATH lookup) is done before the clone; the child
// then only makes async-signal-safe calls and writes only its own stack: default dispositions
// (while everything is still blocked), then an empty signal mask, its own process group,
// PR_SET_PDEATHSIG = SIGKILL (and exits at once if its parent already died), every inherited
// descriptor marked close-on-exec, stdin/stdout/stderr on pipes, chdir, execve. A failed chdir
// or execve is written to a CLOEXEC error pipe and reported by spawn_process() itself (false +
// the error text).
//
// PR_SET_PDEATHSIG fires when the *thread* that created the child exits, not the process: spawn
// only on a thread that lives as long as the child (the shard threads do).
//
// child_process waits for the pidfd with an io_uring POLL_ADD, reaps with waitid(P_PIDFD) and
// reports the wait status once. When the child has exited, the rest of its process group is
// killed before it is reaped (a worker's leftovers do not outlive it). Destroying a
// child_process whose child still runs SIGKILLs the group and returns at once (a child stuck in
// uninterruptible sleep must not freeze the shard): the pidfd poll, now a reactor orphan, reaps
// it with WNOHANG when it has died; at reactor teardown one still unreaped is waited for. No
// zombie either way.
//
// pipe_reader / pipe_writer read and write one end of a pipe with IORING_OP_READ / WRITE (the
// descriptor stays blocking; io_uring polls it). Writes go out in order, one operation in flight;
// short writes continue. The process must not die of SIGPIPE (shard threads block it): a write to
// a pipe nobody reads fails with EPIPE.
//
// Lifetime: every object here is safe to destroy at any time on its reactor's thread, including
// from inside its own callbacks. An operation still in flight is cancelled and the memory it uses
// is handed to the reactor as an orphan (core/reactor.h), freed when the completion arrives or
// when the reactor is destroyed. Callbacks never run after destruction.
//
// Thread-safety: spawn_process() may run on any thread (it reads environ: no setenv meanwhile);
// the classes belong to one reactor's thread.
#pragma once

#include <cstddef>
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
  std::vector<std::string> argv;                         // argv[0] searched in PATH if no '/'
  std::vector<std::pair<std::string, std::string>> env;  // added to (override) ringcast's environ
  std::string cwd;                                       // "" = ringcast's
};

struct spawned_process {
  int pid = -1, pidfd = -1, stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
};

// On success `out` holds the child's pid, a pidfd, and the parent's ends of its three pipes (all
// O_CLOEXEC, blocking); the caller owns the descriptors (child_process, pipe_reader and
// pipe_writer take them over). On failure nothing is left open or running.
bool spawn_process(const spawn_options& o, spawned_process& out, std::string& error);

// The wait status (as waitpid reports it) of a waitid siginfo_t: si_code, si_status.
int wait_status_of(int code, int status);

class child_process {
 public:
  // Takes over p.pidfd (not the pipes).
  static std::unique_ptr<child_process> create(reactor& r, const spawned_process& p,
                                               unique_function<void(int wait_status)> on_exit);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  // SIGTERM to the process group now, SIGKILL to the group after grace_ms (0: at once) if the
  // child has not exited by then. Once is enough; later calls do not delay the SIGKILL.
  void terminate(uint32_t grace_ms);
  void kill_now();
  int pid() const;
  bool running() const;  // not yet reaped

  struct state;

 private:
  explicit child_process(state* s) : s_(s) {}
  state* s_;
};

class pipe_reader {
 public:
  static std::unique_ptr<pipe_reader> create(
      reactor& r, int fd,
      unique_function<void(std::string_view bytes)> on_data,  // never called after destruction
      unique_function<void(int err)> on_end,                  // 0 = EOF; once
      size_t chunk_bytes = 65536);
  ~pipe_reader();
  pipe_reader(const pipe_reader&) = delete;
  pipe_reader& operator=(const pipe_reader&) = delete;

  // Stops reading (the read in flight is cancelled; data it already got is still delivered).
  void pause();
  void resume();

  struct state;

 private:
  explicit pipe_reader(state* s) : s_(s) {}
  state* s_;
};

class pipe_writer {
 public:
  static std::unique_ptr<pipe_writer> create(reactor& r, int fd,
                                             unique_function<void(int err)> on_error);  // once
  ~pipe_writer();
  pipe_writer(const pipe_writer&) = delete;
  pipe_writer& operator=(const pipe_writer&) = delete;

  void write(std::string_view bytes);  // copied, queued, written in order; dropped after an error
                                       // or close_after_flush()
  size_t queued_bytes() const;
  void close_after_flush();  // then closes the fd (the child sees EOF on stdin)
  bool closed() const;       // the fd was closed (flushed, or after an error)

  struct state;

 private:
  explicit pipe_writer(state* s) : s_(s) {}
  state* s_;
};

}  // namespace rc
