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
// Between shards, publications, their events and their answers travel in one mailbox message
// per destination shard per turn (topics_outbox.cc): a run of publications from one shard (an
// HTTP publisher pipelining, connection::defer()) reaches the home together, and its events reach
// each subscriber shard together, so each subscriber gets them in one send.
//
// Subscribing, always through the home (messages between two shards arrive in order):
//   1. the subscriber's shard registers the subscription (not live yet) and asks the home for
//      the events after `since` (none when absent);
//   2. the home adds the shard to the topic's subscriber shards and answers with the epoch, the
//      current sequence number and the history after `since` — or, when that gap is older than
//      the history (or the epoch differs), reset plus all retained history;
//   3. the subscriber replays that, then goes live. Live events that reach the shard meanwhile are
//      already in the answer, so the subscription ignores events until it is live, and any event
//      at or below what it has delivered. A gap (an event whose `prev_seq`, the previous event
//      the home sent for the topic, is beyond what the subscription has) triggers step 1 again.
//
// Across nodes (--nats, docs/cluster.md; topics_cluster.cc, topics_replay.cc): a publication is
// stored in the topic's JetStream stream first (the stream's sequence is the event's seq, so ids
// are the same on every node) and the publisher is answered with the publish ack. On each node
// the topic's home shard holds an ordered push consumer on the topic's subject while the node
// has subscribers of the topic (deleted after a short linger when the last one leaves); what it
// delivers is encoded once and fanned out as above. Sequences are sparse per topic (a stream
// holds many topics): `prev_seq` carries the chain. The home's history covers what its consumer
// delivered; a resume from further back is read from the stream (bounded by the history limits;
// beyond them the client gets a reset). The epoch comes from the stream's creation time.
// Publishing or subscribing while the cluster is unavailable fails with nats_unavailable.
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

#include "base/byte_buffer.h"
#include "core/intrusive_list.h"
#include "core/mailbox.h"
#include "core/shared_buffer.h"
#include "core/unique_function.h"
#include "server/fanout_frames.h"
#include "server/stream.h"

namespace rc {
class reactor;
}

namespace rc::server {

class connection;
class shard_server;
class topic_registry;
struct topic_sub_tag;
struct js_stored_msg;
enum class replay_end : uint8_t;

// One publication, encoded once for every subscriber (see fanout_frames.h).
struct topic_event : fanout_frames {
  uint64_t seq = 0;
  uint64_t prev_seq = 0;  // the home's previous event of this topic (seq - 1 on a single node)
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
    std::string id;          // "<epoch>-<seq>"
    std::string error_code;  // not published: "nats_unavailable" (503), with a message
    std::string error_message;
    uint64_t retry_after_ms = 0;
    bool ok() const { return error_code.empty(); }
    // The answer's JSON, the same over HTTP and /ws: {"topic":..,"seq":..,"id":..}.
    void write_json(byte_buffer& out) const;
  };
  // Publishes `json` (one compact JSON value) to `topic`; `done` runs on this shard afterwards
  // (before publish() returns when this shard is the topic's home on a single node).
  void publish(std::string topic, std::string json, unique_function<void(publish_result&&)> done);
  // Whether publish() answers in a later turn by a mailbox round trip (one node, the topic homed on
  // another shard): such publications may be pipelined (connection::defer()).
  bool answers_later(std::string_view topic) const;

  // Whether topics can be published to and subscribed to now: always on a single node; with
  // --nats while the cluster is available. Empty when available, else why not (for the 503
  // nats_unavailable), and retry_after_ms() for its Retry-After.
  std::string_view unavailable_reason() const;
  uint64_t retry_after_ms() const;

  // Subscribes connection `c` (an SSE response in progress, or a WebSocket). `since` is the
  // client's Last-Event-ID ("<epoch>-<seq>", or just "<seq>"), empty for live events only.
  // The subscription attaches to the connection as a producer; the connection owns its end.
  topic_subscription* subscribe(connection& c, std::string_view topic, subscriber_kind kind,
                                std::string_view since, std::string_view request_id);
  void unsubscribe(topic_subscription& s);
  // Unsubscribes by id; nothing happens if that subscription has already ended.
  void unsubscribe(uint64_t subscription_id);
  // Cluster mode, at the end of the drain (no subscriber is left): stops every consumer now,
  // while the NATS connection is still there to delete them, instead of after their linger.
  void release_cluster();
  // Cluster mode, when a topic stream's epoch changed (the stream was created again): the home
  // topics of that stream start over from the new stream, and their subscribers get a reset.
  void on_epochs_changed();

  // Whether that subscription is still on (the server ends one with an error event sometimes).
  bool subscribed(uint64_t subscription_id) const { return by_id_.count(subscription_id) != 0; }

 private:
  friend class topic_subscription;
  struct home_topic;
  struct local_topic;
  struct catch_up;
  struct topic_stream;
  struct js_replay;
  struct stream_origin;
  friend struct topic_stream;

  // Messages between shards batched per turn (topics_outbox.cc): post_batched keeps `m` for
  // another shard `to` and the end of the turn posts what each shard gets as one message, in
  // order; `refused` runs here instead of `m` if that shard's mailbox refuses it. A message to
  // this shard skips the outbox and runs with this turn's messages (its inbox), under the same
  // per-turn limit. Messages that must not wait for the turn's end (subscribing) use loop().post.
  void post_batched(unsigned to, message m, message refused = {});
  void flush_outbox();
  // The receiving side: runs what shard `from` batched, at most the mailbox's per-turn limit of
  // messages from one shard per turn; the rest waits, in order, for the next turns.
  void take_batch(unsigned from, std::vector<message>&& batch);
  void run_inbox(unsigned from);
  // Sends event `e` of topic `name` to every shard with subscribers (on_event there): the one
  // place an event leaves its home, encoded once (encode_event) and queued by reference.
  void fan_out(const home_topic& t, const topic_event& e);

  // Home side (runs on the topic's home shard).
  home_topic& home(const std::string& name);
  // Publishes on the home shard: sequence, encoding, history, and the events to subscribers.
  publish_result publish_at_home(std::string topic, std::string json);
  void home_publish(const std::string& name, std::string json, topic_event& out);
  catch_up home_subscribe(unsigned shard, const std::string& name, std::string_view since);
  void home_catch_up(unsigned shard, uint64_t sub_id, const std::string& name, std::string since);
  void home_unsubscribe(unsigned shard, const std::string& name);
  void evict_idle_topics();
  // Encodes one event of `name` (both framings); `json` is the publication.
  static topic_event encode_event(std::string_view name, std::string_view epoch, uint64_t seq,
                                  std::string_view json);
  // Appends to the history, bounded by events and bytes; returns the seq of the newest event
  // dropped (0 if none).
  uint64_t remember(home_topic& t, const topic_event& e);
  void send_catch_up(unsigned shard, uint64_t sub_id, catch_up&& c);

  // Cluster side (topics_cluster.cc, topics_replay.cc): only with --nats.
  void cluster_publish(std::string topic, std::string json,
                       unique_function<void(publish_result&&)> done);
  void cluster_catch_up(home_topic& t, unsigned shard, uint64_t sub_id, std::string since);
  void start_consumer(home_topic& t);
  void on_consumer_ready(home_topic& t, uint64_t floor);
  void fail_waiting(home_topic& t, std::string_view message);
  void on_stream_message(home_topic& t, uint64_t seq, std::string_view data);
  catch_up stream_catch_up(home_topic& t, bool reset) const;
  void answer_from_stream(home_topic& t, unsigned shard, uint64_t sub_id, std::string since);
  void check_resume_point(home_topic& t, unsigned shard, uint64_t sub_id, uint64_t after);
  void on_resume_point(const stream_origin& o, unsigned shard, uint64_t sub_id, uint64_t after,
                       const js_stored_msg& m);
  void start_replay(home_topic& t, unsigned shard, uint64_t sub_id, uint64_t after);
  void on_replay_message(home_topic& t, js_replay& r, uint64_t seq, uint64_t pending,
                         std::string_view data);
  void end_replay(home_topic& t, js_replay& r, replay_end how);
  catch_up replay_answer(home_topic& t, js_replay& r);
  void check_idle(home_topic& t);
  void on_linger_end(const std::string& name);
  home_topic* find_stream_home(const stream_origin& o);

  // Subscriber side.
  void request_catch_up(topic_subscription& s, std::string since);
  void on_catch_up(uint64_t sub_id, catch_up&& c);
  void end_subscription(topic_subscription& s, std::string_view code, std::string_view message);
  void on_event(const std::string& name, const topic_event& e);
  void restart_subscribers(const std::string& name);  // asks the home again for each live one
  void remove(topic_subscription& s);

  shard_server& shard_;
  std::unordered_map<std::string, std::unique_ptr<home_topic>> homes_;
  std::unordered_map<std::string, std::unique_ptr<local_topic>> locals_;
  std::unordered_map<uint64_t, topic_subscription*> by_id_;
  uint64_t next_sub_id_ = 1;
  uint64_t use_clock_ = 0;
  uint64_t next_stream_id_ = 1;  // topic_stream generations, to ignore late JetStream answers
  struct outbox_entry {
    message run;
    message refused;  // may be empty
  };
  std::vector<std::vector<outbox_entry>> outbox_;  // by destination shard, until the turn's end
  struct inbox {
    std::vector<message> pending;  // from `head` on: not run yet
    size_t head = 0;
    uint64_t turn = ~uint64_t{0};  // the loop turn `ran` counts in
    uint32_t ran = 0;
    bool scheduled = false;  // a run_inbox for the next turn is posted
  };
  std::vector<inbox> inbox_;  // by sending shard
  bool outbox_pending_ = false;
  uint64_t outbox_flushed_turn_ = ~uint64_t{0};  // the loop turn whose end flushed last
};

}  // namespace rc::server
