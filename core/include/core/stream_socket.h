// stream_socket: the I/O half of a TCP connection on a shard: multishot receives from the shard's
// provided buffers, an ordered output queue sent with one send (or sendmsg of iovecs) at a time,
// and a close that waits for every in-flight operation before the fd is closed and the owner is
// told. It knows nothing of HTTP; server/ builds protocol state machines on top.
//
// Receive: data is handed to on_data() straight from the shared receive buffer, which is given
// back to the kernel as soon as on_data() returns: an owner that cannot consume everything copies
// the rest out (partial messages are the only copies). A receive that runs out of buffers
// (-ENOBUFS) is re-armed at the end of the turn, after buffers were recycled, never on a timer.
// pause_receiving() cancels the receive (inbound backpressure: the kernel's socket buffer and TCP
// flow control then hold the peer back); on_data() may still be called for data already
// received; resume_receiving() re-arms.
//
// Send: owners append bytes with out() / append_shared() and call flush(); flushing happens at the
// end of the turn so everything a turn produced for this socket leaves in one operation, and all
// sockets' operations in one submit. One send is in flight at a time, which keeps bytes in order
// without linked SQEs; short sends continue from where they stopped.
//
// Closing: close_after_flush() sends what is queued, then shuts down the write side and keeps
// reading (and dropping) until the peer closes or linger_ms passes. Closing with unread data in
// the kernel's receive queue would make it answer with a reset, which can destroy a response the
// peer has not read yet (the "lingering close" nginx and Apache do). abort() closes at once.
// States: open -> flushing -> lingering -> closing -> closed; abort() jumps to closing.
//
// Registered descriptors (socket_set::register_fds): the shard's ring gets a sparse table of
// fixed files, and each socket whose fd fits in it is also put in the table at the slot of its
// fd number; receives and sends then name the slot (IOSQE_FIXED_FILE), which spares the kernel
// the fd lookup (fget/sock_from_file) on every operation. The plain fd stays open, so everything
// that needs a real descriptor (getpeername, setsockopt, shutdown, TLS) keeps working; the slot
// is emptied (a direct close) just before the fd itself is closed, in the same submission, so a
// number the kernel hands out again finds its slot free. A socket that can't be registered (its
// fd is past the table, or the update fails) works as before with the plain fd.
//
// Lifetime: the owner creates the socket (heap), the socket tells the owner on_closed() once the
// fd is closed and nothing is in flight; only then may the owner destroy it.
//
// Thread-safety: owned by one shard.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "core/intrusive_list.h"
#include "core/reactor.h"
#include "core/shared_buffer.h"

namespace rc {

class stream_socket;
struct flush_list_tag;
struct buffer_wait_tag;
struct closed_list_tag;
struct segment_queue;  // a socket's queue of shared slices (stream_socket.cc)

// Per-shard bookkeeping shared by all stream sockets of a reactor: who must flush this turn, who
// waits for receive buffers, who finished closing. Registers its end-of-turn hook on creation.
class socket_set {
 public:
  explicit socket_set(reactor& r);
  ~socket_set();
  socket_set(const socket_set&) = delete;
  socket_set& operator=(const socket_set&) = delete;

  reactor& owner() { return reactor_; }
  uint64_t open_sockets() const { return open_; }

  // Registers a sparse fixed-file table of `slots` entries with the ring (see the top of the
  // file); sockets created afterwards use it when their fd number fits. Returns an empty string,
  // or why the kernel refused (then nothing changes). Call once, before sockets are made.
  std::string register_fds(unsigned slots);
  unsigned registered_fd_slots() const { return fd_slots_; }
  // Sockets that use a fixed-file slot now, and the ones that could not get one.
  uint64_t registered_sockets() const { return registered_; }
  uint64_t unregistered_sockets() const { return unregistered_; }

 private:
  friend class stream_socket;
  void end_of_turn();

  reactor& reactor_;
  intrusive_list<stream_socket, flush_list_tag> flush_;
  intrusive_list<stream_socket, buffer_wait_tag> buffer_wait_;
  intrusive_list<stream_socket, closed_list_tag> closed_;
  uint64_t open_ = 0;
  unsigned fd_slots_ = 0;
  uint64_t registered_ = 0;
  uint64_t unregistered_ = 0;
  // Drained sockets' segment queues, kept warm for the next burst (fan-out drains and refills
  // every subscriber's queue on every publication); bounded, so idle sockets hold none.
  std::vector<std::unique_ptr<segment_queue>> queue_pool_;
};

class stream_socket : public io_handler,
                      public list_node<flush_list_tag>,
                      public list_node<buffer_wait_tag>,
                      public list_node<closed_list_tag> {
 public:
  stream_socket(socket_set& set, int fd);
  stream_socket(const stream_socket&) = delete;
  stream_socket& operator=(const stream_socket&) = delete;
  virtual ~stream_socket();

  int fd() const { return fd_; }
  reactor& owner() { return set_.reactor_; }

  void start_receiving();
  void pause_receiving();
  void resume_receiving() { start_receiving(); }
  bool receiving() const { return recv_wanted_; }

  // The buffer to append output to; call flush() after appending.
  byte_buffer& out() { return out_; }
  // Queues a slice of a shared buffer after what out() holds (no copy; holds a reference).
  void append_shared(const shared_buffer& buf, uint32_t offset, uint32_t len);
  void append_shared(shared_buffer&& buf, uint32_t offset, uint32_t len);
  // Sends what is queued, at the end of this turn.
  void flush();
  // Bytes queued or in flight, not yet acknowledged as sent by the kernel.
  uint64_t queued_bytes() const;
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }

  // Sends what is queued — including the owner's backlog, pulled through fill_send_queue() — then
  // closes gracefully (see above). Owners append nothing after this call except from
  // fill_send_queue().
  void close_after_flush(uint32_t linger_ms = 2000);
  // Closes now, discarding queued output (cancels in-flight operations).
  void abort();
  bool closing() const { return state_ != state::open; }

 protected:
  // Data received; the bytes are valid only during the call.
  virtual void on_data(const char* data, size_t len) = 0;
  // The peer closed its side (err == 0) or the connection failed (err > 0, an errno).
  virtual void on_eof(int err) = 0;
  // Everything queued has been sent.
  virtual void on_drained() {}
  // Called before each send is prepared and after each completes, also while flushing before a
  // close: an owner that keeps a backlog elsewhere (an outbound_ring) moves the next part of it
  // into the send queue here. Keeping the send queue short keeps control frames close to the head
  // of the line.
  virtual void fill_send_queue() {}
  // The fd is closed and no operation is in flight; the owner may destroy the socket now.
  virtual void on_closed() = 0;

 private:
  friend class socket_set;
  enum op_code : uint8_t { op_recv = 1, op_send = 2 };
  enum class state : uint8_t { open, flushing, lingering, closing, closed };
  // Allocated only while shared slices are queued (from the socket_set's pool).
  void take_segments();
  void move_out_to_segments();
  void give_back_segments();

  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;
  void on_recv(int32_t res, uint32_t flags);
  void on_send(int32_t res);
  void arm_recv();
  void submit_send();
  void enter_lingering();
  void maybe_finish_close();
  void mark_flush();
  bool output_empty() const;
  void on_linger_timeout() { abort(); }
  // An operation on fd_ names the fixed-file slot (the same number) when there is one.
  void use_slot(io_uring_sqe* sqe) const {
    if (fixed_) sqe->flags |= IOSQE_FIXED_FILE;
  }

  socket_set& set_;
  int fd_;
  state state_ = state::open;
  bool recv_wanted_ = false;
  bool recv_armed_ = false;
  bool recv_cancel_sent_ = false;
  bool cancel_all_sent_ = false;
  bool send_in_flight_ = false;
  bool sending_segments_ = false;  // the send in flight came from segments_, not inflight_
  bool eof_seen_ = false;
  bool fixed_ = false;  // fd_ is also registered at slot fd_ of the ring's fixed-file table
  byte_buffer out_;       // appended by the owner, not yet handed to the kernel
  byte_buffer inflight_;  // handed to the kernel (single-buffer sends)
  uint32_t inflight_off_ = 0;
  std::unique_ptr<segment_queue> segments_;  // shared slices and own bytes, in order
  uint64_t segment_bytes_ = 0;               // unsent bytes in segments_
  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
  uint32_t linger_ms_ = 0;
  // Made when lingering starts: every open socket would carry 64 bytes for the end of its life.
  std::unique_ptr<timer> linger_timer_;
};

}  // namespace rc
