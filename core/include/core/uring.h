// uring: one io_uring instance, set up with the fastest flags the kernel accepts.
//
// Set-up tries SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN (6.1+) first and drops flags on EINVAL,
// as Photon does, so the same binary runs on older kernels at some cost. When io_uring is not
// usable at all (disabled by sysctl, blocked by seccomp in a container, too old a kernel, memlock
// limit) init() returns a message that names the cause and the fix; main prints it and exits.
//
// get_sqe() never fails: when the submission queue is full it submits what is queued and
// retries (a full queue means flush, never failure).
//
// With DEFER_TASKRUN, completions are only produced inside io_uring_enter(GETEVENTS): every
// submit here also reaps, and the reactor never spins on the CQ without entering.
//
// Thread-safety: a uring belongs to the thread that created it (SINGLE_ISSUER enforces this).
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace rc {

struct uring_options {
  unsigned sq_entries = 4096;
  unsigned cq_entries = 65536;  // sized so multishot completions never overflow the CQ
};

class uring {
 public:
  uring() = default;
  uring(const uring&) = delete;
  uring& operator=(const uring&) = delete;
  ~uring();

  // Returns an empty string on success, else what went wrong and how to fix it.
  std::string init(const uring_options& opts);

  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }
  bool initialised() const { return initialised_; }
  unsigned setup_flags() const { return flags_; }
  bool defer_taskrun() const { return flags_ & IORING_SETUP_DEFER_TASKRUN; }
  // "single_issuer|defer_taskrun|coop_taskrun" style, for start-up logs and /metrics.
  std::string describe_flags() const;

  // A zeroed SQE; submits queued SQEs first if the queue is full.
  io_uring_sqe* get_sqe();

  // Submits queued SQEs and reaps ready completions without blocking.
  void submit_nowait();
  // Submits queued SQEs and waits for at least one completion, at most timeout_ns (< 0: forever).
  void submit_and_wait(int64_t timeout_ns);

  uint64_t submits() const { return submits_; }
  uint64_t sq_full_flushes() const { return sq_full_flushes_; }

 private:
  io_uring ring_{};
  bool initialised_ = false;
  unsigned flags_ = 0;
  uint64_t submits_ = 0;
  uint64_t sq_full_flushes_ = 0;
};

// Kernel features ringcast needs, probed once at start-up. Each names the kernel that added it.
struct uring_support {
  bool multishot_recv = false;   // IORING_OP_RECV + IORING_RECV_MULTISHOT: 6.0
  bool multishot_accept = false; // IORING_ACCEPT_MULTISHOT: 5.19
  bool buf_ring = false;         // IORING_REGISTER_PBUF_RING: 5.19
  bool msg_ring = false;         // IORING_OP_MSG_RING: 5.18
  bool cancel_fd = false;        // IORING_ASYNC_CANCEL_FD|ALL: 5.19
  bool ext_arg = false;          // IORING_FEAT_EXT_ARG (timeouts on enter): 5.11
  bool cqe_skip = false;         // IORING_FEAT_CQE_SKIP: 5.17
  std::string kernel;            // uname release
};

// Probes with a throw-away ring. Returns an empty string when everything required is there,
// else a message naming what is missing.
std::string probe_uring(uring_support& out);

// Whether a uname release ("6.1.0-18-amd64", "6.13.2") is at least major.minor. An unreadable
// release counts as older.
bool kernel_release_at_least(std::string_view release, int major, int minor);

}  // namespace rc
