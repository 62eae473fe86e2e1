// client_socket: the I/O half of one load-generator connection: a multishot receive from the
// shard's provided buffers and a send path that allocates nothing in steady state.
//
// Why not core's stream_socket: it gives its output buffers back to the allocator every time
// they drain, which is right for a server holding many idle connections and wrong for a client
// that sends one small message per round trip (an allocation and a free per message). Here the
// two send buffers (one being filled, one in flight) keep their capacity for the connection's
// life. Everything else follows stream_socket: data is handed to on_data() straight from the
// shared receive buffer and given back at once; a receive that ran out of buffers (-ENOBUFS) is
// re-armed at the end of the turn, after buffers were recycled; output appended during a turn
// leaves in one send at the end of the turn, and all sockets' sends in the reactor's one submit;
// one send is in flight at a time, which keeps bytes in order.
//
// Closing is always abrupt (a load generator has nothing left to say): close() cancels what is
// in flight, closes the fd once nothing references it, and calls on_closed() at the end of that
// turn; after that the owner may destroy the socket.
//
// Thread-safety: owned by one shard, like its client_socket_set.
#pragma once

#include <cstdint>

#include "base/byte_buffer.h"
#include "core/intrusive_list.h"
#include "core/reactor.h"
#include "core/unique_function.h"

namespace rc::load {

class client_socket;
struct client_flush_tag;
struct client_wait_tag;
struct client_closed_tag;

// Per-shard bookkeeping: who sends at the end of this turn, who waits for receive buffers, who
// finished closing. Registers its end-of-turn hook on creation.
class client_socket_set {
 public:
  explicit client_socket_set(reactor& r);
  client_socket_set(const client_socket_set&) = delete;
  client_socket_set& operator=(const client_socket_set&) = delete;

  reactor& owner() { return reactor_; }
  uint64_t open_sockets() const { return open_; }

  // Runs at the end of every turn just before the sends are submitted: an owner that produces
  // output on its own schedule (a paced publisher) produces it here, so it leaves in this turn.
  void set_before_flush(unique_function<void()> fn) { before_flush_ = std::move(fn); }

 private:
  friend class client_socket;
  void end_of_turn();

  reactor& reactor_;
  unique_function<void()> before_flush_;
  intrusive_list<client_socket, client_flush_tag> flush_;
  intrusive_list<client_socket, client_wait_tag> buffer_wait_;
  intrusive_list<client_socket, client_closed_tag> closed_;
  uint64_t open_ = 0;
};

class client_socket : public io_handler,
                      public list_node<client_flush_tag>,
                      public list_node<client_wait_tag>,
                      public list_node<client_closed_tag> {
 public:
  // Takes ownership of the connected socket `fd`.
  client_socket(client_socket_set& set, int fd);
  client_socket(const client_socket&) = delete;
  client_socket& operator=(const client_socket&) = delete;
  virtual ~client_socket();

  reactor& owner() { return set_.reactor_; }
  void start_receiving();

  // The buffer to append output to; call flush() after appending.
  byte_buffer& out() { return out_; }
  // Sends what out() holds at the end of this turn.
  void flush();

  // Closes now, discarding unsent output (see the header comment).
  void close();
  bool closed() const { return state_ != state::open; }

 protected:
  // Data received; valid only during the call.
  virtual void on_data(const char* data, size_t len) = 0;
  // The peer closed (err 0) or the connection failed (err an errno). Not called after close().
  virtual void on_eof(int err) = 0;
  // The fd is closed and nothing is in flight; the owner may destroy the socket.
  virtual void on_closed() = 0;

 private:
  friend class client_socket_set;
  enum op_code : uint8_t { op_recv = 1, op_send = 2 };
  enum class state : uint8_t { open, closing, closed };

  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;
  void on_recv(int32_t res, uint32_t flags);
  void on_send(int32_t res);
  void arm_recv();
  void submit_send();
  void peer_gone(int err);
  void maybe_finish_close();

  client_socket_set& set_;
  int fd_;
  state state_ = state::open;
  bool recv_wanted_ = false;
  bool recv_armed_ = false;
  bool send_in_flight_ = false;
  bool cancel_sent_ = false;
  byte_buffer out_;       // being filled this turn
  byte_buffer inflight_;  // handed to the kernel
  uint32_t inflight_off_ = 0;
};

}  // namespace rc::load
