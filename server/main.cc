// ringcast: start-up and shutdown. Parses the configuration, checks io_uring, opens one
// listening socket per shard, runs the shards until they have drained, and exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/listener.h"
#include "core/log.h"
#include "core/shard_group.h"
#include "core/uring.h"
#include "server/authentication.h"
#include "server/cluster_config.h"
#include "server/config.h"
#include "server/shard.h"
#include "server/upstream_kinds.h"

namespace {

// Every connection is a descriptor: take the hard limit, as servers do, instead of the soft
// default (often 1024).
void raise_open_files_limit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

// With port 0 the kernel picks a port for the first listener; the others must join that one.
void adopt_bound_port(int fd, rc::socket_address& addr) {
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return;
  uint16_t port = bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port;
  if (addr.storage.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port = port;
  } else {
    reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port = port;
  }
  size_t colon = addr.text.rfind(':');
  addr.text = addr.text.substr(0, colon + 1) + std::to_string(ntohs(port));
}

rc::log::level parse_level(const std::string& s) {
  if (s == "debug") return rc::log::level::debug;
  if (s == "warn") return rc::log::level::warn;
  if (s == "error") return rc::log::level::error;
  return rc::log::level::info;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are read through a signalfd once the shards run; until then they wait (blocked), so
  // a SIGHUP during start-up neither kills the process nor is lost.
  rc::block_process_signals();
  rc::server::register_builtin_upstream_kinds();  // before the config names them
  rc::server::server_config cfg;
  if (int code = rc::server::parse_command_line(argc, argv, cfg); code >= 0) return code;
  rc::log::set_level(parse_level(cfg.log_level));
  raise_open_files_limit();

  rc::server::process_state process;
  {
    std::vector<std::string> unused;
    std::string err;
    process.initial = rc::server::make_rules(cfg, nullptr, unused, err);
    if (!process.initial) {
      std::fprintf(stderr, "ringcast: %s\n", err.c_str());
      return 2;
    }
  }
  // SIGHUP: the same command line, so the same --config file and keys file, read again.
  process.reload = [argc, argv](const rc::server::shared_rules& running) {
    auto next = rc::server::reload_rules(argc, argv, running);
    if (next) rc::log::set_level(parse_level(next->config.log_level));
    return next;
  };
  const rc::server::shared_rules& rules = *process.initial;
  rc::server::log_routing(*rules.routing, "");

  if (!cfg.access_log.empty() && cfg.access_log != "-") {
    // Each shard opens the path itself; a path that can't be opened is a start-up error here.
    int fd = open(cfg.access_log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::fprintf(stderr, "ringcast: --access-log: cannot open %s: %s\n", cfg.access_log.c_str(),
                   std::strerror(errno));
      return 2;
    }
    close(fd);
  }

  rc::uring_support support;
  if (std::string err = rc::probe_uring(support); !err.empty()) {
    std::fprintf(stderr, "ringcast: %s\n", err.c_str());
    return 1;
  }

  rc::socket_address addr;
  if (std::string err = rc::parse_socket_address(cfg.listen, addr); !err.empty()) {
    std::fprintf(stderr, "ringcast: --listen: %s\n", err.c_str());
    return 2;
  }
  if (std::string err = rc::check_address_free(addr); !err.empty()) {
    std::fprintf(stderr, "ringcast: %s\n", err.c_str());
    return 1;
  }
  // Listeners are opened here, in shard order, so listener i of the SO_REUSEPORT group is shard
  // i's (CPU steering relies on that order).
  std::vector<int> listeners;
  for (unsigned i = 0; i < cfg.shards; ++i) {
    std::string err;
    int fd = rc::open_listener(addr, static_cast<int>(cfg.listen_backlog), err);
    if (fd < 0) {
      std::fprintf(stderr, "ringcast: %s\n", err.c_str());
      return 1;
    }
    if (i == 0) adopt_bound_port(fd, addr);
    listeners.push_back(fd);
  }
  if (cfg.reuseport_cpu_steering) {
    if (std::string err = rc::attach_cpu_steering(listeners[0], cfg.shards); !err.empty()) {
      std::fprintf(stderr, "ringcast: --reuseport-cpu-steering: %s\n", err.c_str());
      return 1;
    }
  }

  // The node's name: its id in a cluster, and what the dashboard shows (single node too).
  process.node_id = cfg.node_id;
  if (process.node_id.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "node");
    const sockaddr_storage& ss = addr.storage;
    uint16_t port = ntohs(ss.ss_family == AF_INET6
                              ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port
                              : reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    process.node_id = rc::server::default_node_id(host, port);
  }
  if (!cfg.nats_urls.empty()) {
    std::string urls;
    for (const std::string& u : cfg.nats_urls) urls += (urls.empty() ? "" : ",") + u;
    RC_INFO("cluster: node %s, NATS %s, %zu topic retention class%s, %u broker partitions",
            process.node_id.c_str(), urls.c_str(), cfg.topic_retentions.size() + 1,
            cfg.topic_retentions.empty() ? "" : "es", cfg.broker_partitions);
  }

  rc::shard_group_options opts;
  opts.shards = cfg.shards;
  if (cfg.pin) opts.cpus = cfg.shard_cpus;
  opts.reactor.buffers.count = cfg.recv_buffers;
  opts.reactor.buffers.buffer_bytes = cfg.recv_buffer_bytes;

  // Configuration notes come before the line that announces the address: whoever waits for
  // that line has seen them.
  if (rules.tokens.configured()) {
    RC_INFO("subscription tokens (JWT%s%s) accepted on topic subscriptions",
            cfg.jwt_hs256_secret_file.empty() ? "" : " HS256",
            cfg.jwt_es256_public_key_file.empty() ? "" : " ES256");
  }
  if (rules.keys.empty() && !rules.tokens.configured()) {
    RC_WARN("no API keys configured: /v1 and /api routes are open to anyone who can connect");
  } else {
    RC_INFO("%zu API key%s configured", rules.keys.size(), rules.keys.size() == 1 ? "" : "s");
  }
  if (cfg.dashboard) {
    if (rules.keys.empty() && !rules.tokens.configured()) {
      RC_WARN("dashboard enabled without keys: /dashboard and /dashboard/ops are open to anyone "
              "who can connect");
    } else if (!rules.keys.any_admin()) {
      RC_WARN("dashboard enabled but no admin key configured (--admin-key, admin=yes in the keys "
              "file): /dashboard answers 403 to everyone");
    } else {
      RC_INFO("dashboard enabled at /dashboard (admin keys only)");
    }
  }

  std::string cpus;
  for (int c : cfg.shard_cpus) {
    if (!cpus.empty()) cpus += ',';
    cpus += std::to_string(c);
  }
  RC_INFO("ringcast listening on %s with %u shard%s (%s %s), kernel %s", addr.text.c_str(),
          cfg.shards, cfg.shards == 1 ? "" : "s", cfg.pin ? "pinned to CPUs" : "on CPUs",
          cpus.c_str(), support.kernel.c_str());

  std::string err = rc::run_shards(opts, [&](rc::reactor& r) {
    if (r.shard_id() == 0) RC_INFO("io_uring setup: %s", r.ring().describe_flags().c_str());
    rc::server::shard_server shard(r, process, listeners[r.shard_id()]);
    shard.run();
  });
  if (!err.empty()) {
    std::fprintf(stderr, "ringcast: %s\n", err.c_str());
    return 1;
  }
  RC_INFO("drained, exiting");
  return 0;
}
