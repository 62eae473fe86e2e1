// The broker's home side: queues, processing, the lifecycle log. Watchers: broker_watch.cc.
#include "server/broker.h"

#include "base/assert.h"
#include "proto/json_writer.h"
#include "proto/openai_chat.h"
#include "server/generation.h"
#include "server/shard.h"

namespace rc::server {

// The engine side of a message being processed. It never pauses the engine (the log takes
// everything; slow watchers are dropped, not waited for).
struct broker::worker final : public engine_sink, public engine_ticket {
  worker(broker& b, message& m) : broker_(b), message_(m) {}
  bool on_event(const engine_event& e) override;
  void on_admitted() override;
  void on_shed(uint64_t waited_ms) override;

  broker& broker_;
  message& message_;
  std::shared_ptr<engine> engine_ref;  // before `stream`: a reload must not free it under the stream
  std::unique_ptr<engine_stream> stream;
  bool holds_slot = false;
  bool in_callback = false;
};

struct broker::message {
  std::string id;
  std::string user_id;
  generation_request generation;
  enum class state : uint8_t { queued, processing, finished } st = state::queued;
  std::vector<broker_event> log;
  uint64_t log_bytes = 0;
  uint64_t first_seq = 1;  // seq of log[0] (after trimming)
  uint64_t next_seq = 1;
  std::vector<bool> watcher_shards;
  uint64_t enqueued_ms = 0;
  uint64_t position = 0;  // last position reported in a queued event
  std::string text;
  std::unique_ptr<worker> work;
  timer deadline;
  timer retention;
};

struct broker::user_queue {
  std::deque<message*> waiting;
  message* active = nullptr;
  bool in_ready_list = false;
};

namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

broker::broker(shard_server& shard) : shard_(shard) {}

broker::~broker() {
  // Workers hold engine streams and scheduler slots; end them before the shard goes.
  for (auto& [id, m] : messages_) {
    if (m->work) {
      shard_.scheduler().withdraw(*m->work);
      m->work.reset();
    }
  }
}

unsigned broker::home_of_user(std::string_view user_id) const {
  return static_cast<unsigned>(fnv1a(user_id) % shard_.shard_count());
}

// ---- enqueue ----

void broker::enqueue(broker_request&& req, unique_function<void(enqueue_result&&)> done) {
  unsigned origin = shard_.id();
  unsigned home = home_of_user(req.user_id);
  shard_.loop().post(home, [origin, req = std::move(req), done = std::move(done)]() mutable {
    shard_server& h = *shard_server::current();
    enqueue_result res = h.broker_queue().home_enqueue(std::move(req));
    h.loop().post(
        origin, [done = std::move(done), res = std::move(res)]() mutable { done(std::move(res)); });
  });
}

broker::enqueue_result broker::home_enqueue(broker_request&& req) {
  enqueue_result res;
  const auto& cfg = shard_.config();
  user_queue& u = users_[req.user_id];
  if (waiting_ >= shard_.share_of(cfg.broker_queue_max) || u.waiting.size() >= cfg.user_queue_max) {
    bool user_full = u.waiting.size() >= cfg.user_queue_max;
    if (!u.active && u.waiting.empty()) users_.erase(req.user_id);
    ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::queue_full)];
    openai::api_error e = openai::overloaded();
    e.code = "queue_full";
    e.message = user_full ? "This user's queue is full; retry later"
                          : "The broker queue is full; retry later";
    res.error = std::move(e);
    res.retry_after_ms = 1000;
    return res;
  }
  auto m = std::make_unique<message>();
  m->id = mint_id(shard_, "msg_");
  m->user_id = req.user_id;
  m->generation = std::move(req.generation);
  m->watcher_shards.assign(shard_.shard_count(), false);
  m->enqueued_ms = shard_.loop().now_ms();
  message& msg = *m;
  msg.deadline.set_callback(
      [](timer&, void* p) {
        auto* mm = static_cast<message*>(p);
        shard_server::current()->broker_queue().on_deadline(*mm);
      },
      &msg);
  msg.retention.set_callback(
      [](timer&, void* p) {
        auto* mm = static_cast<message*>(p);
        shard_server::current()->broker_queue().forget(mm->id);
      },
      &msg);
  if (req.deadline_ms > 0) shard_.loop().arm_after_ms(msg.deadline, req.deadline_ms);
  messages_.emplace(msg.id, std::move(m));
  res.message_id = msg.id;
  res.position = u.waiting.size() + (u.active ? 1 : 0);
  msg.position = res.position;
  u.waiting.push_back(&msg);
  ++waiting_;
  auto& met = shard_.metrics();
  ++met.queue_depth;
  ++met.broker_enqueued;
  met.active_users = static_cast<int64_t>(users_.size());
  byte_buffer j;
  json::writer w(j);
  w.begin_object();
  w.string_member("message_id", msg.id);
  w.uint64_member("position", res.position);
  w.end_object();
  append(msg, "queued", std::string(j.view()), false);
  try_start(msg.user_id);
  return res;
}

// ---- processing ----

void broker::try_start(const std::string& user_id_ref) {
  // Looked up on every round: starting a message may finish it at once (its route was removed by
  // a reload), and a finished message can take this user's queue (and the string the caller
  // passed, a message's member) with it.
  const std::string user_id = user_id_ref;
  for (auto it = users_.find(user_id); it != users_.end(); it = users_.find(user_id)) {
    user_queue& u = it->second;
    if (u.active || u.waiting.empty()) return;
    if (processing_ >= shard_.share_of(shard_.config().broker_concurrency_max)) {
      if (!u.in_ready_list) {
        u.in_ready_list = true;
        ready_users_.push_back(user_id);
      }
      return;
    }
    message* m = u.waiting.front();
    u.waiting.pop_front();
    --waiting_;
    --shard_.metrics().queue_depth;
    uint64_t waited = shard_.loop().now_ms() - m->enqueued_ms;
    uint32_t shed_after = shard_.config().shed_queue_delay_ms;
    if (shed_after > 0 && waited > shed_after) {
      ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::shed)];
      m->st = message::state::finished;
      byte_buffer j;
      json::writer w(j);
      w.begin_object();
      w.string_member("message_id", m->id);
      w.string_member("code", "shed");
      w.string_member("message", "the message waited " + std::to_string(waited) +
                                     " ms, longer than the shedding target");
      w.end_object();
      append(*m, "error", std::string(j.view()), true);
      release_message(*m);  // not on_finished: we are iterating this user's queue
      continue;
    }
    u.active = m;
    start_processing(*m);
  }
}

void broker::start_processing(message& m) {
  ++processing_;
  ++shard_.metrics().broker_processing;
  shard_.metrics().broker_wait.observe_us((shard_.loop().now_ms() - m.enqueued_ms) * 1000);
  m.st = message::state::processing;
  byte_buffer j;
  json::writer w(j);
  w.begin_object();
  w.string_member("message_id", m.id);
  w.end_object();
  append(m, "processing", std::string(j.view()), false);
  position_updates(users_[m.user_id]);
  m.work = std::make_unique<worker>(*this, m);
  if (shard_.scheduler().request(*m.work, true) == engine_scheduler::admit::now)
    m.work->on_admitted();
}

void broker::worker::on_admitted() {
  holds_slot = true;
  engine* e = broker_.shard_.engine_for(message_.generation.model);
  if (!e) {  // checked at enqueue, but a reload may have removed the route since
    engine_event err;
    err.type = event_type::error;
    err.error_code = "model_not_found";
    err.error_message = "the message's model is no longer routed (the configuration changed)";
    on_event(err);
    return;
  }
  engine_ref = broker_.shard_.share_engine(*e);
  stream = e->generate(message_.generation, *this);
}

void broker::worker::on_shed(uint64_t) {
  engine_event e;
  e.type = event_type::error;
  e.error_code = "shed";
  e.error_message = "the message waited too long for the engine";
  on_event(e);
}

bool broker::worker::on_event(const engine_event& e) {
  message& m = message_;
  if (m.st != message::state::processing) return false;
  in_callback = true;
  byte_buffer j;
  json::writer w(j);
  w.begin_object();
  w.string_member("message_id", m.id);
  bool terminal = false;
  std::string_view type;
  switch (e.type) {
    case event_type::delta:
      if (e.choice != 0) {
        in_callback = false;
        return true;
      }
      m.text.append(e.text);
      w.string_member("delta", e.text);
      type = "progress";
      break;
    case event_type::tool_call:
    case event_type::done:
      in_callback = false;
      return true;
    case event_type::usage:
      w.key("output");
      w.begin_object();
      w.string_member("text", m.text);
      w.end_object();
      w.key("usage");
      openai::write_chat_usage(w, e.usage);
      type = "done";
      terminal = true;
      break;
    case event_type::raw:  // only sent when the front asked for passthrough
      return true;
    case event_type::error:
      w.string_member("code", e.error_code);
      w.string_member("message", e.error_message);
      type = "error";
      terminal = true;
      break;
  }
  w.end_object();
  broker_.append(m, type, std::string(j.view()), terminal);
  in_callback = false;
  if (terminal) {
    m.st = message::state::finished;
    broker_.on_finished(m);
    return false;
  }
  return true;
}

void broker::on_deadline(message& m) {
  if (m.st == message::state::finished) return;
  ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::deadline)];
  end_early(m, "deadline_exceeded", "the message did not finish within its deadline");
}

broker::cancel_outcome broker::home_cancel(const std::string& user_id,
                                           const std::string& message_id) {
  auto it = messages_.find(message_id);
  if (it == messages_.end() || it->second->user_id != user_id) return cancel_outcome::not_found;
  message& m = *it->second;
  if (m.st == message::state::finished) return cancel_outcome::finished;
  bool queued = m.st == message::state::queued;
  end_early(m, "cancelled", "the message was cancelled by the client");
  return queued ? cancel_outcome::cancelled_queued : cancel_outcome::cancelled_processing;
}

void broker::end_early(message& m, std::string_view code, std::string_view text) {
  RC_ASSERT(m.st != message::state::finished);
  bool was_queued = m.st == message::state::queued;
  m.st = message::state::finished;
  byte_buffer j;
  json::writer w(j);
  w.begin_object();
  w.string_member("message_id", m.id);
  w.string_member("code", code);
  w.string_member("message", text);
  w.end_object();
  append(m, "error", std::string(j.view()), true);
  if (!was_queued) {
    on_finished(m);
    return;
  }
  std::string user = m.user_id;
  user_queue& u = users_[user];
  for (auto it = u.waiting.begin(); it != u.waiting.end(); ++it) {
    if (*it == &m) {
      u.waiting.erase(it);
      --waiting_;
      --shard_.metrics().queue_depth;
      break;
    }
  }
  release_message(m);
  position_updates(u);
  forget_idle_user(user);
}

void broker::release_message(message& m) {
  shard_.loop().cancel_timer(m.deadline);
  if (m.work) {
    // We may be inside the engine's callback: let the worker go in a later turn.
    worker* w = m.work.release();
    shard_.scheduler().withdraw(*w);
    if (w->holds_slot) shard_.scheduler().release();
    shard_.loop().post(shard_.id(), [w] { delete w; });
    --processing_;
    --shard_.metrics().broker_processing;
  }
  shard_.loop().arm_after_ms(m.retention, shard_.config().broker_retention_ms);
}

void broker::forget_idle_user(const std::string& user_id) {
  auto it = users_.find(user_id);
  if (it != users_.end() && !it->second.active && it->second.waiting.empty() &&
      !it->second.in_ready_list) {
    users_.erase(it);
  }
  shard_.metrics().active_users = static_cast<int64_t>(users_.size());
}

void broker::on_finished(message& m) {
  release_message(m);
  std::string user = m.user_id;
  auto it = users_.find(user);
  if (it != users_.end()) {
    if (it->second.active == &m) it->second.active = nullptr;
    position_updates(it->second);
    try_start(user);
    forget_idle_user(user);
  }
  // A processing slot may have freed: let waiting users in, oldest first.
  while (!ready_users_.empty() &&
         processing_ < shard_.share_of(shard_.config().broker_concurrency_max)) {
    std::string next = std::move(ready_users_.front());
    ready_users_.pop_front();
    auto uit = users_.find(next);
    if (uit == users_.end()) continue;
    uit->second.in_ready_list = false;
    try_start(next);
    forget_idle_user(next);
  }
}

void broker::position_updates(user_queue& u) {
  uint64_t ahead = u.active ? 1 : 0;
  for (message* m : u.waiting) {
    uint64_t position = ahead++;
    if (position == m->position) continue;  // only changes are news
    m->position = position;
    byte_buffer j;
    json::writer w(j);
    w.begin_object();
    w.string_member("message_id", m->id);
    w.uint64_member("position", position);
    w.end_object();
    append(*m, "queued", std::string(j.view()), false);
  }
}

void broker::forget(const std::string& message_id) {
  messages_.erase(message_id);
}

// ---- the log ----

void broker::append(message& m, std::string_view type, std::string json, bool terminal) {
  broker_event e;
  e.seq = m.next_seq++;
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

// ---- watch requests at the home ----

broker::catch_up broker::home_watch(unsigned shard, const std::string& user_id,
                                    const std::string& message_id, uint64_t after_seq) {
  catch_up c;
  auto it = messages_.find(message_id);
  if (it == messages_.end() || it->second->user_id != user_id) return c;
  message& m = *it->second;
  c.found = true;
  c.seq = m.next_seq - 1;
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
