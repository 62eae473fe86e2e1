// Helpers for the resolver's tests: a one-shard reactor running a resolver until the expected
// callbacks ran, temp resolv.conf/hosts files, and fake DNS servers (fake_dns.h). Unit tests only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/shard_group.h"
#include "fake_dns.h"
#include "server/resolver.h"

namespace rc::test {

inline bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

inline std::string to_text(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN];
  std::string out;
  uint16_t port;
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    out.push_back('[');
    out.append(buf);
    out.push_back(']');
    port = ntohs(s6->sin6_port);
  } else {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
    out.append(buf);
    port = ntohs(s4->sin_port);
  }
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

struct outcome {
  std::vector<std::string> addrs;
  int error = -1;
  std::string message;
};

// A temp directory with resolv.conf and hosts, and options pointing at them.
struct setup {
  std::filesystem::path dir;
  resolver_options opts;

  explicit setup(const std::string& resolv_conf, const std::string& hosts = "") {
    char tmpl[] = "/tmp/rc-resolver-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir / "resolv.conf") << resolv_conf;
    std::ofstream(dir / "hosts") << hosts;
    opts.resolv_conf_path = dir / "resolv.conf";
    opts.hosts_path = dir / "hosts";
    opts.timeout_ms = 2000;
    opts.attempts = 2;
  }
  ~setup() { std::filesystem::remove_all(dir); }
};

struct context {
  reactor& r;
  resolver& res;
  std::vector<outcome>& out;
  resolver::done_fn record() {
    return [&o = out](std::vector<sockaddr_storage> addrs, int error, std::string_view message) {
      outcome x;
      for (const auto& a : addrs) x.addrs.push_back(to_text(a));
      x.error = error;
      x.message = std::string(message);
      o.push_back(std::move(x));
    };
  }
};

// Runs `body` on a one-shard reactor with a resolver until `expected` callbacks ran (or 20 s
// passed), then cancels what is left and waits for the resolver to be idle.
inline std::vector<outcome> run(const resolver_options& opts,
                                const std::function<void(context&)>& body, size_t expected,
                                resolver_stats* stats = nullptr) {
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 64;
  o.reactor.ring.cq_entries = 256;
  o.reactor.buffers.count = 16;
  std::vector<outcome> out;
  auto err = run_shards(o, [&](reactor& r) {
    resolver res(r, opts);
    context c{r, res, out};
    body(c);
    uint64_t give_up_ms = monotonic_ms() + 20000;
    bool cancelled = false;
    r.add_turn_hook([&] {
      if (!cancelled && (out.size() >= expected || monotonic_ms() > give_up_ms)) {
        res.cancel_all();
        cancelled = true;
      }
      if (cancelled && res.idle()) r.stop();
    });
    r.run();
    if (stats) *stats = res.stats();
  });
  EXPECT_EQ(err, "");
  return out;
}

// Two fake servers on 127.0.0.1 and 127.0.0.2 with the same port (resolv.conf has no ports).
struct two_servers {
  std::unique_ptr<fake_dns> first, second;
  two_servers(fake_dns::script a, fake_dns::script b) {
    for (int i = 0; i < 20 && !(second && second->ok()); ++i) {
      first = std::make_unique<fake_dns>("127.0.0.1", 0, a);
      second = std::make_unique<fake_dns>("127.0.0.2", first->port(), b);
    }
  }
};

inline std::vector<std::string> both_addresses(const dns_query_view& q, size_t) {
  return {address_answer(q, q.type == 28 ? 6 : 4)};
}

}  // namespace rc::test
