// cluster: one shard's part of a ringcast cluster (docs/cluster.md). Exists only with --nats.
//
// Each shard has its own NATS connection (nats_client, on the shard's reactor) and JetStream
// context on it; the cluster object owns both, says whether the shard can use them now
// (available(): connected, and the streams and buckets exist) and routes topics to their
// retention class's stream.
//
// Streams and buckets: shard 0's cluster creates or updates every one of them (ensure) each time
// its connection is (re)established, then tells every shard through its mailbox that they are
// ready, with each topic stream's epoch. What is ensured is the list cluster_stores() builds from
// the configuration (server/src/cluster_streams.cc): the topic classes (RC_T<i>), the broker's
// RC_BROKER and RC_BROKER_LOG, the buckets rc_owners and rc_responses. A part that needs another
// stream or bucket, or different limits, adds it there; nothing else needs to change. A failure
// other than a lost connection (JetStream disabled, too few servers for --nats-replicas, a
// conflicting stream) makes every shard unavailable with the reason, and shard 0 tries again
// every few seconds.
//
// Availability listeners (on_availability) are told on this shard whenever available() changes;
// topics and broker use them to resubscribe, /readyz reads available() and unavailable_reason().
//
// Lifetime: constructed with the shard (before topics and broker), start() from shard_server::run,
// stop() at the very end of the drain (after topics and broker have let go of their consumers and
// subscriptions), destroyed after topics and broker.
//
// Thread-safety: owned by its shard thread, like everything of the shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "server/cluster_config.h"
#include "server/cluster_metrics.h"
#include "server/config.h"
#include "server/jetstream.h"
#include "server/nats_client.h"

namespace rc::server {

class shard_server;
struct ensure_run;

// A KV bucket to ensure (stream KV_<name>).
struct cluster_bucket {
  std::string name;
  int64_t ttl_ms = 0;           // 0: entries never expire
  int32_t max_value_size = -1;  // -1: the server's limit
};

// Every stream and bucket the cluster ensures at start. The topic class streams come first, in
// class order (streams[i] is RC_T<i> for i <= topic_classes()).
struct cluster_stores {
  std::vector<js_stream_config> streams;
  std::vector<cluster_bucket> buckets;
};
cluster_stores make_cluster_stores(const server_config& c);

// Stream names and subjects of the cluster (the same on every node).
inline constexpr std::string_view broker_work_stream = "RC_BROKER";      // rc.bq.<partition>.<id>
inline constexpr std::string_view broker_log_stream = "RC_BROKER_LOG";   // rc.bl.<id>
inline constexpr std::string_view owners_bucket = "rc_owners";
inline constexpr std::string_view responses_bucket = "rc_responses";

// The epoch of a topic stream: 8 random hex digits drawn by the node that creates the stream and
// kept in its description ("ringcast epoch <hex>"), so every node reads the same one and a stream
// created again (its storage lost) has a new one. (The stream's `created` time cannot serve: each
// replica records its own.) A stream without such a description falls back on a hash of
// `created`, the 8 hex digits of stream_epoch(created_ns).
inline constexpr std::string_view epoch_description_prefix = "ringcast epoch ";
std::string stream_epoch(const js_stream_info& info);
std::string stream_epoch(uint64_t created_ns);
// The epoch a description names ("" when it is not "ringcast epoch <8 hex digits>").
std::string described_epoch(std::string_view description);
// A topic stream's epoch is also in its subjects: class i's stream with epoch E takes
// rc.t<i>.E.> and a topic's publications go to rc.t<i>.E.<topic>, so a node publishing with an
// epoch that is not the stream's reaches no stream (no responders) instead of being stored under
// ids that name another message. Sets `s`'s description and subjects for `epoch`.
void set_topic_epoch(js_stream_config& s, uint32_t retention_class, std::string_view epoch);

class cluster {
 public:
  explicit cluster(shard_server& s);
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;
  ~cluster();  // REQUIRES: stop() finished, or start() never called

  // Connects (and reconnects, forever, until stop()). Shard 0 then ensures the streams.
  void start();
  // Closes the connection (pending requests fail with ECANCELED); `done` runs once it is closed.
  // Listeners are not told (the shard is going away).
  void stop(unique_function<void()> done);

  const std::string& node_id() const { return node_id_; }
  nats_client& nats() { return *nats_; }
  jetstream& js() { return *js_; }

  // Whether the NATS connection is up (the streams may not be ready yet).
  bool connected() const { return connected_; }
  // Connected, and the streams and buckets are ready.
  bool available() const { return connected_ && streams_ready_ && !stopping_; }
  // Why not: "nats: disconnected (<the connection's last error>)", "nats: streams not ready",
  // "nats: streams not ready: <stream>: <why>". Valid until the next call.
  std::string_view unavailable_reason() const;
  // For Retry-After on 503s: the reconnection backoff while disconnected (1 s to 60 s), else 1 s.
  uint32_t retry_after_ms() const;

  // The topic's stream and subject ("RC_T1", "rc.t1.<epoch>.chat.x") and that stream's epoch
  // (empty until the streams are ready). Class i >= 1 is the first --topic-retention entry whose
  // pattern matches, class 0 the rest. REQUIRES: the name has no empty segment (topics refuses
  // those in cluster mode).
  struct topic_route {
    std::string_view stream;
    std::string subject;
    std::string_view epoch;
    uint32_t retention_class = 0;
  };
  topic_route route_topic(std::string_view topic) const;
  size_t topic_classes() const { return topic_streams_.size(); }

  uint32_t broker_partitions() const { return broker_partitions_; }

  // `fn(available)` runs on this shard each time available() changes (never from inside the
  // call that registers it). Returns an id for remove_availability_listener.
  uint64_t on_availability(unique_function<void(bool)> fn);
  void remove_availability_listener(uint64_t id);

  // This shard's numbers for /metrics.
  void snapshot(cluster_metrics& out) const;

  // A publication found no stream for its subject (a topic stream deleted, or created again with
  // another epoch than this shard knows): shard 0 checks the streams now rather than at its next
  // periodic pass (one pass at a time; the result is broadcast as usual). Any shard.
  void streams_missing();

  // Shard 0 -> every shard (mailbox): the streams are ready (`epochs[i]`: topic class i), or not
  // (`reason`).
  void on_streams_state(bool ready, std::vector<std::string> epochs, std::string reason);

 private:
  void on_nats_state(nats_state s);
  void ensure_stores();
  void ensure_step(std::shared_ptr<ensure_run> run);
  void ensure_done(std::shared_ptr<ensure_run> run, const js_error& err,
                   std::string_view what);
  void on_retry();
  void recheck_streams();
  void broadcast(bool ready, const std::vector<std::string>& epochs, const std::string& reason);
  void notify_if_changed();
  void apply_epoch_change();

  shard_server& shard_;
  std::string node_id_;
  nats_options options_;
  std::unique_ptr<nats_client> nats_;
  std::unique_ptr<jetstream> js_;
  uint64_t state_listener_ = 0;
  std::vector<std::string> topic_streams_;  // "RC_T0", "RC_T1", ...
  std::vector<std::string> topic_patterns_;  // [i-1]: class i's pattern
  std::vector<std::string> epochs_;          // [i]: class i's epoch, when ready
  uint32_t broker_partitions_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool connected_ = false;
  bool streams_ready_ = false;
  bool last_available_ = false;
  // The topic streams' epochs changed while this shard's own connection was down: its home
  // topics restart their subscribers once it is back (before, their catch-ups would fail).
  bool epochs_changed_ = false;
  std::string streams_reason_;  // "nats: streams not ready[: why]"
  mutable std::string reason_;  // what unavailable_reason() returned last

  // Shard 0: the ensure pass in progress (older passes' answers are ignored), and the retry
  // after a failure.
  uint64_t ensure_generation_ = 0;
  bool ensuring_ = false;       // a pass is in flight
  bool recheck_again_ = false;  // a stream was found missing meanwhile: another pass after it
  std::string last_ensure_error_;  // logged once per distinct reason
  timer retry_;

  struct listener {
    uint64_t id;
    unique_function<void(bool)> fn;
  };
  std::vector<listener> listeners_;
  uint64_t next_listener_ = 1;
  bool notifying_ = false;
};

}  // namespace rc::server
