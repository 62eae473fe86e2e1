// One shard's cluster object (cluster.h): its NATS connection, the streams' readiness, topic
// routes and availability listeners.
#include "server/cluster.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "base/assert.h"
#include "core/log.h"
#include "proto/topic_pattern.h"
#include "server/shard.h"

namespace rc::server {

// One pass of shard 0 over the stores (cluster_streams.cc), one request at a time.
struct ensure_run {
  cluster_stores stores;
  size_t topic_classes = 0;
  size_t next = 0;  // streams first, then buckets
  uint64_t generation = 0;
  std::vector<std::string> epochs;
};

namespace {

// After a failed ensure, shard 0 tries again this much later.
constexpr uint32_t ensure_retry_ms = 2000;
// After a successful one, shard 0 ensures again this much later: a stream deleted (or created
// again by another node) while this node stays connected is noticed and ensured again.
constexpr uint32_t ensure_verify_ms = 5000;

std::string random_hex8() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&v));
  char out[9];
  std::snprintf(out, sizeof out, "%08x", v);
  return std::string(out, 8);
}

// Transport failures say nothing about the streams: the connection's state already does.
bool transport_error(const js_error& e) {
  return e.error == ENOTCONN || e.error == ECANCELED;
}

std::string describe(const js_error& e) {
  if (e.error == EHOSTUNREACH)
    return "JetStream is not enabled on the NATS server (no responders; start it with -js)";
  if (e.error == ETIMEDOUT) return "JetStream did not answer in time";
  if (e.error == ENOTCONN) return "the connection was lost";
  if (e.error == ECANCELED) return "cancelled";
  std::string out = e.description.empty() ? "status " + std::to_string(e.status) : e.description;
  if (e.err_code != 0) out += " (JetStream error " + std::to_string(e.err_code) + ")";
  return out;
}

}  // namespace

cluster::cluster(shard_server& s) : shard_(s) {
  const server_config& cfg = s.config();
  node_id_ = s.node_id();
  broker_partitions_ = cfg.broker_partitions;
  for (size_t i = 0; i <= cfg.topic_retentions.size(); ++i) {
    topic_streams_.push_back("RC_T" + std::to_string(i));
    if (i > 0) topic_patterns_.push_back(cfg.topic_retentions[i - 1].pattern);
  }
  options_.urls = cfg.nats_urls;
  options_.token = cfg.nats_token;
  options_.user = cfg.nats_user;
  options_.password = cfg.nats_password;
  std::string shard = std::to_string(s.id());
  options_.name = "ringcast " + node_id_ + "/" + shard;
  options_.inbox_prefix = "_INBOX." + node_id_ + "." + shard + "." + random_hex8();
  nats_ = std::make_unique<nats_client>(s.loop(), s.sockets(), s.names(), options_);
  js_ = std::make_unique<jetstream>(*nats_);
  retry_.bind<cluster, &cluster::on_retry>(this);
  streams_reason_ = "nats: streams not ready";
}

cluster::~cluster() {
  RC_ASSERT(!started_ || stopping_);
  shard_.loop().cancel_timer(retry_);
}

void cluster::start() {
  if (started_) return;
  started_ = true;
  state_listener_ = nats_->add_state_listener([this](nats_state st) { on_nats_state(st); });
  nats_->start();
}

void cluster::stop(unique_function<void()> done) {
  if (stopping_ || !started_) {
    stopping_ = true;
    shard_.loop().post(shard_.id(), std::move(done));
    return;
  }
  stopping_ = true;
  ++ensure_generation_;
  shard_.loop().cancel_timer(retry_);
  nats_->remove_state_listener(state_listener_);
  state_listener_ = 0;
  nats_->stop(std::move(done));
}

std::string_view cluster::unavailable_reason() const {
  if (stopping_) return "nats: stopping";
  if (!connected_) {
    reason_ = "nats: disconnected";
    if (const std::string& why = nats_->last_error(); !why.empty()) reason_ += " (" + why + ")";
    return reason_;
  }
  if (!streams_ready_) return streams_reason_;
  return {};
}

uint32_t cluster::retry_after_ms() const {
  if (!connected_) return std::clamp<uint32_t>(nats_->reconnect_delay_ms(), 1000, 60'000);
  return 1000;
}

cluster::topic_route cluster::route_topic(std::string_view topic) const {
  uint32_t cls = 0;
  for (size_t i = 0; i < topic_patterns_.size(); ++i) {
    if (topic_pattern::matches(topic_patterns_[i], topic)) {
      cls = static_cast<uint32_t>(i + 1);
      break;
    }
  }
  topic_route r;
  r.retention_class = cls;
  r.stream = topic_streams_[cls];
  if (cls < epochs_.size()) r.epoch = epochs_[cls];
  // rc.t<class>.<epoch>.<topic>: only the stream of that epoch takes it (set_topic_epoch).
  r.subject.reserve(18 + topic.size());
  r.subject.append("rc.t").append(std::to_string(cls)).append(".");
  r.subject.append(r.epoch.empty() ? std::string_view("_") : r.epoch).append(".").append(topic);
  return r;
}

// ---- availability ----

uint64_t cluster::on_availability(unique_function<void(bool)> fn) {
  uint64_t id = next_listener_++;
  listeners_.push_back({id, std::move(fn)});
  return id;
}

void cluster::remove_availability_listener(uint64_t id) {
  for (listener& l : listeners_) {
    if (l.id == id) {
      l.id = 0;
      l.fn = nullptr;
    }
  }
  if (!notifying_) std::erase_if(listeners_, [](const listener& l) { return l.id == 0; });
}

void cluster::notify_if_changed() {
  bool now = available();
  if (now == last_available_ || stopping_) return;
  last_available_ = now;
  if (now) {
    shard_.cluster_shards_available().fetch_add(1, std::memory_order_relaxed);
  } else {
    shard_.cluster_shards_available().fetch_sub(1, std::memory_order_relaxed);
  }
  if (now) {
    RC_INFO("cluster: node %s available (NATS %s)", node_id_.c_str(),
            nats_->connected_url().c_str());
  } else {
    RC_WARN("cluster: node %s unavailable: %.*s", node_id_.c_str(),
            static_cast<int>(unavailable_reason().size()), unavailable_reason().data());
  }
  // Listeners registered while notifying wait for the next change; removed ones are skipped.
  notifying_ = true;
  size_t n = listeners_.size();
  for (size_t i = 0; i < n; ++i) {
    if (listeners_[i].id != 0 && listeners_[i].fn) listeners_[i].fn(now);
    if (available() != now) break;  // a listener's action changed it again: that is notified next
  }
  notifying_ = false;
  std::erase_if(listeners_, [](const listener& l) { return l.id == 0; });
  if (available() != last_available_) notify_if_changed();
}

void cluster::on_nats_state(nats_state st) {
  bool was = connected_;
  connected_ = st == nats_state::connected;
  if (was && !connected_) {
    // The streams may be gone or created again when the connection is back (a NATS server
    // restarted without its store): not ready until shard 0 has ensured them again.
    streams_ready_ = false;
    streams_reason_ = "nats: streams not ready";
  }
  if (connected_ && !was && shard_.id() == 0) ensure_stores();
  apply_epoch_change();
  notify_if_changed();
}

// ---- streams (shard 0) ----

void cluster::ensure_stores() {
  if (stopping_) return;
  shard_.loop().cancel_timer(retry_);
  auto run = std::make_shared<ensure_run>();
  run->stores = make_cluster_stores(shard_.config());
  run->topic_classes = topic_streams_.size();
  run->generation = ++ensure_generation_;  // a pass still in flight is abandoned
  ensuring_ = true;
  ensure_step(std::move(run));
}

void cluster::ensure_step(std::shared_ptr<ensure_run> run) {
  const cluster_stores& stores = run->stores;
  if (run->next < stores.streams.size()) {
    js_stream_config config = stores.streams[run->next];
    // A topic stream carries its epoch in its description, drawn by whoever creates it: every
    // server answers the same (the `created` time differs between replicas) and a stream created
    // again (storage lost) gets a new one.
    if (run->next < run->topic_classes) {
      char token[16];
      shard_.make_token(token);
      uint32_t cls = static_cast<uint32_t>(run->next);
      set_topic_epoch(config, cls, std::string_view(token, 8));
      // It exists (another node created it first, or an older ringcast without the epoch in
      // its subjects): its epoch stays, and its subjects follow it.
      config.adapt = [cls](js_stream_config& c, const js_stream_info& existing) {
        std::string e = described_epoch(existing.description);
        if (!e.empty()) set_topic_epoch(c, cls, e);
      };
    }
    js_->ensure_stream(config, [this, run](js_stream_info&& info) {
      if (stopping_ || run->generation != ensure_generation_) return;
      if (!info.err.ok()) {
        ensure_done(run, info.err, run->stores.streams[run->next].name);
        return;
      }
      if (run->next < run->topic_classes) run->epochs.push_back(stream_epoch(info));
      ++run->next;
      ensure_step(run);
    });
    return;
  }
  size_t b = run->next - stores.streams.size();
  if (b < stores.buckets.size()) {
    const cluster_bucket& kv = stores.buckets[b];
    js_->ensure_kv(kv.name, kv.ttl_ms, kv.max_value_size, shard_.config().nats_replicas,
                   [this, run, b](js_error&& err) {
                     if (stopping_ || run->generation != ensure_generation_) return;
                     if (!err.ok()) {
                       ensure_done(run, err, "bucket " + run->stores.buckets[b].name);
                       return;
                     }
                     ++run->next;
                     ensure_step(run);
                   });
    return;
  }
  ensure_done(run, js_error{}, {});
}

void cluster::ensure_done(std::shared_ptr<ensure_run> run, const js_error& err,
                          std::string_view what) {
  ensuring_ = false;
  bool again = std::exchange(recheck_again_, false);
  if (err.ok()) {
    last_ensure_error_.clear();
    broadcast(true, run->epochs, {});
    if (again) return ensure_stores();
    shard_.loop().arm_after_ms(retry_, ensure_verify_ms);
    return;
  }
  std::string reason = "nats: streams not ready: " + std::string(what) + ": " + describe(err);
  // Logged when the reason changes, not at every retry.
  if (reason != last_ensure_error_)
    RC_WARN("cluster: %s; trying again every %u ms", reason.c_str(), ensure_retry_ms);
  last_ensure_error_ = reason;
  // A lost connection is reported by the connection's state, and the pass starts again when it
  // is back; anything else makes every shard unavailable with the reason.
  if (!transport_error(err) || !streams_ready_) broadcast(false, {}, reason);
  shard_.loop().arm_after_ms(retry_, ensure_retry_ms);
}

void cluster::on_retry() {
  if (!stopping_ && connected_) ensure_stores();
}

void cluster::streams_missing() {
  bool posted = shard_.loop().post(0, [] {
    shard_server* sh = shard_server::current();
    if (cluster* c = sh ? sh->cluster_link() : nullptr) c->recheck_streams();
  });
  if (!posted) RC_WARN("cluster: shard 0's mailbox is full; the streams are checked later");
}

void cluster::recheck_streams() {
  if (stopping_ || !connected_) return;  // checked when the connection is back
  if (ensuring_) {
    recheck_again_ = true;  // the pass in flight may have read the stream before it changed
    return;
  }
  ensure_stores();
}

void cluster::broadcast(bool ready, const std::vector<std::string>& epochs,
                        const std::string& reason) {
  for (unsigned s = 0; s < shard_.shard_count(); ++s) {
    bool posted = shard_.loop().post(s, [ready, epochs, reason]() mutable {
      shard_server* sh = shard_server::current();  // null once a stopping shard is gone
      if (cluster* c = sh ? sh->cluster_link() : nullptr)
        c->on_streams_state(ready, std::move(epochs), std::move(reason));
    });
    if (!posted) RC_ERROR("cluster: shard %u's mailbox is full; it misses the streams' state", s);
  }
}

void cluster::on_streams_state(bool ready, std::vector<std::string> epochs, std::string reason) {
  if (stopping_) return;
  streams_ready_ = ready;
  if (ready) {
    // A topic stream created again (its store lost, or deleted and ensured again): the home
    // topics on this shard still follow the old one.
    if (!epochs_.empty() && epochs_ != epochs) epochs_changed_ = true;
    epochs_ = std::move(epochs);
  } else {
    streams_reason_ = std::move(reason);
  }
  apply_epoch_change();
  notify_if_changed();
}

void cluster::apply_epoch_change() {
  // Shard 0 may announce the new epochs before this shard has reconnected (each shard has its
  // own connection): the restarted subscribers would be refused, so they wait for it.
  if (!epochs_changed_ || !available()) return;
  epochs_changed_ = false;
  shard_.topics().on_epochs_changed();
}

// ---- metrics ----

void cluster::snapshot(cluster_metrics& out) const {
  out.enabled = true;
  out.available = available();
  out.connected = nats_->connected();
  const nats_stats& n = nats_->stats();
  out.reconnects = n.reconnects;
  out.msgs_in = n.msgs_in;
  out.msgs_out = n.msgs_out;
  out.bytes_in = n.bytes_in;
  out.bytes_out = n.bytes_out;
  out.pending_bytes = n.pending_bytes;
  out.dropped_publishes = n.dropped_publishes;
  out.pending_acks = js_->publishes_in_flight();
  const jetstream::stats& j = js_->counters();
  out.publish_errors = j.publish_errors;
  out.api_errors = j.api_errors;
  out.consumers_recreated = j.consumers_recreated;
  if (j.publish_latency) out.publish_latency = *j.publish_latency;
}

}  // namespace rc::server
