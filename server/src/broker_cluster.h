// The broker across nodes (broker.h, docs/cluster.md): one broker_cluster per shard, only with
// --nats.
//
// Partitions: a user belongs to partition fnv1a(user) % broker_partitions; on every node
// partition k lives on shard k % shards. A partition is worked by the node holding its lease,
// the key p<k> of the KV bucket rc_owners (value: the node id). Shard 0's broker_leases keeps
// the node's leases: it writes the node's heartbeat n.<node> every lease_ms / 3, renews each
// lease with the revision it holds, claims free partitions (created with expected last subject
// sequence 0; a lease released as "" or still naming this node is taken with its revision) up
// to a fair share (partitions / live nodes, rounded up), hands idle ones beyond the share back,
// and tells the partition's shard when it gains or loses one. A lease it could not renew for
// lease_ms - lease_ms / 5 is dropped first: its shard stops working the partition (queued and
// processing messages are let go, their work items stay stored for the next owner).
//
// Storage (JetStream; the streams and the bucket are the cluster's, cluster_streams.cc): an
// accepted message is the work item rc.bq.<k>.<message id> in RC_BROKER (headers Nats-Msg-Id,
// Rc-User, Rc-Deadline; body: the request as the client sent it), stored before the 202. Its
// lifecycle events go to rc.bl.<message id> in RC_BROKER_LOG (headers Rc-Seq, Rc-Event, Rc-User,
// Rc-Attempt; body: the event's JSON), one message's events one at a time, in order, each with
// an ack (sent again while the partition is held; Nats-Msg-Id <id>.<seq>), chained by
// Nats-Expected-Last-Subject-Sequence so a stale owner's late write is refused. Watchers get an
// event only once it is stored; the terminal event is stored before the work item is deleted,
// and until then the message is "finishing" (its user's queue and its partition stay busy).
//
// Takeover: a shard given partition k reads every work item left under rc.bq.<k>.> in stream
// order and re-queues it, unless its stored log already ends with done or error (then the item
// is deleted: a message never runs twice to completion). A message that was processing starts
// again: its log continues after the last stored event, and processing says {attempt: n}. Only
// then does the shard answer rc.broker.enqueue.<k> and rc.broker.cancel.<k> (queue group
// rc-broker); enqueues meanwhile are refused with 503 broker_unavailable.
//
// Enqueue, on the user's home shard: the partition is worked here → store, then queue; else a
// NATS request to rc.broker.enqueue.<k> (the owner stores and queues, and answers the 202's
// fields); NATS away, nobody owning the partition or no answer → 503 broker_unavailable with
// Retry-After. Cancel goes the same way. Watching: the home's log when this node works the
// partition and holds every event the watcher needs; else an ordered consumer on rc.bl.<id>
// (broker_cluster_watch.cc) after a check that the message exists (its log, or its work item).
//
// Thread-safety: owned by its shard; shards talk by message, nodes by NATS.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "server/broker.h"

namespace rc::server {

class cluster;
class jetstream;
class nats_client;
struct js_delivery;
struct nats_msg;

// Shard 0's lease keeper (see above).
class broker_leases {
 public:
  broker_leases(shard_server& s, cluster& c);
  ~broker_leases();
  broker_leases(const broker_leases&) = delete;
  broker_leases& operator=(const broker_leases&) = delete;

  // The partition's shard answered a release request: `idle` when it let the partition go.
  void on_released(uint32_t partition, bool idle);

 private:
  struct lease {
    uint64_t revision = 0;
    uint64_t renewed_ms = 0;  // when the last successful renewal (or claim) was sent
    bool renewing = false;
    bool releasing = false;
    bool released = false;  // the shard let it go while a renewal was in flight
  };
  void tick();
  void renew(uint32_t p);
  void balance(uint32_t live_nodes);
  void claim(uint32_t p);
  void hand_back(uint32_t p, uint64_t revision);
  void own(uint32_t p, uint64_t revision, uint64_t sent_ms);
  void lose(uint32_t p);
  uint32_t lease_ms() const;

  shard_server& shard_;
  cluster& cluster_;
  std::map<uint32_t, lease> owned_;
  std::set<uint32_t> claiming_;   // looked at (kv_get) or being written
  uint32_t writing_ = 0;           // claims being written (kv_create / kv_update)
  uint32_t share_ = 0;             // the fair share last computed
  bool counting_ = false;
  timer tick_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class broker_cluster {
 public:
  broker_cluster(broker& b, cluster& c);
  ~broker_cluster();
  broker_cluster(const broker_cluster&) = delete;
  broker_cluster& operator=(const broker_cluster&) = delete;

  uint32_t partition_of(std::string_view user_id) const;
  // 16 hex digits naming a user in stored headers (Rc-User): checks that a watcher or a canceller
  // names the message's own user.
  static std::string user_tag(std::string_view user_id);

  // On the user's home shard (broker.h): enqueue and cancel (see above).
  void enqueue(broker_request&& req, unique_function<void(broker::enqueue_result&&)> done);
  void cancel(std::string user_id, std::string message_id,
              unique_function<void(broker::cancel_outcome)> done);
  // broker::append calls it for every event of a message of a partition held here: stores it
  // (chained, acknowledged, in order), then calls broker::on_event_stored. False: not held here.
  bool store_event(broker::message& m, uint64_t seq, std::string_view type, std::string_view json,
                   bool terminal);

  // From shard 0's broker_leases (on the partition's shard).
  void on_claimed(uint32_t p);
  void on_lost(uint32_t p);
  // Lets partition `p` go if nothing of it is queued, processing or being stored; answers
  // shard 0.
  void release_if_idle(uint32_t p);
  broker_leases* leases() { return leases_.get(); }

  // Watcher side (broker_cluster_watch.cc). Answers the watch's `ready` after checking that the
  // message exists in storage, then reads its stored log.
  void watch_stored(broker_watch& w);
  // A watch whose message's home let it go (moved): read the stored log after what it has.
  void on_moved(const std::string& message_id);
  // Reading the stored log for `w` (from w.last_seq_ on). stop_reading is safe from inside the
  // consumer's own callback.
  void read_log(broker_watch& w);
  void stop_reading(broker_watch& w);

 private:
  struct partition {
    uint64_t epoch = 0;  // per claim: answers for an older claim are ignored
    bool working = false;
    uint64_t consumer = 0;  // the takeover's reader of rc.bq.<k>.>
    bool collected = false;
    struct item {
      std::string subject, headers, data;
      uint64_t seq = 0;
    };
    std::vector<item> items;
    size_t next_item = 0;
    uint64_t enqueue_sid = 0, cancel_sid = 0;
  };
  struct pending_store {  // an enqueue waiting for its pub ack (answered in order)
    uint32_t partition = 0;
    uint64_t epoch = 0;
    broker_request req;
    std::string id;
    unique_function<void(broker::enqueue_result&&)> done;
    enum class state : uint8_t { publishing, stored, failed } st = state::publishing;
    uint64_t work_seq = 0;
  };
  struct log_event {  // a lifecycle event to store
    uint64_t seq = 0;
    bool terminal = false;
    uint32_t attempts = 0;
    std::string type, data, user;
  };
  // A message's events not yet stored: stored one at a time, in order, each acknowledged.
  struct log_chain {
    uint32_t partition = 0;
    uint64_t epoch = 0;
    uint64_t last_stored = 0;  // stream seq of its last stored event (0: none)
    uint64_t work_seq = 0;
    std::deque<log_event> events;
    bool in_flight = false;
    bool failed = false;  // waits for retry_
  };

  bool working(uint32_t p) const;
  bool current(uint32_t p, uint64_t epoch) const;
  broker::enqueue_result unavailable(std::string message) const;
  void store(uint32_t p, broker_request&& req,
             unique_function<void(broker::enqueue_result&&)> done);
  void on_stored(const std::string& id, bool ok, uint64_t seq);
  void forward(uint32_t p, broker_request&& req,
               unique_function<void(broker::enqueue_result&&)> done);
  void on_enqueue_request(uint32_t p, const nats_msg& msg);
  void on_cancel_request(uint32_t p, const nats_msg& msg);
  // Cancel at the owner: the local outcome, or the stored log's when the message is not here.
  void owner_cancel(const std::string& user_id, const std::string& message_id,
                    unique_function<void(broker::cancel_outcome)> done);
  void send_next(const std::string& message_id);
  void retry_chains();
  // Takeover (see above).
  void collect(uint32_t p);
  void replay_next(uint32_t p, uint64_t epoch);
  void requeue(uint32_t p, const partition::item& it, uint64_t next_seq, uint32_t attempts,
               uint64_t log_stream_seq);
  void resume_replays();
  void start_working(uint32_t p);
  // Lets the partition's queued and processing messages go (their watchers read the stored log).
  void drop_messages(uint32_t p);
  void answer_watch(uint64_t watch_id, broker::watch_answer a);
  void on_stored_event(uint64_t watch_id, const js_delivery& d);

  broker& broker_;
  shard_server& shard_;
  cluster& cluster_;
  std::unordered_map<uint32_t, partition> parts_;
  std::deque<pending_store> pending_;
  std::unordered_map<std::string, log_chain> chains_;  // message id -> its unstored events
  timer retry_;
  timer replay_retry_;
  std::vector<std::pair<uint32_t, uint64_t>> replay_waiting_;  // (partition, epoch) to resume
  uint64_t next_epoch_ = 1;
  std::unique_ptr<broker_leases> leases_;  // shard 0 only
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rc::server
