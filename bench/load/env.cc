#include "load/env.h"

#include <arpa/inet.h>

#include <cerrno>

#include "load/targets.h"

namespace rc::load {

shard_env::shard_env(reactor& r, unsigned idx, unsigned n, const load_options& o, run_control& c,
                     shard_results& res, timeline& t)
    : loop(r),
      index(idx),
      count(n),
      opts(o),
      control(c),
      results(res),
      intervals(t, c, res.errors),
      sockets(r),
      connects(r, connector_options{
                      .in_flight_max = std::max<uint32_t>(1, o.connect_concurrency / n),
                      .timeout_ms = o.connect_timeout_ms,
                  }) {}

void shard_env::connect(uint32_t n, connector::done_fn done) {
  connect_to(target_for(opts, n), n, std::move(done));
}

void shard_env::connect_to(const socket_address& target, uint32_t n, connector::done_fn done) {
  const auto* remote = reinterpret_cast<const sockaddr*>(&target.storage);
  sockaddr_in source{};
  const sockaddr* src = nullptr;
  socklen_t src_len = 0;
  if (opts.source_ips > 0) {
    // 127.0.0.2, 127.0.0.3, ...: every address in 127.0.0.0/8 is local on Linux.
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl((127u << 24) + 2 + n % opts.source_ips);
    src = reinterpret_cast<const sockaddr*>(&source);
    src_len = sizeof source;
  }
  connects.connect(remote, target.length, src, src_len,
                   [this, done = std::move(done)](int fd, int error) mutable {
                     if (fd < 0 && !finishing) {
                       ++results.errors.connect;
                       ++results.connect_errnos[error];
                       control.note_failed();
                     }
                     done(fd, error);
                   });
}

}  // namespace rc::load
