// The broker's lifecycle log at the home shard: appending events (and, in cluster mode, storing
// them), and answering watchers' catch-up requests. Thread-safety: the home shard's broker.
#include "proto/json_writer.h"
#include "server/broker.h"
#include "server/shard.h"

#include "broker_cluster.h"
#include "broker_internal.h"

namespace rc::server {

// ---- the log ----

broker_event make_broker_event(uint64_t seq_number, std::string_view type, std::string_view json,
                               bool terminal) {
  broker_event e;
  e.seq = seq_number;
  e.terminal = terminal;
  std::string seq = std::to_string(e.seq);
  // WebSocket events carry the SSE id as event_id (`id` is the request's), for last_event_id.
  byte_buffer tail;
  tail.append("\"event\":");
  json::write_string(tail, type);
  tail.append(",\"event_id\":\"");
  tail.append(seq);
  tail.append("\",\"data\":");
  tail.append(json);
  e.encode(seq, type, json, tail.view());
  return e;
}

void broker::append(message& m, std::string_view type, std::string json, bool terminal) {
  broker_event e = make_broker_event(m.next_seq++, type, json, terminal);
  // Cluster mode: stored in RC_BROKER_LOG for watchers on other nodes and the next owner, and
  // held until its store is acknowledged (on_event_stored): a watcher sees only what the next
  // owner finds (never an end after which the message runs again, nor an id used twice).
  if (cluster_ && m.partition >= 0 && cluster_->store_event(m, e.seq, type, json, terminal)) {
    m.held.push_back(std::move(e));
    return;
  }
  record(m, std::move(e));
}

void broker::record(message& m, broker_event&& e) {
  for (unsigned s = 0; s < m.watcher_shards.size(); ++s) {
    if (!m.watcher_shards[s]) continue;
    shard_.loop().post(s,
                       [id = m.id, e] { shard_server::current()->broker_queue().on_event(id, e); });
  }
  m.log_bytes += e.bytes();
  m.log.push_back(std::move(e));
  // Bounded: past the limit, the oldest progress events go (the final event has the output).
  if (m.log.size() > shard_.config().broker_log_events_max) {
    for (auto it = m.log.begin(); it != m.log.end(); ++it) {
      if (!it->terminal && it->seq > m.first_seq) {
        m.log_bytes -= it->bytes();
        m.log.erase(it);
        break;
      }
    }
  }
}

void broker::on_event_stored(const std::string& message_id, uint64_t seq) {
  auto it = messages_.find(message_id);
  if (it == messages_.end()) return;
  message& m = *it->second;
  if (m.held.empty() || m.held.front().seq != seq) return;
  broker_event e = std::move(m.held.front());
  m.held.pop_front();
  bool terminal = e.terminal;
  record(m, std::move(e));
  if (terminal && m.st == message::state::finishing) {
    m.st = message::state::finished;
    on_finished(m);
  }
}

// ---- watch requests at the home ----

broker::catch_up broker::home_watch(unsigned shard, const std::string& user_id,
                                    const std::string& message_id, uint64_t after_seq) {
  catch_up c;
  auto it = messages_.find(message_id);
  if (it == messages_.end() || it->second->user_id != user_id) {
    // Cluster mode: it may have run on another node (or this node's copy expired).
    c.stored = cluster_ != nullptr;
    return c;
  }
  message& m = *it->second;
  if (cluster_ && after_seq + 1 < m.held_from_seq) {
    c.stored = true;  // a previous owner wrote the events before these
    return c;
  }
  c.found = true;
  c.seq = m.next_seq - 1 - m.held.size();  // held events come later
  for (const broker_event& e : m.log)
    if (e.seq > after_seq) c.events.push_back(e);
  if (m.st != message::state::finished) m.watcher_shards[shard] = true;
  return c;
}

broker::catch_up broker::home_rewatch(unsigned shard, const std::string& message_id,
                                      uint64_t after_seq) {
  auto it = messages_.find(message_id);
  if (it == messages_.end()) return {};
  return home_watch(shard, it->second->user_id, message_id, after_seq);
}

void broker::home_unwatch(unsigned shard, const std::string& message_id) {
  auto it = messages_.find(message_id);
  if (it != messages_.end()) it->second->watcher_shards[shard] = false;
}

}  // namespace rc::server
