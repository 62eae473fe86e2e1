// Shard 0's partition leases in the KV bucket rc_owners (broker_cluster.h).
#include <algorithm>

#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/shard.h"

#include "broker_cluster.h"
#include "broker_internal.h"

namespace rc::server {
namespace {

std::string lease_key(uint32_t p) {
  std::string key("p");
  key += std::to_string(p);
  return key;
}

std::string heartbeat_key(std::string_view node) {
  std::string key("n.");
  key.append(node);
  return key;
}

// Tells partition p's shard that this node gained (or lost) it.
void tell_shard(shard_server& s, uint32_t p, bool gained) {
  s.loop().post(p % s.shard_count(), [p, gained] {
    broker_cluster* bc = shard_server::current()->broker_queue().cluster_side();
    if (!bc) return;
    if (gained) {
      bc->on_claimed(p);
    } else {
      bc->on_lost(p);
    }
  });
}

}  // namespace

broker_leases::broker_leases(shard_server& s, cluster& c) : shard_(s), cluster_(c) {
  tick_.bind<broker_leases, &broker_leases::tick>(this);
  shard_.loop().arm_after_ms(tick_, 1);
}

broker_leases::~broker_leases() {
  *alive_ = false;
  shard_.loop().cancel_timer(tick_);
}

uint32_t broker_leases::lease_ms() const {
  return std::max<uint32_t>(300, shard_.config().broker_lease_ms);
}

void broker_leases::tick() {
  uint64_t now = shard_.loop().now_ms();
  shard_.loop().arm_after_ms(tick_, lease_ms() / 3);
  // A lease not renewed in time is let go before it can expire under this node's work.
  uint64_t keep_ms = lease_ms() - lease_ms() / 5;
  std::vector<uint32_t> expired;
  for (auto& [p, l] : owned_) {
    if (now - l.renewed_ms > keep_ms) expired.push_back(p);
  }
  for (uint32_t p : expired) lose(p);
  if (!cluster_.available()) return;  // connected, and the streams and the bucket exist
  for (auto& [p, l] : owned_) {
    if (!l.renewing && !l.releasing) renew(p);
  }
  // This node's heartbeat, then the live nodes (their heartbeats expire with the bucket's TTL).
  jetstream& js = cluster_.js();
  js.kv_put(owners_bucket, heartbeat_key(cluster_.node_id()), cluster_.node_id(),
            [](js_kv_entry&&) {});
  if (counting_) return;
  counting_ = true;
  js.kv_keys(owners_bucket, "n.>",
             [this, alive = alive_](js_error&& err, std::vector<std::string>&& keys) {
               if (!*alive) return;
               counting_ = false;
               if (!err.ok()) return;
               uint32_t nodes = 0;
               bool me = false;
               for (const std::string& k : keys) {
                 if (k.rfind("n.", 0) != 0) continue;
                 ++nodes;
                 me = me || k == heartbeat_key(cluster_.node_id());
               }
               if (!me) ++nodes;  // our heartbeat may not be listed yet
               balance(nodes);
             });
}

void broker_leases::renew(uint32_t p) {
  lease& l = owned_[p];
  l.renewing = true;
  uint64_t sent = shard_.loop().now_ms();
  cluster_.js().kv_update(owners_bucket, lease_key(p), cluster_.node_id(),
                          l.revision, [this, alive = alive_, p, sent](js_kv_entry&& e) {
                            if (!*alive) return;
                            auto it = owned_.find(p);
                            if (it == owned_.end()) return;
                            it->second.renewing = false;
                            if (it->second.released) {  // let go meanwhile: hand it back now
                              owned_.erase(it);
                              if (e.err.ok()) hand_back(p, e.revision);
                              return;
                            }
                            if (e.err.ok()) {
                              it->second.revision = e.revision;
                              it->second.renewed_ms = sent;
                            } else if (e.err.error == 0) {
                              lose(p);  // refused: the lease is gone or someone else's
                            }
                          });
}

void broker_leases::balance(uint32_t nodes) {
  uint32_t partitions = std::max<uint32_t>(1, cluster_.broker_partitions());
  // A draining node hands back what is idle and takes nothing new.
  uint32_t share = shard_.draining() ? 0 : (partitions + nodes - 1) / std::max<uint32_t>(1, nodes);
  if (owned_.size() > share) {
    size_t excess = owned_.size() - share;
    for (auto it = owned_.rbegin(); it != owned_.rend() && excess > 0; ++it) {
      if (it->second.releasing) continue;
      it->second.releasing = true;
      --excess;
      uint32_t p = it->first;
      shard_.loop().post(p % shard_.shard_count(), [p] {
        broker_cluster* bc = shard_server::current()->broker_queue().cluster_side();
        if (bc) bc->release_if_idle(p);
      });
    }
    return;
  }
  share_ = share;
  if (owned_.size() + writing_ >= share) return;
  // Every partition not held is looked at; claim() writes only while the share is not reached.
  for (uint32_t p = 0; p < partitions; ++p) {
    if (!owned_.count(p) && !claiming_.count(p)) claim(p);
  }
}

void broker_leases::claim(uint32_t p) {
  claiming_.insert(p);
  uint64_t sent = shard_.loop().now_ms();
  auto finish = [this, alive = alive_, p, sent](js_kv_entry&& e) {
    if (!*alive) return;
    claiming_.erase(p);
    --writing_;
    if (e.err.ok()) own(p, e.revision, sent);
  };
  cluster_.js().kv_get(
      owners_bucket, lease_key(p),
      [this, alive = alive_, p, finish = std::move(finish)](js_kv_entry&& e) mutable {
        if (!*alive) return;
        bool free = (!e.found && e.err.error == 0) ||
                    // Handed back, or ours from before a restart of NATS or of this node.
                    (e.found && (e.value.empty() || e.value == cluster_.node_id()));
        if (!free || owned_.size() + writing_ >= share_) {
          claiming_.erase(p);
          return;
        }
        ++writing_;
        if (!e.found) {
          // Created only if nobody else did meanwhile.
          cluster_.js().kv_create(owners_bucket, lease_key(p), cluster_.node_id(),
                                  std::move(finish));
        } else {
          cluster_.js().kv_update(owners_bucket, lease_key(p), cluster_.node_id(),
                                  e.revision, std::move(finish));
        }
      });
}

void broker_leases::own(uint32_t p, uint64_t revision, uint64_t sent_ms) {
  lease& l = owned_[p];
  l.revision = revision;
  l.renewed_ms = sent_ms;
  tell_shard(shard_, p, true);
}

void broker_leases::lose(uint32_t p) {
  owned_.erase(p);
  tell_shard(shard_, p, false);
}

void broker_leases::on_released(uint32_t p, bool idle) {
  auto it = owned_.find(p);
  if (it == owned_.end()) return;
  if (!idle) {
    it->second.releasing = false;
    return;
  }
  if (it->second.renewing) {
    it->second.released = true;  // handed back when the renewal answers (its revision)
    return;
  }
  uint64_t revision = it->second.revision;
  owned_.erase(it);
  hand_back(p, revision);
}

void broker_leases::hand_back(uint32_t p, uint64_t revision) {
  // "" marks it free for the next claimer at once (else it would wait for the lease to expire).
  cluster_.js().kv_update(owners_bucket, lease_key(p), "", revision,
                          [](js_kv_entry&&) {});
}

}  // namespace rc::server
