// The broker queue (API.md, "Broker queue"): per-user ordered work with a lifecycle anyone can
// watch.
//
// Home shards: a user's messages live on hash(user_id) % shards; message ids encode it
// ("msg_<shard>_<hex>"), so a watcher finds the message without a lookup.
//
// Order: a user's messages run one at a time, in arrival order; different users run in
// parallel, up to broker_concurrency_max (this shard's share) and the engine's own limit (the
// shard's engine_scheduler). Every queue is bounded — the shard's (broker_queue_max share) and
// each user's (user_queue_max) — and a full one answers 503 with Retry-After at once. A message
// that waited longer than shed_queue_delay_ms is shed instead of processed; one past its deadline
// (x-ringcast-timeout-ms at enqueue) ends with deadline_exceeded, also mid-processing.
//
// Lifecycle log: every message keeps its events — queued {message_id, position} (again whenever
// its position changes), processing, progress {delta}..., then done {message_id, output: {text},
// usage} or error {message_id, code, message}. Each event is encoded once (an SSE frame with its
// `id: <seq>`, and a WebSocket continuation fragment) and numbered 1, 2, 3... A finished
// message's log is kept for broker_retention_ms, so a subscriber may arrive before, during or
// after processing and see everything (bounded by broker_log_events_max: beyond it the oldest
// progress events are dropped; the final event carries the whole output anyway).
//
// Watching works like topics (topics.h): the watcher's shard asks the home for the log after the
// client's Last-Event-ID and for live events, which reach each shard with watchers once; a watcher
// ignores live events until its catch-up has arrived, and anything at or below what it already
// delivered. An SSE stream ends after the final event.
//
// Cluster mode (--nats, docs/cluster.md; broker_cluster.h): users are split into partitions
// (fnv1a(user) % broker_partitions), each worked by the one node holding its lease; on every node
// partition k lives on shard k % shards. An accepted message is stored in JetStream (RC_BROKER)
// before the 202, its events in RC_BROKER_LOG; a node taking a partition over re-queues what is
// left. Watching and cancelling work from any node.
//
// Thread-safety: one broker per shard; shards talk by message.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/intrusive_list.h"
#include "core/shared_buffer.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "proto/openai_errors.h"
#include "server/engine.h"
#include "server/stream.h"
#include "server/topics.h"

namespace rc::server {

class broker_cluster;
class cluster;
class connection;
class shard_server;
class broker;
struct watch_tag;

// One lifecycle event of a message, encoded once for every watcher (see fanout_frames.h): SSE
// "id: <seq>\nevent: <type>\ndata: <json>", WebSocket "event":"<type>","event_id":"<seq>",
// "data":<json>} (the request's own "id" comes first, in the watcher's prefix).
struct broker_event : fanout_frames {
  uint64_t seq = 0;
  bool terminal = false;
};

// A watcher: one SSE stream or one WebSocket message.stream request.
class broker_watch final : public stream_producer, public list_node<watch_tag> {
 public:
  broker_watch(broker& b, connection& c, std::string message_id, subscriber_kind kind, uint64_t id,
               std::string request_id);
  uint64_t id() const { return id_; }
  void on_stream_closed() override;
  void on_cut(std::string_view code, std::string_view message) override;

 private:
  friend class broker;
  friend class broker_cluster;
  bool deliver(const broker_event& e);
  // The final event went out: end the stream.
  void finish();

  broker& broker_;
  connection& conn_;
  std::string message_id_;
  subscriber_kind kind_;
  uint64_t id_;
  std::string request_id_;
  std::string user_id_;
  shared_buffer ws_prefix_;
  uint64_t last_seq_ = 0;
  uint64_t remote_ = 0;  // cluster mode: the ordered consumer reading the message's stored log
  bool live_ = false;
};

struct broker_request {
  std::string user_id;
  std::string text;  // the message
  generation_request generation;
  uint64_t deadline_ms = 0;  // 0: none
  std::string body;          // the request as the client sent it (cluster mode stores it)
};

// Reads a POST /api/v1/message body into `out` (broker_routes.cc): the error to answer, if any.
std::optional<openai::api_error> parse_broker_request(shard_server& shard, const json::value& root,
                                                      broker_request& out);

class broker {
 public:
  explicit broker(shard_server& shard);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  unsigned home_of_user(std::string_view user_id) const;

  struct enqueue_result {
    std::optional<openai::api_error> error;  // queue full (503) and the like
    uint64_t retry_after_ms = 0;
    std::string message_id;
    uint64_t position = 0;  // messages of this user ahead of it
  };
  // Queues on the user's home shard; `done` runs on this shard with the outcome.
  void enqueue(broker_request&& req, unique_function<void(enqueue_result&&)> done);

  // Watches a message from any shard. `after_seq`: the client's Last-Event-ID (0: from the
  // start). `ready(found)` runs on this shard once the home answered, before any event is
  // delivered; unless found, the watch is already gone (404, or 503 when the cluster cannot be
  // asked). The returned id identifies the watch for cancel_watch (it may end on its own before
  // that).
  enum class watch_answer : uint8_t { found, not_found, unavailable };
  uint64_t watch(connection& c, std::string user_id, std::string message_id, subscriber_kind kind,
                 uint64_t after_seq, std::string request_id,
                 unique_function<void(watch_answer)> ready);
  // Ends a watch on this shard; false if it had already ended.
  bool cancel_watch(uint64_t watch_id);
  bool watching(uint64_t watch_id) const { return watches_.count(watch_id) != 0; }

  // Cancels message `message_id` of `user_id` (DELETE /api/v1/message/{id}), from any shard: a
  // queued message leaves its queue, a processing one has its generation stopped; either way its
  // log ends with error {code: "cancelled"}. `done` runs on this shard with the outcome.
  enum class cancel_outcome : uint8_t {
    cancelled_queued,
    cancelled_processing,
    finished,   // it had already ended (done or error): nothing to cancel
    not_found,    // unknown, expired, or another user's
    unavailable,  // cluster mode: the partition's owner could not be asked (503)
  };
  void cancel(std::string user_id, std::string message_id,
              unique_function<void(cancel_outcome)> done);

  // Messages waiting on this shard (for health and metrics).
  uint64_t waiting() const { return waiting_; }

  // Cluster mode: the shard calls it once its cluster exists (before the loop runs); the
  // constructor does when shard_server::cluster_link() is already set. Idempotent.
  void attach_cluster(cluster& c);
  // Cluster mode only (nullptr otherwise).
  broker_cluster* cluster_side() { return cluster_.get(); }

 private:
  friend class broker_watch;
  friend class broker_cluster;
  struct message;
  struct user_queue;
  struct worker;
  struct catch_up {
    bool found = false;
    std::vector<broker_event> events;  // after the watcher's after_seq
    uint64_t seq = 0;                  // the log's last seq when the home answered
    bool stored = false;  // cluster mode: not here (or not all of it): read the stored log
  };

  // Home side.
  enqueue_result home_enqueue(broker_request&& req);
  // The queue-full refusal for `user_id` (`extra`: messages accepted but not yet queued), if any.
  std::optional<enqueue_result> refuse_full(const std::string& user_id, uint64_t extra);
  // Queues an accepted message (capacity already checked). Cluster mode passes the stored work
  // item: its partition, stream sequence, and where its log continues.
  struct accepted {
    std::string id;
    int32_t partition = -1;  // -1: single node
    uint64_t work_seq = 0;
    uint64_t next_seq = 1;
    uint32_t attempts = 0;
    uint64_t log_stream_seq = 0;  // RC_BROKER_LOG's sequence of its last stored event
  };
  enqueue_result accept(broker_request&& req, accepted&& a);
  void try_start(const std::string& user_id);
  void start_processing(message& m);
  void append(message& m, std::string_view type, std::string json, bool terminal);
  // Puts an event in the message's log and sends it to its watchers.
  void record(message& m, broker_event&& e);
  // Cluster mode: the held event `seq` of `message_id` is stored: watchers get it (a terminal
  // one ends the message).
  void on_event_stored(const std::string& message_id, uint64_t seq);
  void position_updates(user_queue& u);
  // A message that was processing ended: free its worker, let the user's next one start.
  void on_finished(message& m);
  // A message's own resources (deadline, worker, processing slot); starts its retention.
  void release_message(message& m);
  void forget_idle_user(const std::string& user_id);
  void on_deadline(message& m);
  // Ends a queued or processing message with an error event `code` (deadline, cancel).
  void end_early(message& m, std::string_view code, std::string_view text);
  cancel_outcome home_cancel(const std::string& user_id, const std::string& message_id);
  void forget(const std::string& message_id);
  catch_up home_watch(unsigned shard, const std::string& user_id, const std::string& message_id,
                      uint64_t after_seq);
  // The same for a watcher that already passed the user check (after a gap).
  catch_up home_rewatch(unsigned shard, const std::string& message_id, uint64_t after_seq);
  void home_unwatch(unsigned shard, const std::string& message_id);

  // Watcher side.
  void on_catch_up(uint64_t watch_id, catch_up&& c);
  // The home shard of a message: from its id, or (cluster mode) from its user's partition.
  int home_of(std::string_view user_id, std::string_view message_id) const;
  void on_event(const std::string& message_id, const broker_event& e);
  void remove(broker_watch& w);

  shard_server& shard_;
  std::unordered_map<std::string, std::unique_ptr<message>> messages_;  // homed here
  std::unordered_map<std::string, user_queue> users_;
  std::deque<std::string> ready_users_;  // users whose next message waits for a processing slot
  uint64_t waiting_ = 0;
  uint32_t processing_ = 0;

  struct local_watchers {
    intrusive_list<broker_watch, watch_tag> list;
    size_t count = 0;
    bool delivering = false;
    int home = -1;  // the message's home shard (-1: not a message id of ours)
  };
  std::unordered_map<std::string, local_watchers> watching_;  // message id -> watchers here
  std::unordered_map<uint64_t, broker_watch*> watches_;
  std::unordered_map<uint64_t, unique_function<void(watch_answer)>> pending_ready_;
  uint64_t next_watch_id_ = 1;
  // Last: its destructor stops consumers and subscriptions that call into the members above.
  std::unique_ptr<broker_cluster> cluster_;
};

}  // namespace rc::server
