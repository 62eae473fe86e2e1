// resolver: non-blocking host name resolution for upstream hosts, one per shard, on the shard's
// io_uring. getaddrinfo() blocks the calling thread for up to attempts × timeout seconds, which
// would stall every connection of the shard; this asks the nameservers itself.
//
// resolve(host, port, done) answers, in this order:
//   1. an IP literal ("10.0.0.7", "::1", "[::1]"): that address;
//   2. /etc/hosts (read once, at construction): its addresses; "localhost" always resolves (to
//      127.0.0.1 and ::1 when the file does not say otherwise);
//   3. the cache (below);
//   4. DNS: A and AAAA queries (dns.h) over UDP to the nameservers of /etc/resolv.conf (read
//      once), both on one connected socket per try (a fresh source port each time). A try
//      waits `timeout` for its answers; the tries go round the nameservers `attempts` times, in
//      order (from the next one each lookup with `options rotate`). A server that fails
//      (SERVFAIL, REFUSED, a malformed or truncated-and-empty answer, port unreachable) is left
//      for the next at once; NXDOMAIN is final. Datagrams that are not answers to our query
//      (another id, another question) are ignored. A truncated answer is used for what it holds:
//      TCP is not implemented. When one family has answered with addresses and the other's try
//      fails, the lookup ends with what it has rather than wait for more tries. A name with
//      fewer than `ndots` dots is tried with each `search` domain first, then as is (more dots:
//      as is first); only "no such name" and "no addresses" move on to the next candidate.
// The callback always runs in a later turn (never inside resolve()), exactly once per call, with
// the addresses (port set; IPv4 before IPv6, each in the server's order) and error 0, or no
// addresses and an errno-like error with the reason, for logs and error bodies (without the
// name, which the caller knows: "no such name (NXDOMAIN)", "nameserver 10.0.0.2:53 answered
// SERVFAIL"):
//   EINVAL     not a host name ("bad name!");
//   ENOENT     no such name (NXDOMAIN) or no A/AAAA records;
//   ETIMEDOUT  no nameserver answered;
//   EAGAIN     the nameservers answered with failures (SERVFAIL, REFUSED, …);
//   EPROTO     malformed or truncated answers;
//   ECONNREFUSED / another errno  the nameservers could not be reached;
//   ECANCELED  cancel_all().
//
// Cache: answers are kept for their TTL (at most cache_ttl_max_s), failures for at most
// negative_ttl_max_s (the SOA's negative TTL when smaller), in at most cache_entries_max entries
// (expired ones go first, then the one closest to expiry). Concurrent lookups of one name share
// one set of queries (coalescing).
//
// Thread-safety: a resolver belongs to one shard. Callbacks may call resolve() and cancel_all()
// but must not destroy the resolver. It may be destroyed at any other time: callbacks not yet run
// are then dropped without being called, and queries still in the kernel are cancelled and free
// themselves when their completions arrive.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/reactor.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "proto/dns.h"
#include "server/resolver_files.h"

namespace rc {

enum class address_family : uint8_t { any, ipv4, ipv6 };

struct resolver_options {
  std::string hosts_path = "/etc/hosts";
  std::string resolv_conf_path = "/etc/resolv.conf";
  uint16_t nameserver_port = 53;  // resolv.conf has no ports; tests point this at a fake server
  uint32_t timeout_ms = 0;        // per try; 0: resolv.conf's `options timeout:` (5 s)
  uint32_t attempts = 0;          // rounds over the servers; 0: `options attempts:` (2)
  address_family family = address_family::any;
  size_t cache_entries_max = 1024;
  uint32_t cache_ttl_max_s = 3600;
  uint32_t negative_ttl_max_s = 5;  // 0: failures are not cached
};

struct resolver_stats {
  uint64_t lookups = 0;            // resolve() calls
  uint64_t literal_answers = 0;    // IP literals
  uint64_t hosts_answers = 0;      // from the hosts file
  uint64_t cache_hits = 0;         // from the cache (answers and cached failures)
  uint64_t coalesced = 0;          // joined a lookup in progress
  uint64_t queries_sent = 0;       // DNS datagrams
  uint64_t query_timeouts = 0;     // tries that ended without all their answers
  uint64_t ignored_datagrams = 0;  // not answers to our queries
  uint64_t failures = 0;           // callbacks with an error
};

class resolver {
 public:
  using done_fn = unique_function<void(std::vector<sockaddr_storage> addrs, int error,
                                       std::string_view message)>;

  explicit resolver(reactor& r, resolver_options opts = {});
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;
  ~resolver();

  void resolve(std::string_view host, uint16_t port, done_fn done);

  // Every callback not yet run runs now with ECANCELED, before this returns; queries in flight
  // are cancelled (the resolver is idle() once their completions have arrived).
  void cancel_all();

  // No lookup has operations in the kernel and no callback is waiting.
  bool idle() const { return lookups_.empty() && ready_.empty(); }
  const resolver_stats& stats() const { return stats_; }
  const resolv_conf& config() const { return conf_; }
  size_t cache_size() const { return cache_.size(); }

 private:
  class lookup;
  friend class lookup;

  struct waiter {
    uint16_t port;
    done_fn done;
  };
  struct result {
    std::vector<dns::address> addrs;
    int error = 0;
    std::string message;
    static result found(std::vector<dns::address> addrs) { return {std::move(addrs), 0, {}}; }
    static result failed(int error, std::string text) { return {{}, error, std::move(text)}; }
  };
  struct cache_entry {
    result res;
    uint64_t expires_ms = 0;
  };
  struct delivery {
    done_fn done;
    std::vector<sockaddr_storage> addrs;
    int error;
    std::string message;
  };

  void answer_later(done_fn done, const result& res, uint16_t port);
  void on_deliver();
  // A lookup ended: cache `res` for up to ttl_s, answer its waiters, retire it.
  void finished(lookup& l, result res, uint32_t ttl_s);
  // Moves `l` out of the live set; it is freed at the next delivery, off its own call stack.
  void retire(lookup& l);
  const result* cached(const std::string& key);
  void remember(const std::string& key, const result& res, uint32_t ttl_s);
  std::vector<dns::address> filtered(const std::vector<dns::address>& addrs) const;
  uint16_t random_id();

  reactor& reactor_;
  resolver_options opts_;
  resolv_conf conf_;
  hosts_table hosts_;
  uint32_t timeout_ms_;
  uint32_t attempts_;
  unsigned rotation_ = 0;
  std::unordered_map<lookup*, std::unique_ptr<lookup>> lookups_;  // with work in the kernel
  std::unordered_map<std::string, lookup*> by_name_;              // lookups taking waiters
  std::vector<std::unique_ptr<lookup>> retired_;                  // freed by on_deliver()
  std::unordered_map<std::string, cache_entry> cache_;
  std::deque<delivery> ready_;
  timer deliver_timer_;
  std::vector<uint16_t> random_ids_;
  resolver_stats stats_;
};

}  // namespace rc
