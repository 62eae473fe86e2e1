// shard_server: the application state of one shard — its listener, connections, metrics, date
// cache, request-id generator, and the drain protocol.
//
// Every shard runs one; they share nothing mutable. Work that concerns all shards (a /metrics
// scrape, draining on SIGTERM) travels as messages. shard_server::current() is the instance of the
// calling thread, which is how a message finds its shard.
//
// Draining (SIGTERM/SIGINT, read on shard 0 and forwarded to every shard):
//   1. grace (drain_grace_ms): listeners keep accepting so load balancers see /readyz answer 503;
//      every response carries Connection: close; idle keep-alive connections close; WebSocket
//      upgrades and topic subscriptions are refused (503); endless streams end with a "draining"
//      error event; streams that end by themselves run on.
//   2. after the grace, the listeners close.
//   3. at drain_timeout_ms (from the signal) whatever still runs ends with the "draining" error
//      (a request still running: 503), and drain_flush_ms later every connection left is dropped.
// A second signal jumps to step 3 at once. A shard stops its loop when it has no connections
// left and its listener is closed; the process exits 0 when every shard has stopped. In a cluster
// the shard's NATS connection closes last, once every shard is idle (after topics and broker have
// let go of their subscriptions and consumers).
//
// Reloading (SIGHUP, read on shard 0): shard 0 builds a new shared_rules snapshot (rules.h) and
// posts it to every shard; apply_rules swaps it in between turns and re-derives what the shard
// caches from it, the engine table included. Work in progress keeps the snapshot it started with
// (a rules_ref) and its engine (share_engine).
//
// Thread-safety: owned by its shard thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/intrusive_list.h"
#include "core/listener.h"
#include "core/reactor.h"
#include "core/stream_socket.h"
#include "core/timer_wheel.h"
#include "proto/http1_parser.h"
#include "proto/http1_writer.h"
#include "proto/json_reader.h"
#include "proto/jwt.h"
#include "server/access_log.h"
#include "server/admission.h"
#include "server/broker.h"
#include "server/config.h"
#include "server/connection.h"
#include "server/engine.h"
#include "server/engine_table.h"
#include "server/inbound_budget.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/resolver.h"
#include "server/responses_store.h"
#include "server/rules.h"
#include "server/scheduler.h"
#include "server/topics.h"

namespace rc::server {

class cluster;

class shard_server {
 public:
  shard_server(reactor& r, process_state& process, int listen_fd);
  shard_server(const shard_server&) = delete;
  shard_server& operator=(const shard_server&) = delete;
  ~shard_server();

  static shard_server* current();

  // Starts accepting (and, on shard 0, listening for termination signals), then runs the loop
  // until the shard has drained.
  void run();

  reactor& loop() { return reactor_; }
  unsigned id() const { return reactor_.shard_id(); }
  unsigned shard_count() const { return reactor_.shard_count(); }
  // The running snapshot's settings: read them where they are used, not once, so a reload applies.
  const server_config& config() const { return rules_->config; }
  const rules_ref& rules() const { return rules_; }
  const http1::limits& limits() const { return limits_; }
  const http1::date_cache& date() const { return date_; }
  socket_set& sockets() { return sockets_; }
  shard_metrics& metrics() { return metrics_; }
  inbound_budget& inbound() { return inbound_; }
  // This shard's access log writer (enabled() is false without --access-log).
  access_log& access_logger() { return access_log_; }
  // The shard's resolver for upstream host names (hosts file, then DNS on the ring; cached).
  resolver& names() { return *names_; }
  // Reopens the access log on every shard (log rotation). Shard 0 calls it on SIGUSR1; SIGHUP
  // (config reload) should call it too.
  void reopen_logs_on_all_shards();
  bool draining() const { return draining_; }
  uint64_t connections_open() const;
  // Where requests are parsed. One per shard: parsing never nests (handlers that complete other
  // connections' requests defer their parsing to a later turn).
  http1::request& scratch_request() { return scratch_request_; }

  // Outbound rings for streaming connections, recycled (LIFO, so warm in cache).
  std::shared_ptr<outbound_ring> acquire_ring();
  void release_ring(std::shared_ptr<outbound_ring>&& r);

  // This shard's part of the cluster (cluster.h), or nullptr when single-node (no --nats).
  cluster* cluster_link() { return cluster_.get(); }
  // This node's id in a cluster (process_state::node_id).
  const std::string& node_id() const { return process_.node_id; }
  // Cluster mode: how many shards can use NATS now (process_state::cluster_shards_available).
  std::atomic<unsigned>& cluster_shards_available() { return process_.cluster_shards_available; }

  topic_registry& topics() { return topics_; }
  engine_scheduler& scheduler() { return scheduler_; }
  broker& broker_queue() { return broker_; }
  // Per-key and per-address budgets (rates, stream caps), exact across shards.
  shard_limits& budgets() { return budgets_; }
  const api_keys& keys() const { return rules_->keys; }
  const jwt::verifier& tokens() const { return rules_->tokens; }
  const cors_policy& cors() const { return rules_->cors; }
  // This shard's share of a process-wide limit (at least 1 when the limit is non-zero).
  uint32_t share_of(uint32_t total) const;
  responses_store& responses() { return responses_; }
  // The engine serving `model`, or nullptr (404 model_not_found): the mock for its models, else
  // the upstream the running routing table names (engine_table.h). The pointer is good for this
  // turn; work that outlives the turn holds share_engine(*e).
  engine* engine_for(std::string_view model) { return engines_.find(model); }
  // The owning handle of an engine engine_for returned this turn: a generation holds it so that a
  // reload replacing the engine lets it finish.
  std::shared_ptr<engine> share_engine(const engine& e) const { return engines_.share(e); }
  // The built-in mock (its tools serve WS tool.invoke whatever the routing).
  engine* default_engine() { return engines_.mock(); }
  // The model a request that names none gets (the broker queue); empty: none, ask for one.
  std::string_view default_model() const { return engines_.default_model(); }
  // The running upstreams and model routes: engines map a client's model to the upstream's name
  // with routes().find(model).
  const routing_table& routes() const { return *rules_->routing; }
  const engine_table& engines() const { return engines_; }
  // Wall-clock second the shard started (the `created` of /v1/models entries).
  int64_t started_wall_s() const { return started_wall_s_; }
  // Monotonic millisecond (reactor::now_ms) the shard started.
  uint64_t started_ms() const { return started_ms_; }
  // The shard's JSON parser (one per shard; results live until its next parse).
  json::parser& json_parser() { return json_parser_; }

  // A fresh x-request-id: 16 hex digits, unique (a random per-shard prefix and a counter), cheap.
  // Writes into `out`. Not unguessable: don't use it for ids that grant access.
  size_t make_request_id(char* out);
  // 16 hex digits nobody can predict (a keyed SHA-1 of a counter): for ids that grant access,
  // such as response and message ids. Writes into `out`.
  void make_token(char* out);

  // The live connection with this id on this shard, or nullptr (it may have closed).
  connection* find_connection(uint64_t id);
  // The same, but also nullptr while the connection is closing (nothing more can be sent).
  connection* live_connection(uint64_t id);
  void on_connection_closed(connection& c);

  // A copy of this shard's metrics (with reactor counters), for /metrics.
  shard_metrics snapshot_metrics() const;
  // Gathers every shard's snapshot, then calls `done` on this shard with them (index = shard).
  void collect_metrics(unique_function<void(std::vector<shard_metrics>&&)> done);

  // Begins draining this shard (idempotent). `force`: abort everything now.
  void begin_drain(bool force = false);

  // Makes `next` the running snapshot (a reload): called on each shard through its mailbox.
  void apply_rules(std::shared_ptr<const shared_rules> next);

 private:
  void on_accept(int fd);
  void new_request_id_prefix();
  void on_signal(int signo);
  void on_reload_signal();
  void apply_config();
  void rebuild_engines();
  void on_turn_end();
  void on_drain_grace();
  void on_drain_deadline();
  void on_drain_flushed();
  void watch_draining_connections();
  void for_each_connection_bytes(uint64_t& in, uint64_t& out) const;
  void on_snapshot(uint64_t collection_id, unsigned from, shard_metrics&& snapshot);

  reactor& reactor_;
  process_state& process_;
  rules_ref rules_;
  http1::limits limits_;
  http1::date_cache date_;
  socket_set sockets_;
  shard_metrics metrics_;
  inbound_budget inbound_;
  access_log access_log_;
  acceptor acceptor_;
  std::unique_ptr<signal_reader> signals_;
  intrusive_list<connection, connection_list_tag> connections_;
  std::unordered_map<uint64_t, connection*> by_id_;
  uint64_t next_connection_id_;
  char request_id_prefix_[8];
  uint32_t request_counter_ = 0;
  uint8_t token_key_[16];
  uint64_t token_counter_ = 0;
  uint64_t started_ms_;
  bool draining_ = false;
  bool counted_idle_ = false;    // added to process_state::shards_idle
  bool upstreams_released_ = false;  // at the stop: upstream engines let go of their pools
  bool stop_requested_ = false;  // every shard is idle: stop the loop
  bool drain_deadline_passed_ = false;
  timer drain_grace_;
  timer drain_deadline_;
  timer drain_flushed_;
  // WebSockets waiting for their streams to end before they close (see connection::drain_step).
  std::vector<uint64_t> drain_watch_;
  http1::request scratch_request_;
  json::parser json_parser_;
  std::vector<std::shared_ptr<outbound_ring>> ring_pool_;
  outbound_ring_options ring_options_;
  // Host names of upstreams, shared by every engine's client on this shard (one cache). Before
  // the engines: they use it until they are destroyed.
  std::unique_ptr<resolver> names_;
  // With --nats: the shard's NATS connection and streams (cluster.h). Before the engines, topics
  // and broker, which use it until they are destroyed; stopped at the end of the drain, after them.
  std::unique_ptr<cluster> cluster_;
  bool cluster_stopping_ = false;
  bool cluster_stopped_ = false;
  // Engines first: everything below may hold streams of theirs, and members are destroyed in
  // reverse order.
  engine_table engines_;
  topic_registry topics_;
  responses_store responses_;
  engine_scheduler scheduler_;
  shard_limits budgets_;
  broker broker_;
  int64_t started_wall_s_;

  // Pending /metrics collections on this shard.
  struct collection {
    std::vector<shard_metrics> snapshots;
    unsigned outstanding = 0;
    unique_function<void(std::vector<shard_metrics>&&)> done;
  };
  std::unordered_map<uint64_t, std::unique_ptr<collection>> collections_;
  uint64_t next_collection_ = 0;
};

}  // namespace rc::server
