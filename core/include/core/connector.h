// connector: outgoing TCP connections through io_uring (IORING_OP_CONNECT), optionally from a
// chosen source address, with a cap on connects in flight and a deadline for each.
//
// Why a cap: a client that opens thousands of connections at once overflows the peer's accept
// queue (SYNs are then dropped and retried after a second or more), so connects are started at
// most `in_flight_max` at a time and the rest wait in FIFO order.
//
// Why a source address: one source IP can reach one destination (IP, port) from at most the
// ~28,000 ports of net.ipv4.ip_local_port_range. Spreading connections over several source IPs
// (on loopback, all of 127.0.0.0/8 is local) lifts that limit. The socket is bound to the source
// IP with IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at connect time, when it knows
// the whole 4-tuple, instead of reserving a port per IP at bind time.
//
// Each request ends with exactly one call of its callback, on the reactor's thread, never from
// inside connect(): `fd >= 0, error 0` (the caller owns the connected, blocking socket, with
// TCP_NODELAY set unless asked otherwise), or `fd -1, error` an errno (ECONNREFUSED, ETIMEDOUT
// after the deadline, EADDRNOTAVAIL when the source ran out of ports, EMFILE, ECANCELED after
// cancel_all()).
//
// Thread-safety: a connector belongs to one shard. It must be idle() when destroyed.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "core/reactor.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"

namespace rc {

enum class tcp_nodelay : uint8_t { off, on };

struct connector_options {
  uint32_t in_flight_max = 256;  // connects started and not yet finished
  uint32_t timeout_ms = 10000;   // per connect, from the moment it is started
  tcp_nodelay nodelay = tcp_nodelay::on;
};

struct connector_stats {
  uint64_t started = 0;
  uint64_t connected = 0;
  uint64_t failed = 0;
  uint64_t timed_out = 0;  // included in failed
};

class connector {
 public:
  using done_fn = unique_function<void(int fd, int error)>;

  connector(reactor& r, const connector_options& opts);
  connector(const connector&) = delete;
  connector& operator=(const connector&) = delete;
  ~connector();

  // Queues a connect to `remote`, from `source` when it is not null (port 0: any port).
  // REQUIRES: both lengths fit a sockaddr_storage; the families match.
  void connect(const sockaddr* remote, socklen_t remote_len, const sockaddr* source,
               socklen_t source_len, done_fn done);

  // Fails every queued request with ECANCELED (callbacks run before this returns) and cancels
  // the connects in flight (their callbacks follow when the kernel answers).
  void cancel_all();

  size_t in_flight() const { return in_flight_; }
  size_t queued() const { return queue_.size(); }
  bool idle() const { return in_flight_ == 0 && queue_.empty(); }
  const connector_stats& stats() const { return stats_; }

 private:
  struct request {
    sockaddr_storage remote{};
    socklen_t remote_len = 0;
    sockaddr_storage source{};
    socklen_t source_len = 0;  // 0: no source address
    done_fn done;
  };
  class attempt;

  void start_queued();
  void start(attempt& a, request&& req);
  void finish(attempt& a, int fd, int error);
  static void fail_later(reactor& r, done_fn done, int error);

  reactor& reactor_;
  connector_options opts_;
  std::deque<request> queue_;
  std::vector<std::unique_ptr<attempt>> attempts_;  // in_flight_max slots, stable addresses
  std::vector<attempt*> free_;
  size_t in_flight_ = 0;
  connector_stats stats_;
};

}  // namespace rc
