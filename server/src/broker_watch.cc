// The broker's watcher side: SSE streams and WebSocket message.stream requests on any shard.
#include "base/assert.h"
#include "server/broker.h"
#include "server/connection.h"
#include "server/generation.h"
#include "server/shard.h"

#include "broker_cluster.h"

namespace rc::server {

broker_watch::broker_watch(broker& b, connection& c, std::string message_id, subscriber_kind kind,
                           uint64_t id, std::string request_id)
    : broker_(b),
      conn_(c),
      message_id_(std::move(message_id)),
      kind_(kind),
      id_(id),
      request_id_(std::move(request_id)) {
  if (kind_ == subscriber_kind::ws) ws_prefix_ = ws_prefix_frame(request_id_);
}

bool broker_watch::deliver(const broker_event& e) {
  last_seq_ = e.seq;
  return push_frames(conn_, kind_, ws_prefix_, e);
}

void broker_watch::finish() {
  // The final event is out: an SSE stream ends; a WebSocket request is simply over.
  connection& c = conn_;
  subscriber_kind kind = kind_;
  connection::detach(*this);
  broker_.remove(*this);  // deletes this
  if (kind == subscriber_kind::sse) c.end_sse();
}

void broker_watch::on_stream_closed() {
  broker_.remove(*this);
}

void broker_watch::on_cut(std::string_view code, std::string_view message) {
  connection& c = conn_;
  subscriber_kind kind = kind_;
  std::string request_id = std::move(request_id_);
  std::string message_id = message_id_;
  broker_.remove(*this);  // deletes this
  end_cut_subscriber(c, kind, request_id, "message_id", message_id, code, message);
}

int broker::home_of(std::string_view user_id, std::string_view message_id) const {
  if (!cluster_) return shard_of_id(message_id, "msg_", shard_.shard_count());
  // Cluster mode: any node's id (its shard count may differ), found through the user's
  // partition. The id goes into NATS subjects: only the exact shape is taken.
  if (shard_of_id(message_id, "msg_", 1u << 30) < 0) return -1;
  for (char ch : message_id.substr(message_id.size() - 16)) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return -1;
  }
  return static_cast<int>(home_of_user(user_id));
}

uint64_t broker::watch(connection& c, std::string user_id, std::string message_id,
                       subscriber_kind kind, uint64_t after_seq, std::string request_id,
                       unique_function<void(watch_answer)> ready) {
  uint64_t wid = next_watch_id_++;
  auto* w = new broker_watch(*this, c, message_id, kind, wid, std::move(request_id));
  w->last_seq_ = after_seq;
  w->user_id_ = user_id;
  watches_.emplace(wid, w);
  int home = home_of(user_id, message_id);
  local_watchers& lw = watching_[message_id];
  lw.list.push_back(*w);
  ++lw.count;
  lw.home = home;
  c.attach(*w);
  pending_ready_.emplace(wid, std::move(ready));
  unsigned me = shard_.id();
  if (home < 0) {
    // Not an id we minted: answer "not found" in a later turn, like any other answer.
    shard_.loop().post(
        me, [wid] { shard_server::current()->broker_queue().on_catch_up(wid, catch_up{}); });
    return wid;
  }
  shard_.loop().post(
      static_cast<unsigned>(home), [me, wid, user_id = std::move(user_id),
                                    message_id = std::move(message_id), after_seq]() mutable {
        shard_server& h = *shard_server::current();
        catch_up answer = h.broker_queue().home_watch(me, user_id, message_id, after_seq);
        h.loop().post(me, [wid, answer = std::move(answer)]() mutable {
          shard_server::current()->broker_queue().on_catch_up(wid, std::move(answer));
        });
      });
  return wid;
}

void broker::on_catch_up(uint64_t watch_id, catch_up&& c) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return;  // the client left meanwhile
  broker_watch& w = *it->second;
  if (c.stored && cluster_) {
    // Cluster mode: the events are in the stored log (another node ran it, or ran part of it).
    if (pending_ready_.count(watch_id)) {
      cluster_->watch_stored(w);
    } else {
      cluster_->read_log(w);
    }
    return;
  }
  auto rit = pending_ready_.find(watch_id);
  unique_function<void(watch_answer)> ready;
  if (rit != pending_ready_.end()) {
    ready = std::move(rit->second);
    pending_ready_.erase(rit);
  }
  if (!c.found) {
    connection::detach(w);
    remove(w);
    if (ready) ready(watch_answer::not_found);
    return;
  }
  if (ready) ready(watch_answer::found);  // the SSE response begins here
  for (const broker_event& e : c.events) {
    if (e.seq <= w.last_seq_) continue;
    if (!w.deliver(e)) return;  // closing: the watch goes with its connection
    if (e.terminal) {
      w.finish();
      return;
    }
  }
  if (c.seq > w.last_seq_) w.last_seq_ = c.seq;
  w.live_ = true;
}

void broker::on_event(const std::string& message_id, const broker_event& e) {
  auto it = watching_.find(message_id);
  if (it == watching_.end()) return;
  local_watchers& lw = it->second;
  lw.delivering = true;
  lw.list.for_each([&](broker_watch& w) {
    if (!w.live_ || e.seq <= w.last_seq_) return;
    // The home forwards every event to every shard with watchers, in order; a gap means a
    // message was refused by a full mailbox: the log has it, ask again.
    if (e.seq > w.last_seq_ + 1) {
      w.live_ = false;
      uint64_t wid = w.id_;
      unsigned me = shard_.id();
      int home = lw.home;
      if (home < 0) return;
      shard_.loop().post(static_cast<unsigned>(home), [me, wid, message_id, after = w.last_seq_] {
        shard_server& h = *shard_server::current();
        catch_up c = h.broker_queue().home_rewatch(me, message_id, after);
        h.loop().post(me, [wid, c = std::move(c)]() mutable {
          shard_server::current()->broker_queue().on_catch_up(wid, std::move(c));
        });
      });
      return;
    }
    if (w.deliver(e) && e.terminal) w.finish();
  });
  lw.delivering = false;
  if (lw.count == 0) {
    int home = lw.home;
    watching_.erase(it);
    if (home >= 0) {
      shard_.loop().post(static_cast<unsigned>(home), [me = shard_.id(), message_id] {
        shard_server::current()->broker_queue().home_unwatch(me, message_id);
      });
    }
  }
}

bool broker::cancel_watch(uint64_t watch_id) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return false;
  connection::detach(*it->second);
  remove(*it->second);
  return true;
}

void broker::cancel(std::string user_id, std::string message_id,
                    unique_function<void(cancel_outcome)> done) {
  unsigned me = shard_.id();
  int home = home_of(user_id, message_id);
  if (home < 0) {
    // Not an id we minted: answer in a later turn, like any other answer.
    shard_.loop().post(me, [done = std::move(done)]() mutable { done(cancel_outcome::not_found); });
    return;
  }
  shard_.loop().post(static_cast<unsigned>(home), [me, user_id = std::move(user_id),
                                                   message_id = std::move(message_id),
                                                   done = std::move(done)]() mutable {
    shard_server& h = *shard_server::current();
    auto reply = [me, done = std::move(done)](cancel_outcome outcome) mutable {
      shard_server::current()->loop().post(
          me, [outcome, done = std::move(done)]() mutable { done(outcome); });
    };
    if (broker_cluster* bc = h.broker_queue().cluster_side()) {
      bc->cancel(std::move(user_id), std::move(message_id), std::move(reply));
      return;
    }
    reply(h.broker_queue().home_cancel(user_id, message_id));
  });
}

void broker::remove(broker_watch& w) {
  if (w.remote_ && cluster_) cluster_->stop_reading(w);
  watches_.erase(w.id_);
  pending_ready_.erase(w.id_);
  auto it = watching_.find(w.message_id_);
  RC_ASSERT(it != watching_.end());
  local_watchers& lw = it->second;
  static_cast<list_node<watch_tag>&>(w).unlink();
  --lw.count;
  std::string message_id = w.message_id_;
  delete &w;
  if (lw.count == 0 && !lw.delivering) {
    int home = lw.home;
    watching_.erase(it);
    if (home >= 0) {
      shard_.loop().post(static_cast<unsigned>(home), [me = shard_.id(), message_id] {
        shard_server::current()->broker_queue().home_unwatch(me, message_id);
      });
    }
  }
}

}  // namespace rc::server
