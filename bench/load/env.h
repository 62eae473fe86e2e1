// shard_env: what a worker gets from its client thread: the reactor, the sockets and the
// connector, the run's timeline, and where to put results.
//
// Connections are numbered globally 0..N-1 and dealt round-robin: thread t owns t, t + T,
// t + 2T, ... Connection n goes to target n % (targets) (targets.h) and comes from source address
// 127.0.0.(2 + n % K)... when --source-ips K is set (spreading more than one source IP's ~28k
// ports), else from whatever the kernel picks.
//
// Thread-safety: one per client thread.
#pragma once

#include <netinet/in.h>

#include <cstdint>

#include "core/connector.h"
#include "core/reactor.h"
#include "load/client_socket.h"
#include "load/options.h"
#include "load/results.h"
#include "load/run_control.h"
#include "load/timeline.h"

namespace rc::load {

struct shard_env {
  shard_env(reactor& r, unsigned index, unsigned count, const load_options& o, run_control& c,
            shard_results& res, timeline& t);

  reactor& loop;
  unsigned index;  // this thread
  unsigned count;  // client threads
  const load_options& opts;
  run_control& control;
  shard_results& results;
  timeline_writer intervals;  // this thread's part of the report's timeline
  client_socket_set sockets;
  connector connects;

  // How many of `total` connections this thread owns, and the global number of its i-th.
  uint32_t share_of(uint32_t total) const {
    return total / count + (index < total % count ? 1 : 0);
  }
  uint32_t global_number(uint32_t local) const { return index + local * count; }

  // Connects global connection `n` to the target. On failure the error is counted and reported
  // to run_control as a failed connection before `done` sees fd -1 (unless the run is ending).
  void connect(uint32_t n, connector::done_fn done);
  // The same, to `target` rather than connection n's (e.g. the fanout publisher's --pub-target).
  void connect_to(const socket_address& target, uint32_t n, connector::done_fn done);

  // Counts a completion at `now_ns` that took `latency_ns`; kept only inside the window.
  void record(uint64_t now_ns, uint64_t latency_ns) {
    ++results.ops_total;
    if (!control.in_window(now_ns)) return;
    ++results.ops;
    results.latency.record(latency_ns);
    intervals.count_op(now_ns);
    intervals.sample(hist_id::latency, now_ns, latency_ns);
  }
  // Records `value` into histogram `id` (not latency: record() does that) when `now_ns` is
  // inside the window.
  void sample(hist_id id, uint64_t now_ns, uint64_t value) {
    if (!control.in_window(now_ns)) return;
    results.histogram_of(id).record(value);
    intervals.sample(id, now_ns, value);
  }

  // True once finish() was called: failures after that are ours, not the server's.
  bool finishing = false;
};

// A fast, non-cryptographic generator for WebSocket mask keys (see ws_session.h on why that is
// enough for clients that run no untrusted script).
struct xorshift {
  uint64_t state;
  uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

}  // namespace rc::load
