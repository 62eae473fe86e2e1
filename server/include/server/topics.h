// Topics: publish/subscribe with high fan-out across shards, and resumption from history.
//
// Every topic has a home shard (hash of its name). The home assigns sequence numbers, encodes
// each publication once — one SSE frame (with its HTTP chunk framing) and one WebSocket
// continuation frame — keeps a bounded history of them, and sends each event once to every
// shard that has subscribers. There the event is queued by reference on every local
// subscriber. Event ids are "<epoch>-<seq>"; the epoch is drawn when the home creates the topic,
// so ids from before a restart (or an eviction) never silently resume into a gap.
//
// WebSocket subscribers receive each event as one message in two fragments: a first fragment
// made once per subscription (`{"id":"<subscribe request id>",`) and the shared continuation
// (`"event":"message","data":{...}}`), so the message carries the subscriber's request id while
// the publication is still encoded once.
//
// Subscribing, always through the home (messages between two shards arrive in order):
//   1. the subscriber's shard registers the subscription (not live yet) and asks the home for
//      the events after `since` (none when absent);
//   2. the home adds the shard to the topic's subscriber shards and answers with the epoch, the
//      current sequence number and the history after `since` — or, when that gap is older than
//      the history (or the epoch differs), reset plus all retained history;
//   3. the subscriber replays that, then goes live. Live events that reach the shard meanwhile are
//      already in the answer, so the subscription ignores events until it is live, and any event
//      at or below what it has delivered. A sequence gap (a lost message) triggers step 1 again.
//
// Thread-safety: a registry belongs to its shard; shards talk through messages only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/intrusive_list.h"
#include "core/shared_buffer.h"
#include "core/unique_function.h"
#include "server/fanout_frames.h"
#include "server/stream.h"

namespace rc::server {

class connection;
class shard_server;
class topic_registry;
struct topic_sub_tag;

// One publication, encoded once for every subscriber (see fanout_frames.h).
struct topic_event : fanout_frames {
  uint64_t seq = 0;
};

class topic_subscription final : public stream_producer, public list_node<topic_sub_tag> {
 public:
  topic_subscription(topic_registry& reg, connection& c, std::string topic, subscriber_kind kind,
                     uint64_t id, std::string request_id);

  uint64_t id() const { return id_; }
  const std::string& topic() const { return topic_; }
  subscriber_kind kind() const { return kind_; }
  connection& conn() { return conn_; }
  const std::string& request_id() const { return request_id_; }

  // Queues an event on the connection; false if the connection refused it.
  bool deliver(const topic_event& e);
  void on_stream_closed() override;
  void on_cut(std::string_view code, std::string_view message) override;
  bool ends_by_itself() const override { return false; }

 private:
  friend class topic_registry;
  topic_registry& registry_;
  connection& conn_;
  std::string topic_;
  subscriber_kind kind_;
  uint64_t id_;
  std::string request_id_;   // WebSocket subscribe request id
  shared_buffer ws_prefix_;  // first fragment: header + {"id":"<request id>",
  std::string epoch_;        // from the home's last answer (for resuming after a gap)
  uint64_t last_seq_ = 0;
  bool live_ = false;
};

class topic_registry {
 public:
  explicit topic_registry(shard_server& shard);
  ~topic_registry();
  topic_registry(const topic_registry&) = delete;
  topic_registry& operator=(const topic_registry&) = delete;

  // Whether `name` is a valid topic name; otherwise why not.
  std::string_view check_name(std::string_view name) const;
  unsigned home_of(std::string_view name) const;

  struct publish_result {
    std::string topic;
    uint64_t seq = 0;
    std::string id;  // "<epoch>-<seq>"
  };
  // Publishes `json` (one compact JSON value) to `topic`; `done` runs on this shard afterwards
  // (before publish() returns when this shard is the topic's home).
  void publish(std::string topic, std::string json, unique_function<void(publish_result&&)> done);

  // Subscribes connection `c` (an SSE response in progress, or a WebSocket). `since` is the
  // client's Last-Event-ID ("<epoch>-<seq>", or just "<seq>"), empty for live events only.
  // The subscription attaches to the connection as a producer; the connection owns its end.
  topic_subscription* subscribe(connection& c, std::string_view topic, subscriber_kind kind,
                                std::string_view since, std::string_view request_id);
  void unsubscribe(topic_subscription& s);
  // Unsubscribes by id; nothing happens if that subscription has already ended.
  void unsubscribe(uint64_t subscription_id);

 private:
  friend class topic_subscription;
  struct home_topic;
  struct local_topic;
  struct catch_up;

  // Home side (runs on the topic's home shard).
  home_topic& home(const std::string& name);
  // Publishes on the home shard: sequence, encoding, history, and the events to subscribers.
  publish_result publish_at_home(std::string topic, std::string json);
  void home_publish(const std::string& name, std::string json, topic_event& out);
  catch_up home_subscribe(unsigned shard, const std::string& name, std::string_view since);
  void home_unsubscribe(unsigned shard, const std::string& name);
  void evict_idle_topics();

  // Subscriber side.
  void request_catch_up(topic_subscription& s, std::string since);
  void on_catch_up(uint64_t sub_id, catch_up&& c);
  void on_event(const std::string& name, const topic_event& e);
  void remove(topic_subscription& s);

  shard_server& shard_;
  std::unordered_map<std::string, std::unique_ptr<home_topic>> homes_;
  std::unordered_map<std::string, std::unique_ptr<local_topic>> locals_;
  std::unordered_map<uint64_t, topic_subscription*> by_id_;
  uint64_t next_sub_id_ = 1;
  uint64_t use_clock_ = 0;
};

}  // namespace rc::server
