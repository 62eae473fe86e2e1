#include "resolver_lookup.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/assert.h"

namespace rc {

resolver::lookup::lookup(resolver& owner, std::string key, std::vector<std::string> candidates)
    : owner_(&owner),
      reactor_(owner.reactor_),
      key_(std::move(key)),
      candidates_(std::move(candidates)) {
  RC_ASSERT(!candidates_.empty());
  v4_.wanted = owner_->opts_.family != address_family::ipv6;
  v6_.wanted = owner_->opts_.family != address_family::ipv4;
  deadline_.bind<lookup, &lookup::on_timeout>(this);
  const auto& servers = owner_->conf_.nameservers;
  first_server_ = owner_->conf_.rotate ? owner_->rotation_++ % servers.size() : 0;
}

void resolver::lookup::start() {
  start_candidate();
}

void resolver::lookup::cancel() {
  cancelled_ = true;
  waiters_.clear();
  if (ending_) return;  // after_try() sees cancelled_
  if (fd_ >= 0) {
    end_try(0, {});
  } else {
    owner_->retire(*this);
  }
}

void resolver::lookup::start_candidate() {
  for (family* f : {&v4_, &v6_}) {
    f->settled = !f->wanted;
    f->addrs.clear();
  }
  nxdomain_ = false;
  negative_ttl_s_.reset();
  try_ = 0;
  start_try();
}

std::string resolver::lookup::server_name() const {
  return to_string(server_, owner_->opts_.nameserver_port);
}

bool resolver::lookup::open_socket() {
  socklen_t len = 0;
  sockaddr_storage ss = to_sockaddr(server_, owner_->opts_.nameserver_port, &len);
  // Connected: the kernel drops datagrams from anyone but the server, and reports its port
  // unreachable as ECONNREFUSED. A new socket per try gets a new random source port.
  fd_ = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0) return true;
  error_ = errno;
  message_ = "nameserver " + server_name() + ": " + std::strerror(error_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return false;
}

void resolver::lookup::start_try() {
  const auto& servers = owner_->conf_.nameservers;
  const size_t tries = servers.size() * owner_->attempts_;
  for (; try_ < tries; ++try_) {
    server_ = servers[(first_server_ + try_) % servers.size()];
    if (open_socket()) break;
  }
  if (try_ >= tries) {
    finish_candidate();
    return;
  }
  const std::string& name = candidates_[candidate_];
  for (family* f : {&v4_, &v6_}) {
    if (f->settled) continue;
    f->id = owner_->random_id();
    bool built = dns::build_query(name, f->type, f->id, owner_->conf_.edns0, f->query);
    RC_ASSERT(built);  // the resolver only makes candidates that are valid names
    submit_send(*f, f == &v4_ ? op_send_v4 : op_send_v6);
  }
  submit_recv();
  reactor_.arm_after_ms(deadline_, owner_->timeout_ms_);
}

void resolver::lookup::submit_send(family& f, uint8_t op) {
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_send(sqe, fd_, f.query.data(), f.query.size(), 0);
  io_uring_sqe_set_data64(sqe, make_user_data(this, op));
  in_flight_ |= 1u << op;
  ++owner_->stats_.queries_sent;
}

void resolver::lookup::submit_recv() {
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_recv(sqe, fd_, buf_.data(), buf_.size(), 0);
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_recv));
  in_flight_ |= 1u << op_recv;
}

void resolver::lookup::on_completion(uint8_t op, int32_t res, uint32_t) {
  in_flight_ &= static_cast<uint8_t>(~(1u << op));
  if (!owner_) {
    // Orphaned by the resolver's destructor: only the kernel still knew this lookup.
    if (in_flight_ == 0) {
      ::close(fd_);
      delete this;
    }
    return;
  }
  if (ending_) {
    if (in_flight_ == 0) after_try();
    return;
  }
  if (res == -EINTR && op == op_recv) {
    submit_recv();
    return;
  }
  if (res < 0) {
    // ECONNREFUSED: an ICMP port unreachable came back, nothing listens there.
    end_try(-res, "nameserver " + server_name() + ": " + std::strerror(-res));
    return;
  }
  if (op == op_recv) on_datagram(static_cast<size_t>(res));
}

void resolver::lookup::on_datagram(size_t bytes) {
  std::string_view msg(buf_.data(), bytes);
  const std::string& name = candidates_[candidate_];
  bool ours = false;
  for (family* f : {&v4_, &v6_}) {
    if (f->settled) continue;
    dns::answer a;
    dns::parse_status s = dns::parse_answer(msg, name, f->type, f->id, a);
    if (s == dns::parse_status::not_ours) continue;
    ours = true;
    if (s == dns::parse_status::malformed) {
      end_try(EPROTO, "malformed answer from " + server_name() + ": " + std::string(a.error));
      return;
    }
    if (a.rcode == static_cast<uint8_t>(dns::rcode::nxdomain)) {
      // The name does not exist, whatever the type: both families are answered.
      nxdomain_ = true;
      negative_ttl_s_ = a.negative_ttl_s;
      v4_.settled = v6_.settled = true;
      break;
    }
    if (a.rcode != static_cast<uint8_t>(dns::rcode::noerror)) {
      end_try(EAGAIN, "nameserver " + server_name() + " answered " + dns::rcode_name(a.rcode));
      return;
    }
    if (a.truncated && a.addresses.empty()) {
      end_try(EPROTO, "truncated answer without addresses from " + server_name() +
                          " (DNS over TCP is not supported)");
      return;
    }
    f->settled = true;
    f->addrs = std::move(a.addresses);
    f->ttl_s = a.ttl_s;
    if (f->addrs.empty() && a.negative_ttl_s)
      negative_ttl_s_ = std::min(negative_ttl_s_.value_or(UINT32_MAX), *a.negative_ttl_s);
    break;
  }
  if (!ours) ++owner_->stats_.ignored_datagrams;
  if (v4_.settled && v6_.settled) {
    end_try(0, {});
    return;
  }
  submit_recv();
}

void resolver::lookup::on_timeout() {
  ++owner_->stats_.query_timeouts;
  end_try(ETIMEDOUT, "no answer from nameserver " + server_name() + " within " +
                         std::to_string(owner_->timeout_ms_) + " ms");
}

void resolver::lookup::end_try(int error, std::string text) {
  reactor_.cancel_timer(deadline_);
  if (error != 0) {
    error_ = error;
    message_ = std::move(text);
  }
  ending_ = true;
  if (in_flight_ == 0) {
    after_try();
    return;
  }
  cancel_ops();
}

void resolver::lookup::cancel_ops() {
  for (uint8_t op : {op_send_v4, op_send_v6, op_recv}) {
    if (!(in_flight_ & (1u << op))) continue;
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, op), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }
}

bool resolver::lookup::orphan() {
  reactor_.cancel_timer(deadline_);
  owner_ = nullptr;
  waiters_.clear();
  if (in_flight_ == 0) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return false;
  }
  if (!ending_) cancel_ops();
  ending_ = true;
  return true;
}

void resolver::lookup::after_try() {
  ending_ = false;
  ::close(fd_);
  fd_ = -1;
  if (cancelled_) {
    owner_->retire(*this);
    return;
  }
  // A family that answered with addresses is enough: the other one's failure is not worth
  // more tries (servers that drop AAAA queries would otherwise delay every lookup).
  bool have = !v4_.addrs.empty() || !v6_.addrs.empty();
  if ((v4_.settled && v6_.settled) || have) {
    finish_candidate();
    return;
  }
  ++try_;
  start_try();
}

void resolver::lookup::finish_candidate() {
  if (!v4_.addrs.empty() || !v6_.addrs.empty()) {
    result r = result::found(v4_.addrs);
    r.addrs.insert(r.addrs.end(), v6_.addrs.begin(), v6_.addrs.end());
    uint32_t ttl = UINT32_MAX;
    for (const family* f : {&v4_, &v6_})
      if (!f->addrs.empty()) ttl = std::min(ttl, f->ttl_s);
    owner_->finished(*this, std::move(r), ttl);
    return;
  }
  if (v4_.settled && v6_.settled) {
    if (candidate_ + 1 < candidates_.size()) {
      ++candidate_;
      start_candidate();
      return;
    }
    result r = result::failed(ENOENT, nxdomain_ ? "no such name (NXDOMAIN)" : "no addresses");
    owner_->finished(*this, std::move(r), negative_ttl_s_.value_or(UINT32_MAX));
    return;
  }
  owner_->finished(*this, result::failed(error_, message_), UINT32_MAX);
}

}  // namespace rc
