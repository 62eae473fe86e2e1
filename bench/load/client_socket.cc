#include "load/client_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "base/assert.h"

namespace rc::load {

client_socket_set::client_socket_set(reactor& r) : reactor_(r) {
  r.add_turn_hook([this] { end_of_turn(); });
}

void client_socket_set::end_of_turn() {
  if (before_flush_) before_flush_();
  while (client_socket* s = flush_.pop_front()) s->submit_send();
  while (client_socket* s = buffer_wait_.pop_front())
    if (s->recv_wanted_ && !s->recv_armed_ && s->state_ == client_socket::state::open)
      s->arm_recv();
  while (client_socket* s = closed_.pop_front()) s->on_closed();
}

client_socket::client_socket(client_socket_set& set, int fd) : set_(set), fd_(fd) {
  RC_ASSERT(fd >= 0);
  ++set_.open_;
}

client_socket::~client_socket() {
  // REQUIRES: on_closed() has been called (nothing in flight references this object).
  RC_ASSERT(state_ == state::closed);
}

void client_socket::start_receiving() {
  if (state_ != state::open) return;
  recv_wanted_ = true;
  if (!recv_armed_) arm_recv();
}

void client_socket::arm_recv() {
  io_uring_sqe* sqe = owner().ring().get_sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = owner().buffers().group_id();
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_recv));
  recv_armed_ = true;
}

void client_socket::flush() {
  if (state_ != state::open || out_.empty()) return;
  if (!list_node<client_flush_tag>::linked()) set_.flush_.push_back(*this);
}

void client_socket::submit_send() {
  if (send_in_flight_ || state_ != state::open) return;
  if (inflight_off_ >= inflight_.size()) {
    if (out_.empty()) return;
    std::swap(out_, inflight_);  // both keep their capacity
    out_.clear();
    inflight_off_ = 0;
  }
  io_uring_sqe* sqe = owner().ring().get_sqe();
  // MSG_WAITALL: io_uring continues a short send itself, one completion per send.
  io_uring_prep_send(sqe, fd_, inflight_.data() + inflight_off_, inflight_.size() - inflight_off_,
                     MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_send));
  send_in_flight_ = true;
}

void client_socket::on_completion(uint8_t op, int32_t res, uint32_t flags) {
  if (op == op_recv) {
    on_recv(res, flags);
  } else {
    RC_ASSERT(op == op_send);
    on_send(res);
  }
  maybe_finish_close();
}

void client_socket::on_recv(int32_t res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) recv_armed_ = false;
  if (res > 0) {
    RC_ASSERT(flags & IORING_CQE_F_BUFFER);
    auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (state_ == state::open) on_data(owner().buffers().buffer(bid), static_cast<size_t>(res));
    owner().buffers().recycle(bid);
    if (!recv_armed_ && recv_wanted_ && state_ == state::open) arm_recv();
    return;
  }
  if (res == -ENOBUFS) {
    // Not an error: the shard ran out of receive buffers. Re-arm once buffers were recycled.
    if (recv_wanted_ && state_ == state::open) {
      owner().note_recv_buffer_wait();
      set_.buffer_wait_.push_back(*this);
    }
    return;
  }
  if (res == -ECANCELED && state_ != state::open) return;
  peer_gone(res == 0 ? 0 : -res);
}

void client_socket::on_send(int32_t res) {
  send_in_flight_ = false;
  if (state_ != state::open) return;
  if (res < 0) {
    peer_gone(-res);
    return;
  }
  inflight_off_ += static_cast<uint32_t>(res);
  if (inflight_off_ >= inflight_.size()) {
    inflight_.clear();
    inflight_off_ = 0;
  }
  if (inflight_off_ < inflight_.size() || !out_.empty()) submit_send();
}

void client_socket::peer_gone(int err) {
  recv_wanted_ = false;
  if (state_ != state::open) return;
  on_eof(err);
}

void client_socket::close() {
  if (state_ != state::open) return;
  state_ = state::closing;
  recv_wanted_ = false;
  list_node<client_flush_tag>::unlink();
  list_node<client_wait_tag>::unlink();
  maybe_finish_close();
}

void client_socket::maybe_finish_close() {
  if (state_ != state::closing) return;
  if ((recv_armed_ || send_in_flight_) && !cancel_sent_) {
    // Cancel each operation by its user_data, a hash lookup in the kernel. Cancelling by fd
    // (IORING_ASYNC_CANCEL_FD) scans every pending request of the ring, so closing 10,000
    // connections that way costs 10,000 scans of 10,000 requests: seconds of CPU.
    for (op_code op : {op_recv, op_send}) {
      if (op == op_recv ? !recv_armed_ : !send_in_flight_) continue;
      io_uring_sqe* sqe = owner().ring().get_sqe();
      io_uring_prep_cancel64(sqe, make_user_data(this, op), 0);
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_sqe_set_data64(sqe, ignored_user_data);
    }
    cancel_sent_ = true;
  }
  if (recv_armed_ || send_in_flight_) return;
  state_ = state::closed;
  io_uring_sqe* sqe = owner().ring().get_sqe();
  io_uring_prep_close(sqe, fd_);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, ignored_user_data);
  --set_.open_;
  set_.closed_.push_back(*this);
}

}  // namespace rc::load
