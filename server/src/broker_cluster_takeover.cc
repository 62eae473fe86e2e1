// Gaining and losing a partition (broker_cluster.h): the takeover that re-queues the stored work
// items, and letting a partition go.
#include <charconv>
#include <chrono>

#include "base/assert.h"
#include "proto/json_reader.h"
#include "proto/nats.h"
#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/nats_client.h"
#include "server/shard.h"

#include "broker_cluster.h"
#include "broker_internal.h"

namespace rc::server {
namespace {

// Between two attempts at reading a takeover's stored log when NATS failed to answer.
constexpr uint32_t replay_retry_ms = 500;

uint64_t parse_u64(std::string_view v) {
  uint64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void broker_cluster::on_claimed(uint32_t p) {
  if (parts_.count(p)) return;  // already held
  partition& part = parts_[p];
  part.epoch = next_epoch_++;
  collect(p);
}

void broker_cluster::collect(uint32_t p) {
  partition& part = parts_[p];
  uint64_t epoch = part.epoch;
  jetstream::ordered_handlers h;
  h.on_msg = [this, alive = alive_, p, epoch](const js_delivery& d) {
    if (!*alive || !current(p, epoch)) return;
    partition& pt = parts_[p];
    if (pt.collected) return;
    pt.items.push_back({std::string(d.subject), std::string(d.headers), std::string(d.data),
                        d.stream_seq});
  };
  h.on_caught_up = [this, alive = alive_, p, epoch] {
    if (!*alive || !current(p, epoch)) return;
    partition& pt = parts_[p];
    if (pt.collected) return;
    pt.collected = true;
    // Not from inside the consumer's own callback.
    uint64_t consumer = pt.consumer;
    pt.consumer = 0;
    shard_.loop().post(shard_.id(), [consumer] {
      shard_server* s = shard_server::current();
      broker_cluster* bc = s->broker_queue().cluster_side();
      if (bc) bc->cluster_.js().stop_consumer(consumer);
    });
    replay_next(p, epoch);
  };
  h.on_ready = [](uint64_t) {};
  h.on_error = [](const js_error&) {};  // it retries by itself while connected
  part.consumer = cluster_.js().consume_ordered(broker_work_stream,
                                                "rc.bq." + std::to_string(p) + ".>", 1, false,
                                                std::move(h));
}

// One work item at a time, in stream order: its stored log decides.
void broker_cluster::replay_next(uint32_t p, uint64_t epoch) {
  if (!current(p, epoch)) return;
  partition& part = parts_[p];
  if (part.next_item >= part.items.size()) {
    part.items.clear();
    part.next_item = 0;
    start_working(p);
    return;
  }
  const partition::item& it = part.items[part.next_item];
  std::string id = it.subject.substr(it.subject.rfind('.') + 1);
  cluster_.js().get_last(
      broker_log_stream, "rc.bl." + id,
      [this, alive = alive_, p, epoch](js_stored_msg&& m) {
        if (!*alive || !current(p, epoch)) return;
        partition& pt = parts_[p];
        if (!m.found && m.err.error != 0) {  // NATS did not answer: try again shortly
          replay_waiting_.emplace_back(p, epoch);
          if (!replay_retry_.armed()) shard_.loop().arm_after_ms(replay_retry_, replay_retry_ms);
          return;
        }
        const partition::item& item = pt.items[pt.next_item];
        ++pt.next_item;
        auto h = m.found ? nats::header_block::parse(m.headers) : std::nullopt;
        std::string_view event = h ? h->get("Rc-Event") : std::string_view();
        if (event == "done" || event == "error") {
          // It ended before the previous owner could delete it: never run it again.
          cluster_.js().delete_msg(broker_work_stream, item.seq, [](js_error&&) {});
        } else {
          requeue(p, item, h ? parse_u64(h->get("Rc-Seq")) + 1 : 1,
                  h ? static_cast<uint32_t>(parse_u64(h->get("Rc-Attempt"))) : 0,
                  m.found ? m.seq : 0);
        }
        replay_next(p, epoch);
      });
}

void broker_cluster::resume_replays() {
  auto waiting = std::move(replay_waiting_);
  replay_waiting_.clear();
  for (auto [p, epoch] : waiting) replay_next(p, epoch);
}

void broker_cluster::requeue(uint32_t p, const partition::item& it, uint64_t next_seq,
                             uint32_t attempts, uint64_t log_stream_seq) {
  broker_request req;
  req.body = it.data;
  json::parse_result r = shard_.json_parser().parse(req.body);
  if (r.ok()) {
    if (auto err = parse_broker_request(shard_, r.root, req)) {
      // Accepted by a node routed differently: it ends with model_not_found when it starts.
      json::value user = r.root.find("user_id");
      if (user && user.is_string()) req.user_id = user.get_string();
    }
  }
  if (req.user_id.empty()) {
    // Not a message we stored: drop it rather than block the partition.
    cluster_.js().delete_msg(broker_work_stream, it.seq, [](js_error&&) {});
    return;
  }
  auto h = nats::header_block::parse(it.headers);
  int64_t deadline = h ? static_cast<int64_t>(parse_u64(h->get("Rc-Deadline"))) : 0;
  if (deadline > 0)
    req.deadline_ms = static_cast<uint64_t>(std::max<int64_t>(1, deadline - unix_ms()));
  broker::accepted a;
  a.id = it.subject.substr(it.subject.rfind('.') + 1);
  a.partition = static_cast<int32_t>(p);
  a.work_seq = it.seq;
  a.next_seq = next_seq;
  a.attempts = attempts;
  a.log_stream_seq = log_stream_seq;
  broker_.accept(std::move(req), std::move(a));
}

void broker_cluster::start_working(uint32_t p) {
  partition& part = parts_[p];
  part.working = true;
  ++shard_.metrics().broker_partitions;
  std::string k = std::to_string(p);
  part.enqueue_sid = cluster_.nats().subscribe(
      "rc.broker.enqueue." + k, "rc-broker", [this, alive = alive_, p](const nats_msg& m) {
        if (*alive) on_enqueue_request(p, m);
      });
  part.cancel_sid = cluster_.nats().subscribe(
      "rc.broker.cancel." + k, "rc-broker", [this, alive = alive_, p](const nats_msg& m) {
        if (*alive) on_cancel_request(p, m);
      });
}

void broker_cluster::on_lost(uint32_t p) {
  auto it = parts_.find(p);
  if (it == parts_.end()) return;
  partition& part = it->second;
  if (part.working) --shard_.metrics().broker_partitions;
  if (part.consumer) cluster_.js().stop_consumer(part.consumer);
  if (part.enqueue_sid) cluster_.nats().unsubscribe(part.enqueue_sid);
  if (part.cancel_sid) cluster_.nats().unsubscribe(part.cancel_sid);
  parts_.erase(it);
  // Its unstored events go too (the next owner continues after the last stored one).
  for (auto c = chains_.begin(); c != chains_.end();)
    c = c->second.partition == p ? chains_.erase(c) : std::next(c);
  drop_messages(p);
}

void broker_cluster::release_if_idle(uint32_t p) {
  bool idle = true;
  for (const pending_store& s : pending_) idle = idle && s.partition != p;
  for (auto& [id, m] : broker_.messages_) {
    if (m->partition == static_cast<int32_t>(p) && m->st != broker::message::state::finished)
      idle = false;
  }
  auto it = parts_.find(p);
  if (it != parts_.end() && !it->second.working) idle = false;  // still taking over
  if (idle) on_lost(p);
  shard_.loop().post(0, [p, idle] {
    broker_cluster* bc = shard_server::current()->broker_queue().cluster_side();
    if (bc && bc->leases()) bc->leases()->on_released(p, idle);
  });
}

void broker_cluster::drop_messages(uint32_t p) {
  std::vector<broker::message*> dropping;
  for (auto& [id, m] : broker_.messages_) {
    if (m->partition == static_cast<int32_t>(p) && m->st != broker::message::state::finished)
      dropping.push_back(m.get());
  }
  for (broker::message* m : dropping) {
    auto uit = broker_.users_.find(m->user_id);
    if (uit != broker_.users_.end()) {
      broker::user_queue& u = uit->second;
      if (u.active == m) u.active = nullptr;
      for (auto q = u.waiting.begin(); q != u.waiting.end(); ++q) {
        if (*q != m) continue;
        u.waiting.erase(q);
        --broker_.waiting_;
        --shard_.metrics().queue_depth;
        break;
      }
    }
    // Finished here without an event: it goes on on the next owner, whose log continues this
    // one. Its local record stays (retention) but only points watchers to the stored log.
    m->st = broker::message::state::finished;
    m->held.clear();  // never shown: the next owner writes its own
    m->held_from_seq = UINT64_MAX;
    broker_.release_message(*m);
    for (unsigned s = 0; s < m->watcher_shards.size(); ++s) {
      if (!m->watcher_shards[s]) continue;
      m->watcher_shards[s] = false;
      shard_.loop().post(s, [id = m->id] {
        broker_cluster* bc = shard_server::current()->broker_queue().cluster_side();
        if (bc) bc->on_moved(id);
      });
    }
    std::string user = m->user_id;
    broker_.forget_idle_user(user);
  }
  // Processing slots may have freed for other partitions' users.
  while (!broker_.ready_users_.empty() &&
         broker_.processing_ < shard_.share_of(shard_.config().broker_concurrency_max)) {
    std::string next = std::move(broker_.ready_users_.front());
    broker_.ready_users_.pop_front();
    auto uit = broker_.users_.find(next);
    if (uit == broker_.users_.end()) continue;
    uit->second.in_ready_list = false;
    broker_.try_start(next);
    broker_.forget_idle_user(next);
  }
}

}  // namespace rc::server
