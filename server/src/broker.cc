// The broker's home side: queues, processing, the lifecycle log. Watchers: broker_watch.cc.
#include "server/broker.h"

#include "base/assert.h"
#include "proto/json_writer.h"
#include "proto/openai_chat.h"
#include "server/generation.h"
#include "server/shard.h"

#include "broker_cluster.h"
#include "broker_internal.h"

namespace rc::server {


broker::broker(shard_server& shard) : shard_(shard) {
  if (cluster* c = shard.cluster_link()) attach_cluster(*c);
}

void broker::attach_cluster(cluster& c) {
  if (!cluster_) cluster_ = std::make_unique<broker_cluster>(*this, c);
}

broker::~broker() {
  cluster_.reset();  // first: it stops consumers and subscriptions that reach the messages
  // Workers hold engine streams and scheduler slots; end them before the shard goes.
  for (auto& [id, m] : messages_) {
    if (m->work) {
      shard_.scheduler().withdraw(*m->work);
      m->work.reset();
    }
  }
}

unsigned broker::home_of_user(std::string_view user_id) const {
  // Cluster mode: a partition's users share its shard (the lease's work happens there).
  if (cluster_) return cluster_->partition_of(user_id) % shard_.shard_count();
  return static_cast<unsigned>(broker_fnv1a(user_id) % shard_.shard_count());
}

// ---- enqueue ----

void broker::enqueue(broker_request&& req, unique_function<void(enqueue_result&&)> done) {
  unsigned origin = shard_.id();
  unsigned home = home_of_user(req.user_id);
  shard_.loop().post(home, [origin, req = std::move(req), done = std::move(done)]() mutable {
    shard_server& h = *shard_server::current();
    auto reply = [origin, done = std::move(done)](enqueue_result&& res) mutable {
      auto back = [done = std::move(done), res = std::move(res)]() mutable {
        done(std::move(res));
      };
      shard_server::current()->loop().post(origin, std::move(back));
    };
    if (broker_cluster* bc = h.broker_queue().cluster_side()) {
      bc->enqueue(std::move(req), std::move(reply));  // stored in JetStream first
      return;
    }
    reply(h.broker_queue().home_enqueue(std::move(req)));
  });
}

std::optional<broker::enqueue_result> broker::refuse_full(const std::string& user_id,
                                                          uint64_t extra) {
  const auto& cfg = shard_.config();
  auto it = users_.find(user_id);
  uint64_t user_waiting = (it == users_.end() ? 0 : it->second.waiting.size()) + extra;
  bool user_full = user_waiting >= cfg.user_queue_max;
  if (!user_full && waiting_ + extra < shard_.share_of(cfg.broker_queue_max)) return std::nullopt;
  ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::queue_full)];
  enqueue_result res;
  openai::api_error e = openai::overloaded();
  e.code = "queue_full";
  e.message = user_full ? "This user's queue is full; retry later"
                        : "The broker queue is full; retry later";
  res.error = std::move(e);
  res.retry_after_ms = 1000;
  return res;
}

broker::enqueue_result broker::home_enqueue(broker_request&& req) {
  if (auto refused = refuse_full(req.user_id, 0)) return std::move(*refused);
  accepted a;
  a.id = mint_id(shard_, "msg_");
  return accept(std::move(req), std::move(a));
}

broker::enqueue_result broker::accept(broker_request&& req, accepted&& a) {
  enqueue_result res;
  if (auto old = messages_.find(a.id); old != messages_.end()) {
    // Cluster mode: this node let the message go earlier and now takes it over again.
    RC_ASSERT(old->second->st == message::state::finished);
    shard_.loop().cancel_timer(old->second->retention);
    messages_.erase(old);
  }
  user_queue& u = users_[req.user_id];
  auto m = std::make_unique<message>();
  m->id = std::move(a.id);
  m->user_id = req.user_id;
  m->generation = std::move(req.generation);
  m->watcher_shards.assign(shard_.shard_count(), false);
  m->enqueued_ms = shard_.loop().now_ms();
  m->partition = a.partition;
  m->work_seq = a.work_seq;
  m->next_seq = m->first_seq = m->held_from_seq = a.next_seq;
  m->attempts = a.attempts;
  m->log_stream_seq = a.log_stream_seq;
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
      if (m->terminal_held()) m->st = message::state::finishing;  // cluster mode: ends once stored
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
  ++m.attempts;
  byte_buffer j;
  json::writer w(j);
  w.begin_object();
  w.string_member("message_id", m.id);
  // Cluster mode: a message taken over mid-processing starts again (broker_cluster.h).
  if (m.attempts > 1) w.uint64_member("attempt", m.attempts);
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
    if (m.terminal_held()) {  // cluster mode: ends once stored (on_event_stored)
      m.st = message::state::finishing;
      broker_.release_message(m);
      return false;
    }
    m.st = message::state::finished;
    broker_.on_finished(m);
    return false;
  }
  return true;
}

void broker::on_deadline(message& m) {
  if (m.st == message::state::finished || m.st == message::state::finishing) return;
  ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::deadline)];
  end_early(m, "deadline_exceeded", "the message did not finish within its deadline");
}

broker::cancel_outcome broker::home_cancel(const std::string& user_id,
                                           const std::string& message_id) {
  auto it = messages_.find(message_id);
  if (it == messages_.end() || it->second->user_id != user_id) return cancel_outcome::not_found;
  message& m = *it->second;
  if (m.st == message::state::finished || m.st == message::state::finishing)
    return cancel_outcome::finished;
  bool queued = m.st == message::state::queued;
  end_early(m, "cancelled", "the message was cancelled by the client");
  return queued ? cancel_outcome::cancelled_queued : cancel_outcome::cancelled_processing;
}

void broker::end_early(message& m, std::string_view code, std::string_view text) {
  RC_ASSERT(m.st != message::state::finished && m.st != message::state::finishing);
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
  if (m.terminal_held()) m.st = message::state::finishing;  // cluster mode: ends once stored
  if (!was_queued) {
    if (m.st == message::state::finishing)
      release_message(m);
    else
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
  // A finishing message is kept until its end is stored (on_finished arms it then).
  if (m.st != message::state::finishing)
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

}  // namespace rc::server
