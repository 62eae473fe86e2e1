#include "server/session_store.h"

#include <utility>

namespace rc::server {

session_store::session_store(timer_wheel& wheel, session_store_options options)
    : wheel_(wheel), options_(options) {}

session_store::~session_store() { clear(); }

void session_store::count_into(session_store_stats* totals, int64_t* idle_gauge) {
  totals_ = totals;
  idle_gauge_ = idle_gauge;
}

void session_store::bump(uint64_t session_store_stats::*field) {
  ++(stats_.*field);
  if (totals_) ++(totals_->*field);
}

session_store::entry& session_store::insert(const std::string& id) {
  auto [it, inserted] = entries_.try_emplace(id);
  RC_ASSERT(inserted);
  entry& e = it->second;
  e.owner = this;
  e.key = &it->first;
  e.expiry.set_callback(&session_store::on_expiry, &e);
  return e;
}

void session_store::make_idle(entry& e, std::unique_ptr<retained_session> session) {
  e.busy = false;
  e.session = std::move(session);
  lru_.push_front(&e);
  e.lru = lru_.begin();
  // +1: the wheel's current tick is already processed; a timer never fires early.
  wheel_.arm_after(e.expiry, options_.idle_ms * options_.ticks_per_ms + 1);
  if (idle_gauge_) ++*idle_gauge_;
  bump(&session_store_stats::retained);
}

void session_store::erase(map::iterator it) {
  entry& e = it->second;
  std::unique_ptr<retained_session> session = std::move(e.session);
  if (!e.busy) {
    lru_.erase(e.lru);
    if (idle_gauge_) --*idle_gauge_;
  }
  wheel_.cancel(e.expiry);
  entries_.erase(it);
  session.reset();  // may call back into the engine; the store is consistent again
}

bool session_store::make_room() {
  if (entries_.size() < options_.sessions_max) return true;
  if (lru_.empty() || options_.sessions_max == 0) return false;
  bump(&session_store_stats::evicted_lru);
  erase(entries_.find(*lru_.back()->key));
  return true;
}

session_store::begin_status session_store::begin(const std::string& id) {
  if (entries_.count(id)) return begin_status::duplicate;
  if (!make_room()) {
    bump(&session_store_stats::no_capacity);
    return begin_status::no_capacity;
  }
  insert(id);
  return begin_status::ok;
}

session_store::take_status session_store::take(const std::string& id,
                                               std::unique_ptr<retained_session>& out) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    bump(&session_store_stats::not_found);
    return take_status::not_found;
  }
  entry& e = it->second;
  if (e.busy) {
    bump(&session_store_stats::conflicts);
    return take_status::busy;
  }
  lru_.erase(e.lru);
  if (idle_gauge_) --*idle_gauge_;
  wheel_.cancel(e.expiry);
  e.busy = true;
  out = std::move(e.session);
  bump(&session_store_stats::reused);
  return take_status::ok;
}

void session_store::put(const std::string& held, const std::string& id,
                        std::unique_ptr<retained_session> session) {
  auto it = entries_.find(held);
  if (it != entries_.end() && it->second.busy) {
    if (held == id) {
      make_idle(it->second, std::move(session));
      return;
    }
    entries_.erase(it);  // busy: no session, no timer, not in the LRU list
  }
  if (auto old = entries_.find(id); old != entries_.end()) {
    // An id is minted once; a session already under it can only be a stale copy.
    bump(&session_store_stats::dropped);
    erase(old);
  }
  if (!make_room()) return;  // `session` is destroyed on return
  make_idle(insert(id), std::move(session));
}

void session_store::drop(const std::string& held) {
  auto it = entries_.find(held);
  if (it == entries_.end() || !it->second.busy) return;
  bump(&session_store_stats::dropped);
  erase(it);
}

void session_store::evict(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.busy) return;
  bump(&session_store_stats::dropped);
  erase(it);
}

void session_store::clear() {
  while (!entries_.empty()) erase(entries_.begin());
}

void session_store::on_expiry(timer&, void* ctx) {
  entry& e = *static_cast<entry*>(ctx);
  session_store& s = *e.owner;
  s.bump(&session_store_stats::expired);
  s.erase(s.entries_.find(*e.key));
}

bool session_store::validate() const {
  if (entries_.size() > options_.sessions_max) return false;
  size_t idle = 0;
  for (const auto& [key, e] : entries_) {
    if (e.key != &key || e.owner != this) return false;
    if (e.busy) {
      if (e.session || e.expiry.armed()) return false;
    } else {
      ++idle;
      if (!e.session || !e.expiry.armed() || *e.lru != &e) return false;
    }
  }
  return idle == lru_.size();
}

}  // namespace rc::server
