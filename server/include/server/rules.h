// shared_rules: the settings every shard reads and none writes — the parsed configuration, the
// API keys, the subscription-token keys and the CORS policy — as one immutable snapshot. SIGHUP builds a new snapshot from the
// same command line, --config file and --api-keys-file as at start-up and posts it to every shard,
// which swaps it in between two turns (see shard_server::apply_rules). Settings that only take
// effect at start-up keep their running value; a changed one is logged as needing a restart
// (docs/operations.md lists them).
//
// rules_ref: one shard's counted handle on a snapshot. Work in progress that points into a
// snapshot (a connection's API key and CORS origin, a generation counted against a key) holds one,
// so the snapshot it started with outlives a reload. The count is a plain integer: a rules_ref and
// its copies never leave the shard that made them, so copying one per request costs no atomic
// operation; the holder's shared_ptr (atomic) is released once per shard and snapshot.
//
// process_state: what the shards share for the process's lifetime (the open connection count and
// the reload function). Built by main before the shards start.
//
// Thread-safety: a snapshot is immutable once published; rules_ref is shard-local; process_state's
// members are safe as documented on each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proto/jwt.h"
#include "server/admission.h"
#include "server/config.h"
#include "server/upstreams.h"

namespace rc::server {

struct shared_rules {
  server_config config;
  api_keys keys;
  jwt::verifier tokens;  // subscription tokens (--jwt-hs256-secret-file, ...)
  cors_policy cors{{}};
  // Upstreams and model routes (never null once made); shards build their engine tables from it.
  std::shared_ptr<const routing_table> routing;
};

class rules_ref {
 public:
  rules_ref() = default;
  explicit rules_ref(std::shared_ptr<const shared_rules> rules)
      : holder_(new holder{std::move(rules), 1}) {}
  rules_ref(const rules_ref& o) : holder_(o.holder_) {
    if (holder_) ++holder_->uses;
  }
  rules_ref(rules_ref&& o) noexcept : holder_(o.holder_) { o.holder_ = nullptr; }
  rules_ref& operator=(rules_ref o) noexcept {
    std::swap(holder_, o.holder_);
    return *this;
  }
  ~rules_ref() {
    if (holder_ && --holder_->uses == 0) delete holder_;
  }

  explicit operator bool() const { return holder_ != nullptr; }
  const shared_rules& operator*() const { return *holder_->rules; }
  const shared_rules* operator->() const { return holder_->rules.get(); }
  const std::shared_ptr<const shared_rules>& shared() const { return holder_->rules; }

 private:
  struct holder {
    std::shared_ptr<const shared_rules> rules;
    uint64_t uses;
  };
  holder* holder_ = nullptr;
};

struct process_state {
  // The snapshot the shards start with.
  std::shared_ptr<const shared_rules> initial;
  // Open client connections in the whole process, against --max-connections. One counter shared
  // by every shard: an atomic add on accept and a subtract on close (once per connection, never
  // per request) is the price of a limit that is exact whatever the SO_REUSEPORT spread; a
  // per-shard split refused connections while other shards had room.
  std::atomic<uint64_t> connections{0};
  // Shards that have drained (no connections, listener closed, access log written). Stopping is
  // joint: an idle shard keeps answering messages (rate tokens, stream slots, stored responses,
  // broker cancels are owned by home shards), and the shard whose count reaches the shard count
  // tells every shard to stop. Each shard adds itself once.
  std::atomic<unsigned> shards_idle{0};
  // Builds the next snapshot from the files (called on shard 0 on SIGHUP), or returns nullptr
  // and logs why the running rules stay.
  std::function<std::shared_ptr<const shared_rules>(const shared_rules& running)> reload;
  // This node's id in a cluster (--node-id, else <hostname>-<listen port>; also set on a single
  // node, for the dashboard); set by main once the port is known, before the shards start;
  // read-only after.
  std::string node_id;
  // Cluster mode: shards that can use NATS now (cluster::available()). Each shard has its own
  // connection, so after an outage they come back one by one; /readyz says ready only once every
  // shard is back, since a load balancer's connection may land on any of them.
  std::atomic<unsigned> cluster_shards_available{0};
};

// The snapshot for `cfg`: its --api-key keys, its keys file, its token key files and its CORS
// origins. With
// `previous`, keys it knew keep their index (per-shard tables indexed by key stay valid across a
// reload) and settings that need a restart keep their running value (`restart_notes` gets one
// line per changed setting). Returns nullptr with `error` set ("file:line: reason" for a keys
// file) when a key or the keys file is bad.
std::shared_ptr<const shared_rules> make_rules(server_config cfg, const shared_rules* previous,
                                               std::vector<std::string>& restart_notes,
                                               std::string& error);

// SIGHUP: re-parses the command line (and so the --config file) and re-reads the keys file, as at
// start-up. Logs what happened; returns nullptr (and logs the reason, "file:line: reason", at
// error level) when nothing changes.
std::shared_ptr<const shared_rules> reload_rules(int argc, char** argv,
                                                 const shared_rules& running);

}  // namespace rc::server
