// Listening sockets and the acceptor that turns them into connections.
//
// Every shard has its own listening socket bound to the same address with SO_REUSEPORT, and the
// kernel spreads incoming connections over the group. Sockets are created by the main thread in
// shard order before the shards start, so socket i of the group belongs to shard i — which is
// what the optional CPU-steering program (SO_ATTACH_REUSEPORT_CBPF: pick the socket of the CPU
// that handled the packet) relies on. TCP_NODELAY is set on the listener; Linux copies it to
// accepted sockets, which saves a setsockopt per connection.
//
// acceptor: a multishot accept on one listener. Running out of descriptors (EMFILE/ENFILE) pauses
// accepting for a short while instead of spinning; stop() cancels it and closes the listener.
//
// Thread-safety: open_listener on any thread; an acceptor belongs to its shard.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/reactor.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"

namespace rc {

struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // as given, e.g. "127.0.0.1:8080" or "[::1]:8080"
};

// Parses "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces) into an address. Host names are
// not resolved: an edge server binds to addresses. Returns an error message or empty.
std::string parse_socket_address(std::string_view text, socket_address& out);

// Creates a bound, listening socket with SO_REUSEADDR, SO_REUSEPORT and TCP_NODELAY.
// Returns the fd, or -1 with `error` set.
int open_listener(const socket_address& addr, int backlog, std::string& error);

// Fails when some socket already listens on `addr`: SO_REUSEPORT would otherwise let this process
// join another server's group and take a share of its connections. The message names the address
// and, when /proc shows it, the other process (name and pid). Port 0 always passes. Call before
// open_listener. Returns an error message or empty. (core/src/port_owner.cc)
std::string check_address_free(const socket_address& addr);

// Steers each new connection to the listener of the CPU that received it: listener i of the
// group must belong to the shard pinned to the i-th CPU of `cpus`. Effective when NIC queues
// (RSS/RPS) are aligned with shard CPUs (tuning/irq-affinity). Returns an error or empty.
std::string attach_cpu_steering(int listen_fd, unsigned group_size);

class acceptor final : public io_handler {
 public:
  using on_accept_fn = unique_function<void(int fd)>;

  acceptor(reactor& r, int listen_fd, on_accept_fn on_accept);
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;
  ~acceptor();

  void start();
  // Stops accepting and closes the listener (once the pending accept is cancelled).
  void stop();
  bool stopped() const { return stopping_ && !armed_; }

  uint64_t accepted() const { return accepted_; }
  uint64_t errors() const { return errors_; }

 private:
  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;
  void arm();
  void on_retry() { arm(); }

  reactor& reactor_;
  int fd_;
  on_accept_fn on_accept_;
  bool armed_ = false;
  bool stopping_ = false;
  uint64_t accepted_ = 0;
  uint64_t errors_ = 0;
  timer retry_;
};

// Reads SIGINT, SIGTERM, SIGHUP (reload) and SIGUSR1 (log reopening) through a signalfd on the
// reactor's ring. The signals must be blocked in every thread (shard_group does that) so they are
// only ever delivered here.
class signal_reader final : public io_handler {
 public:
  using on_signal_fn = unique_function<void(int signo)>;
  signal_reader(reactor& r, on_signal_fn fn);
  ~signal_reader();
  // Empty on success, else what went wrong.
  std::string start();
  // Stops reading; the fd is closed once the pending read ends.
  void stop();
  bool stopped() const { return stopping_ && !armed_; }

 private:
  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;
  void arm();

  reactor& reactor_;
  on_signal_fn fn_;
  int fd_ = -1;
  bool armed_ = false;
  bool stopping_ = false;
  unsigned char info_[128];  // one signalfd_siginfo
};

}  // namespace rc
