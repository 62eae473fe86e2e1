// child_process: a pidfd polled on the reactor's io_uring, reaped with waitid(P_PIDFD).
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/process.h"
#include "core/timer_wheel.h"

namespace rc {

// The part the kernel may still reference (the POLL_ADD on the pidfd): it outlives the
// child_process as an orphan until that completion arrives.
struct child_process::state final : io_handler, orphan {
  reactor& r;
  int pid;
  int pidfd;
  unique_function<void(int)> on_exit;
  timer kill_timer;
  bool poll_in_flight = false;
  bool reaped = false;
  bool detached = false;     // the child_process is gone
  bool dispatching = false;  // inside on_exit

  state(reactor& re, int p, int fd, unique_function<void(int)> cb)
      : r(re), pid(p), pidfd(fd), on_exit(std::move(cb)) {
    kill_timer.bind<state, &state::on_grace_over>(this);
  }
  ~state() override {
    // Only at reactor teardown can a child still be unreaped here (its SIGKILL did not end it in
    // the reactor's grace period): wait for it now, so no zombie is left behind.
    if (!reaped && pidfd >= 0) {
      signal_group(SIGKILL);
      int status = 0;
      try_reap(0, status);
    }
    if (pidfd >= 0) ::close(pidfd);
  }
  // The POLL_ADD in flight references only the pidfd, not this memory.
  bool free_at_teardown() const override { return true; }

  void signal_group(int sig) {
    // The group's leader is not reaped yet, so its pid still names this group.
    if (!reaped) ::kill(-pid, sig);
  }
  void on_grace_over() { signal_group(SIGKILL); }

  void arm_poll() {
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_poll_add(sqe, pidfd, POLLIN);
    io_uring_sqe_set_data64(sqe, make_user_data(this, 0));
    poll_in_flight = true;
  }

  // Returns true when the child was reaped (status set).
  bool try_reap(int options, int& status) {
    siginfo_t info{};
    for (;;) {
      int rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                      WEXITED | options);
      if (rc == 0) break;
      if (errno == EINTR) continue;
      // ECHILD: someone else reaped it; report it as killed (the status is lost).
      reaped = true;
      status = SIGKILL;
      return true;
    }
    if (info.si_pid == 0) return false;  // WNOHANG and still running
    reaped = true;
    status = wait_status_of(info.si_code, info.si_status);
    return true;
  }

  void on_completion(uint8_t, int32_t res, uint32_t) override {
    poll_in_flight = false;
    if (reaped) {
      if (detached) delete this;
      return;
    }
    (void)res;  // readable, or an error: either way ask waitid
    siginfo_t peek{};
    // The leader exited: its zombie still pins the group id, so whatever it left behind in its
    // group can be killed safely before the reap.
    if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &peek,
               WEXITED | WNOHANG | WNOWAIT) == 0 &&
        peek.si_pid != 0)
      ::kill(-pid, SIGKILL);
    int status = 0;
    if (!try_reap(WNOHANG, status)) {
      arm_poll();
      return;
    }
    r.cancel_timer(kill_timer);
    if (detached) {  // an orphan: nobody to tell
      delete this;
      return;
    }
    if (!on_exit) return;
    dispatching = true;
    on_exit(status);
    dispatching = false;
    if (detached) finish_detached();
  }

  // The child_process is gone and no callback is running. A running child is killed (its whole
  // group) and left to the pidfd poll, which reaps it with WNOHANG when it has died: never a
  // blocking wait on the shard (SIGKILL does not end a task in uninterruptible sleep at once).
  // Until then this is an orphan of the reactor; at reactor teardown its destructor reaps.
  void finish_detached() {
    r.cancel_timer(kill_timer);
    on_exit = nullptr;
    if (!reaped) {
      signal_group(SIGKILL);
      if (!poll_in_flight) arm_poll();
      r.adopt_orphan(*this);
      return;
    }
    if (!poll_in_flight) {
      delete this;
      return;
    }
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, 0), 0);
    io_uring_sqe_set_data64(sqe, ignored_user_data);
    r.adopt_orphan(*this);
  }
};

std::unique_ptr<child_process> child_process::create(reactor& r, const spawned_process& p,
                                                     unique_function<void(int)> on_exit) {
  auto* s = new state(r, p.pid, p.pidfd, std::move(on_exit));
  s->arm_poll();
  return std::unique_ptr<child_process>(new child_process(s));
}

child_process::~child_process() {
  s_->detached = true;
  if (!s_->dispatching) s_->finish_detached();
}

void child_process::terminate(uint32_t grace_ms) {
  if (s_->reaped) return;
  if (grace_ms == 0) {
    kill_now();
    return;
  }
  s_->signal_group(SIGTERM);
  if (!s_->kill_timer.armed()) s_->r.arm_after_ms(s_->kill_timer, grace_ms);
}

void child_process::kill_now() {
  s_->r.cancel_timer(s_->kill_timer);
  s_->signal_group(SIGKILL);
}

int child_process::pid() const {
  return s_->pid;
}

bool child_process::running() const {
  return !s_->reaped;
}

}  // namespace rc
