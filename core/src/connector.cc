#include "core/connector.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/assert.h"

namespace rc {

// One connect slot. It stays allocated for the connector's lifetime and is reused, so starting a
// connect allocates nothing; the request's addresses live here because the kernel reads them
// when the SQE is submitted, at the end of the turn.
class connector::attempt final : public io_handler {
 public:
  explicit attempt(connector& owner) : owner_(owner) {
    deadline_.bind<attempt, &attempt::on_deadline>(this);
  }

  void on_completion(uint8_t, int32_t res, uint32_t) override {
    owner_.reactor_.cancel_timer(deadline_);
    if (res == 0) {
      owner_.finish(*this, fd_, 0);
      return;
    }
    ::close(fd_);
    // A connect we cancelled at its deadline answers -ECANCELED: that is a timeout.
    int error = timed_out_ && res == -ECANCELED ? ETIMEDOUT : -res;
    if (timed_out_) ++owner_.stats_.timed_out;
    owner_.finish(*this, -1, error);
  }

  void on_deadline() {
    timed_out_ = true;
    io_uring_sqe* sqe = owner_.reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, 1), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }

  connector& owner_;
  request req_;
  int fd_ = -1;
  bool timed_out_ = false;
  timer deadline_;
};

connector::connector(reactor& r, const connector_options& opts) : reactor_(r), opts_(opts) {
  RC_ASSERT(opts.in_flight_max > 0);
  attempts_.reserve(opts.in_flight_max);
  for (uint32_t i = 0; i < opts.in_flight_max; ++i) {
    attempts_.push_back(std::make_unique<attempt>(*this));
    free_.push_back(attempts_.back().get());
  }
}

connector::~connector() {
  // REQUIRES: idle(); an attempt in flight is referenced by the kernel.
  RC_ASSERT(idle());
}

void connector::connect(const sockaddr* remote, socklen_t remote_len, const sockaddr* source,
                        socklen_t source_len, done_fn done) {
  RC_ASSERT(remote_len <= sizeof(sockaddr_storage) && source_len <= sizeof(sockaddr_storage));
  RC_ASSERT(!source || source->sa_family == remote->sa_family);
  request req;
  std::memcpy(&req.remote, remote, remote_len);
  req.remote_len = remote_len;
  if (source) {
    std::memcpy(&req.source, source, source_len);
    req.source_len = source_len;
  }
  req.done = std::move(done);
  queue_.push_back(std::move(req));
  start_queued();
}

void connector::start_queued() {
  while (!queue_.empty() && !free_.empty()) {
    attempt* a = free_.back();
    free_.pop_back();
    request req = std::move(queue_.front());
    queue_.pop_front();
    start(*a, std::move(req));
  }
}

void connector::fail_later(reactor& r, done_fn done, int error) {
  r.post(r.shard_id(), [done = std::move(done), error]() mutable { done(-1, error); });
}

void connector::start(attempt& a, request&& req) {
  ++stats_.started;
  int family = req.remote.ss_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  int error = fd < 0 ? errno : 0;
  if (error == 0 && opts_.nodelay == tcp_nodelay::on &&
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    error = errno;
  if (error == 0 && req.source_len > 0) {
    // Let connect() choose the port (see the header). Without it, every bind to port 0 would
    // reserve a port of that source IP for good, whatever the destination.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&req.source), req.source_len) != 0)
      error = errno;
  }
  if (error != 0) {
    if (fd >= 0) ::close(fd);
    ++stats_.failed;
    free_.push_back(&a);
    fail_later(reactor_, std::move(req.done), error);
    return;
  }
  a.req_ = std::move(req);
  a.fd_ = fd;
  a.timed_out_ = false;
  ++in_flight_;
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&a.req_.remote),
                        a.req_.remote_len);
  io_uring_sqe_set_data64(sqe, make_user_data(&a, 1));
  reactor_.arm_after_ms(a.deadline_, opts_.timeout_ms);
}

void connector::finish(attempt& a, int fd, int error) {
  --in_flight_;
  if (fd >= 0) {
    ++stats_.connected;
  } else {
    ++stats_.failed;
  }
  done_fn done = std::move(a.req_.done);
  a.fd_ = -1;
  free_.push_back(&a);
  // Start the next one first: the callback may destroy what it likes, but not the connector.
  start_queued();
  done(fd, error);
}

void connector::cancel_all() {
  std::deque<request> queued;
  queued.swap(queue_);
  for (request& r : queued) {
    ++stats_.failed;
    r.done(-1, ECANCELED);
  }
  for (auto& a : attempts_) {
    if (a->fd_ < 0) continue;
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(a.get(), 1), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }
}

}  // namespace rc
