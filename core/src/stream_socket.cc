#include "core/stream_socket.h"

#include <sys/socket.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/assert.h"
#include "core/uring.h"

namespace rc {
namespace {

// One sendmsg carries at most this many slices and bytes. The kernel copies what fits in the
// socket buffer and waits for room for the rest, so a larger batch gains nothing and holds more
// references; the cap also bounds the iovec array each busy socket carries.
constexpr size_t iov_max = 64;
constexpr size_t send_batch_bytes_max = 256 * 1024;

}  // namespace

// A slice of a shared buffer. The socket's own bytes that must go out between slices are copied
// into a shared buffer of their own (rare: a control frame while a fan-out backlog is queued),
// which keeps this entry small and cheap to move on the fan-out path.
struct send_segment {
  shared_buffer buf;
  uint32_t offset = 0;
  uint32_t len = 0;
};

struct segment_queue {
  // A fan-out publication puts one slice on every subscriber's queue in the same turn, and they
  // all drain a little later: the pool holds enough queues for a thousand subscribers so that
  // the next publication finds them warm (about 1.6 KiB each at the initial size, 5 MiB per
  // shard at worst; a queue that held a larger backlog gives its memory back instead).
  static constexpr size_t pool_max = 1024;
  static constexpr size_t items_initial = 32;
  static constexpr size_t items_kept_max = 256;

  std::vector<send_segment> items;
  size_t head = 0;
  iovec iov[iov_max];
  msghdr msg{};

  bool empty() const { return head == items.size(); }
  // Drops sent entries from the front once they are the larger part, so a queue that never
  // quite drains (a subscriber fed as fast as it reads) doesn't grow without bound.
  void compact() {
    if (head == items.size()) {
      items.clear();
      head = 0;
    } else if (head >= 64 && head * 2 >= items.size()) {
      items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(head));
      head = 0;
    }
  }
};

// ---- socket_set ----

socket_set::socket_set(reactor& r) : reactor_(r) {
  r.add_turn_hook([this] { end_of_turn(); });
}

socket_set::~socket_set() = default;

std::string socket_set::register_fds(unsigned slots) {
  RC_ASSERT(fd_slots_ == 0);
  if (slots == 0) return {};
  // Before 6.13 an emptied slot's file was put only when every request issued before the update
  // had completed, oldest first (per-ring resource nodes), and a connection's multishot receive
  // stays pending for its whole life: one idle connection would keep every socket closed after
  // it open in the kernel (no FIN or reset for aborted peers, their buffers held) until it ends.
  utsname u{};
  if (uname(&u) != 0 || !kernel_release_at_least(u.release, 6, 13))
    return std::string("kernel ") + u.release +
           " releases a closed registered socket only when older requests end (fixed in 6.13)";
  int rc = io_uring_register_files_sparse(reactor_.ring().raw(), slots);
  if (rc < 0) return std::string("io_uring_register_files_sparse: ") + strerror(-rc);
  fd_slots_ = slots;
  return {};
}

void socket_set::end_of_turn() {
  while (stream_socket* s = flush_.pop_front()) s->submit_send();
  while (stream_socket* s = buffer_wait_.pop_front())
    if (s->recv_wanted_ && !s->recv_armed_ && s->state_ == stream_socket::state::open)
      s->arm_recv();
  while (stream_socket* s = closed_.pop_front()) s->on_closed();
}

// ---- stream_socket ----

stream_socket::stream_socket(socket_set& set, int fd) : set_(set), fd_(fd) {
  RC_ASSERT(fd >= 0);
  ++set_.open_;
  if (static_cast<unsigned>(fd) < set_.fd_slots_) {
    // One update per connection, synchronous: the slot is in place before any operation names it.
    fixed_ = io_uring_register_files_update(owner().ring().raw(), static_cast<unsigned>(fd), &fd,
                                            1) == 1;
  }
  if (fixed_) {
    ++set_.registered_;
  } else if (set_.fd_slots_ != 0) {
    ++set_.unregistered_;
  }
}

stream_socket::~stream_socket() {
  // REQUIRES: on_closed() has been called (nothing in flight references this object).
  RC_ASSERT(state_ == state::closed);
}

void stream_socket::arm_recv() {
  io_uring_sqe* sqe = owner().ring().get_sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  use_slot(sqe);
  sqe->buf_group = owner().buffers().group_id();
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_recv));
  recv_armed_ = true;
}

void stream_socket::start_receiving() {
  if (state_ != state::open || eof_seen_) return;
  recv_wanted_ = true;
  if (!recv_armed_) arm_recv();
}

void stream_socket::pause_receiving() {
  recv_wanted_ = false;
  list_node<buffer_wait_tag>::unlink();
  if (recv_armed_ && !recv_cancel_sent_) {
    io_uring_sqe* sqe = owner().ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, op_recv), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
    recv_cancel_sent_ = true;
  }
}

void stream_socket::on_completion(uint8_t op, int32_t res, uint32_t flags) {
  if (op == op_recv) {
    on_recv(res, flags);
  } else {
    RC_ASSERT(op == op_send);
    on_send(res);
  }
  maybe_finish_close();
}

void stream_socket::on_recv(int32_t res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    recv_armed_ = false;
    recv_cancel_sent_ = false;
  }
  if (res > 0) {
    RC_ASSERT(flags & IORING_CQE_F_BUFFER);
    auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    bytes_received_ += static_cast<uint64_t>(res);
    // Data arriving after close_after_flush() is read and dropped (see the header).
    if (state_ == state::open) on_data(owner().buffers().buffer(bid), static_cast<size_t>(res));
    owner().buffers().recycle(bid);
    if (!recv_armed_ && recv_wanted_ && (state_ == state::open || state_ == state::lingering))
      arm_recv();
    return;
  }
  if (res == -ENOBUFS) {
    // Not an error: the shard is out of receive buffers. Re-arm once buffers were recycled.
    if (recv_wanted_ && !recv_armed_ && (state_ == state::open || state_ == state::lingering)) {
      owner().note_recv_buffer_wait();
      set_.buffer_wait_.push_back(*this);
    }
    return;
  }
  if (res == -ECANCELED) {
    if (!recv_armed_ && recv_wanted_ && state_ == state::open) arm_recv();  // paused, resumed
    return;
  }
  // 0: orderly shutdown by the peer; < 0: the connection failed (ECONNRESET, ETIMEDOUT, ...).
  eof_seen_ = true;
  recv_wanted_ = false;
  switch (state_) {
    case state::open:
      on_eof(res == 0 ? 0 : -res);
      break;
    case state::flushing:
      if (res < 0) abort();  // the peer is gone: nobody will read the rest
      break;
    case state::lingering:
      state_ = state::closing;
      break;
    default:
      break;
  }
}

void stream_socket::append_shared(const shared_buffer& buf, uint32_t offset, uint32_t len) {
  append_shared(shared_buffer(buf), offset, len);
}

void stream_socket::append_shared(shared_buffer&& buf, uint32_t offset, uint32_t len) {
  if ((state_ != state::open && state_ != state::flushing) || len == 0) return;
  RC_ASSERT(static_cast<uint64_t>(offset) + len <= buf.size());
  if (!segments_) take_segments();
  if (!out_.empty()) move_out_to_segments();
  segments_->items.push_back(send_segment{std::move(buf), offset, len});
  segment_bytes_ += len;
  if (state_ == state::open) mark_flush();
}

void stream_socket::move_out_to_segments() {
  auto len = static_cast<uint32_t>(out_.size());
  segments_->items.push_back(send_segment{shared_buffer::copy_of(out_.view()), 0, len});
  segment_bytes_ += len;
  out_.clear();
}

void stream_socket::take_segments() {
  auto& pool = set_.queue_pool_;
  if (pool.empty()) {
    segments_ = std::make_unique<segment_queue>();
    segments_->items.reserve(segment_queue::items_initial);
  } else {
    segments_ = std::move(pool.back());
    pool.pop_back();
  }
}

void stream_socket::give_back_segments() {
  if (!segments_) return;
  segments_->items.clear();
  segments_->head = 0;
  segment_bytes_ = 0;
  if (set_.queue_pool_.size() < segment_queue::pool_max &&
      segments_->items.capacity() <= segment_queue::items_kept_max) {
    set_.queue_pool_.push_back(std::move(segments_));
  } else {
    segments_.reset();
  }
}

void stream_socket::flush() {
  if (state_ != state::open) {
    if (state_ != state::flushing) out_.clear();
    return;
  }
  mark_flush();
}

void stream_socket::mark_flush() {
  if (!list_node<flush_list_tag>::linked()) set_.flush_.push_back(*this);
}

bool stream_socket::output_empty() const {
  return out_.empty() && inflight_off_ >= inflight_.size() && (!segments_ || segments_->empty());
}

uint64_t stream_socket::queued_bytes() const {
  return out_.size() + (inflight_.size() - inflight_off_) + segment_bytes_;
}

void stream_socket::submit_send() {
  if (send_in_flight_ || (state_ != state::open && state_ != state::flushing)) return;
  // Also while flushing: a closing stream's backlog is output too, and must leave before the FIN.
  fill_send_queue();
  io_uring_sqe* sqe;
  // Order on the wire: the unsent rest of the single buffer, then the segments (shared slices,
  // with own bytes that were appended before them), then out_.
  if (inflight_off_ >= inflight_.size() && (!segments_ || segments_->empty())) {
    if (out_.empty()) {
      if (state_ == state::flushing) enter_lingering();
      return;
    }
    std::swap(out_, inflight_);
    out_.clear();
    inflight_off_ = 0;
  }
  if (inflight_off_ < inflight_.size()) {
    sqe = owner().ring().get_sqe();
    // MSG_WAITALL: io_uring itself continues a short send on a stream socket, so a large
    // response costs one completion, not one per socket-buffer refill.
    io_uring_prep_send(sqe, fd_, inflight_.data() + inflight_off_, inflight_.size() - inflight_off_,
                       MSG_NOSIGNAL | MSG_WAITALL);
    use_slot(sqe);
    sending_segments_ = false;
  } else {
    auto& q = *segments_;
    if (!out_.empty()) move_out_to_segments();
    size_t n = 0, bytes = 0;
    for (size_t i = q.head; i < q.items.size() && n < iov_max && bytes < send_batch_bytes_max;
         ++i, ++n) {
      send_segment& seg = q.items[i];
      q.iov[n].iov_base = const_cast<char*>(seg.buf.data() + seg.offset);
      q.iov[n].iov_len = seg.len;
      bytes += seg.len;
    }
    q.msg = msghdr{};
    q.msg.msg_iov = q.iov;
    q.msg.msg_iovlen = n;
    sqe = owner().ring().get_sqe();
    io_uring_prep_sendmsg(sqe, fd_, &q.msg, MSG_NOSIGNAL | MSG_WAITALL);
    use_slot(sqe);
    sending_segments_ = true;
  }
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_send));
  send_in_flight_ = true;
}

void stream_socket::on_send(int32_t res) {
  send_in_flight_ = false;
  if (res < 0) {
    // EPIPE, ECONNRESET, ECANCELED (we aborted): the rest will never be delivered.
    out_.reset();
    inflight_.reset();
    inflight_off_ = 0;
    give_back_segments();
    if (state_ == state::open) {
      on_eof(-res);
    } else if (state_ == state::flushing) {
      abort();
    }
    return;
  }
  bytes_sent_ += static_cast<uint64_t>(res);
  auto left = static_cast<size_t>(res);
  if (sending_segments_) {
    auto& q = *segments_;
    while (left > 0 && q.head < q.items.size()) {
      send_segment& seg = q.items[q.head];
      size_t take = left < seg.len ? left : seg.len;
      seg.offset += static_cast<uint32_t>(take);
      seg.len -= static_cast<uint32_t>(take);
      segment_bytes_ -= take;
      left -= take;
      if (seg.len == 0) {
        seg.buf = shared_buffer();
        ++q.head;
      }
    }
    q.compact();
  } else {
    inflight_off_ += static_cast<uint32_t>(left);
  }
  if (state_ == state::open || state_ == state::flushing) fill_send_queue();
  if (!output_empty()) {
    submit_send();
    return;
  }
  // Drained: give the memory back; an idle connection holds no buffers.
  inflight_.reset();
  inflight_off_ = 0;
  out_.reset();
  give_back_segments();
  if (state_ == state::open) {
    on_drained();
  } else if (state_ == state::flushing) {
    enter_lingering();
  }
}

void stream_socket::close_after_flush(uint32_t linger_ms) {
  if (state_ != state::open) return;
  state_ = state::flushing;
  linger_ms_ = linger_ms;
  fill_send_queue();  // the owner's backlog counts as queued output
  if (!send_in_flight_ && output_empty()) {
    enter_lingering();
  } else {
    mark_flush();
  }
}

void stream_socket::enter_lingering() {
  state_ = state::lingering;
  list_node<flush_list_tag>::unlink();
  // A plain shutdown(2), not IORING_OP_SHUTDOWN: io_uring always runs that one in an io-wq
  // worker, which looks the fd number up only when it gets to it. By then our close may have
  // run and accept may have handed the same number to a new connection, which would be shut
  // down instead (seen as EPIPE on its first response). One syscall per graceful close.
  ::shutdown(fd_, SHUT_WR);
  if (eof_seen_ || (!recv_armed_ && !recv_wanted_)) {
    state_ = state::closing;  // nothing to wait for
    return;
  }
  recv_wanted_ = true;  // keep draining what the peer still sends
  linger_timer_ = std::make_unique<timer>();
  linger_timer_->bind<stream_socket, &stream_socket::on_linger_timeout>(this);
  owner().arm_after_ms(*linger_timer_, linger_ms_);
}

void stream_socket::abort() {
  if (state_ == state::closing || state_ == state::closed) return;
  state_ = state::closing;
  maybe_finish_close();
}

void stream_socket::maybe_finish_close() {
  if (state_ != state::closing) return;
  recv_wanted_ = false;
  if (linger_timer_) owner().cancel_timer(*linger_timer_);
  list_node<flush_list_tag>::unlink();
  list_node<buffer_wait_tag>::unlink();
  if ((recv_armed_ || send_in_flight_) && !cancel_all_sent_) {
    // One cancel for everything in flight on this fd; each answers with -ECANCELED.
    io_uring_sqe* sqe = owner().ring().get_sqe();
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
    cancel_all_sent_ = true;
  }
  if (recv_armed_ || send_in_flight_) return;
  state_ = state::closed;
  io_uring_sqe* sqe;
  if (fixed_) {
    // Empty the slot first: SQEs are issued in order, so when the number is free for accept to
    // hand out again, its slot is free too. (A direct close drops only the table's reference.)
    sqe = owner().ring().get_sqe();
    io_uring_prep_close_direct(sqe, static_cast<unsigned>(fd_));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
    fixed_ = false;
    --set_.registered_;
  }
  sqe = owner().ring().get_sqe();
  io_uring_prep_close(sqe, fd_);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, ignored_user_data);
  out_.reset();
  inflight_.reset();
  give_back_segments();
  --set_.open_;
  set_.closed_.push_back(*this);
}

}  // namespace rc
