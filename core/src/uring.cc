#include "core/uring.h"

#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/assert.h"

namespace rc {
namespace {

// Why io_uring_queue_init failed, in words an operator can act on.
std::string explain_setup_error(int err) {
  std::string msg = std::string("io_uring is unavailable: ") + strerror(err) + ". ";
  int disabled = -1;
  if (FILE* f = fopen("/proc/sys/kernel/io_uring_disabled", "r")) {
    if (fscanf(f, "%d", &disabled) != 1) disabled = -1;
    fclose(f);
  }
  switch (err) {
    case EPERM:
    case EACCES:
      if (disabled == 2)
        return msg + "The kernel has io_uring disabled (kernel.io_uring_disabled=2). Fix: "
                     "sysctl -w kernel.io_uring_disabled=0";
      if (disabled == 1)
        return msg + "kernel.io_uring_disabled=1 allows io_uring only for the group in "
                     "kernel.io_uring_group. Fix: sysctl -w kernel.io_uring_disabled=0, or run "
                     "ringcast in that group";
      return msg + "A seccomp filter blocks io_uring_setup (Docker's and containerd's default "
                   "profiles do). Fix: run the container with a seccomp profile that allows "
                   "io_uring_setup, io_uring_enter and io_uring_register (see tuning/README.md)";
    case ENOSYS:
      return msg + "This kernel was built without io_uring, or a seccomp filter answers ENOSYS. "
                   "ringcast needs Linux 6.0 or newer with CONFIG_IO_URING=y";
    case ENOMEM:
      return msg + "The locked-memory limit is too low for the rings (kernels before 5.12 "
                   "charge rings to RLIMIT_MEMLOCK). Fix: ulimit -l unlimited, or LimitMEMLOCK= "
                   "in the systemd unit";
    default:
      return msg + "See tuning/README.md (io_uring requirements)";
  }
}

}  // namespace

uring::~uring() {
  if (initialised_) io_uring_queue_exit(&ring_);
}

std::string uring::init(const uring_options& opts) {
  RC_ASSERT(!initialised_);
  // Fastest first; each step drops what an older kernel rejects with EINVAL.
  const unsigned ladders[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
          IORING_SETUP_SUBMIT_ALL,                                                   // 6.1
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,  // 6.0
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,                           // 5.19
      0,
  };
  int err = EINVAL;
  for (unsigned flags : ladders) {
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = opts.cq_entries;
    int rc = io_uring_queue_init_params(opts.sq_entries, &ring_, &p);
    if (rc == 0) {
      initialised_ = true;
      flags_ = flags;
      // Registering the ring fd saves an fdget/fdput on every io_uring_enter (5.18+);
      // failure only costs that.
      io_uring_register_ring_fd(&ring_);
      return {};
    }
    err = -rc;
    if (err != EINVAL) break;
  }
  return explain_setup_error(err);
}

std::string uring::describe_flags() const {
  std::string s;
  auto add = [&](unsigned bit, const char* name) {
    if (flags_ & bit) s += s.empty() ? name : std::string("|") + name;
  };
  add(IORING_SETUP_SINGLE_ISSUER, "single_issuer");
  add(IORING_SETUP_DEFER_TASKRUN, "defer_taskrun");
  add(IORING_SETUP_COOP_TASKRUN, "coop_taskrun");
  add(IORING_SETUP_SUBMIT_ALL, "submit_all");
  return s.empty() ? "none" : s;
}

io_uring_sqe* uring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    ++sq_full_flushes_;
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void uring::submit_nowait() {
  ++submits_;
  int rc;
  do rc = io_uring_submit_and_get_events(&ring_);
  while (rc == -EINTR);
  // Other errors (EBUSY under CQ overflow pressure) resolve by reaping; the loop reaps next.
}

void uring::submit_and_wait(int64_t timeout_ns) {
  ++submits_;
  io_uring_cqe* cqe = nullptr;
  if (timeout_ns < 0) {
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    (void)rc;  // EINTR and ETIME just end the wait; the loop re-evaluates.
    return;
  }
  __kernel_timespec ts;
  ts.tv_sec = timeout_ns / 1'000'000'000;
  ts.tv_nsec = timeout_ns % 1'000'000'000;
  int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  (void)rc;
}

bool kernel_release_at_least(std::string_view release, int major, int minor) {
  int ma = 0, mi = 0;
  std::string r(release);
  if (std::sscanf(r.c_str(), "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

std::string probe_uring(uring_support& out) {
  utsname u;
  if (uname(&u) == 0) out.kernel = u.release;
  int major = 0, minor = 0;
  std::sscanf(out.kernel.c_str(), "%d.%d", &major, &minor);
  auto at_least = [&](int ma, int mi) { return major > ma || (major == ma && minor >= mi); };

  io_uring ring;
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) return explain_setup_error(-rc);
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  auto has = [&](int op) { return probe && io_uring_opcode_supported(probe, op); };
  out.ext_arg = ring.features & IORING_FEAT_EXT_ARG;
  out.cqe_skip = ring.features & IORING_FEAT_CQE_SKIP;
  out.msg_ring = has(IORING_OP_MSG_RING);
  // Multishot variants are flags, not opcodes: the probe can't see them, the version can.
  out.multishot_accept = has(IORING_OP_ACCEPT) && at_least(5, 19);
  out.multishot_recv = has(IORING_OP_RECV) && at_least(6, 0);
  out.cancel_fd = has(IORING_OP_ASYNC_CANCEL) && at_least(5, 19);
  out.buf_ring = at_least(5, 19);
  if (probe) io_uring_free_probe(probe);
  io_uring_queue_exit(&ring);

  std::string missing;
  auto need = [&](bool ok, const char* what) {
    if (!ok) missing += missing.empty() ? what : std::string(", ") + what;
  };
  need(out.multishot_recv, "multishot recv (6.0)");
  need(out.multishot_accept, "multishot accept (5.19)");
  need(out.buf_ring, "provided buffer rings (5.19)");
  need(out.msg_ring, "MSG_RING (5.18)");
  need(out.cancel_fd, "cancel by fd (5.19)");
  need(out.ext_arg, "EXT_ARG waits (5.11)");
  need(out.cqe_skip, "CQE_SKIP_SUCCESS (5.17)");
  if (missing.empty()) return {};
  return "io_uring on kernel " + out.kernel + " lacks " + missing +
         ". ringcast needs Linux 6.0 or newer (6.1+ recommended)";
}

}  // namespace rc
