// Retained codex threads (retain_threads = true): which persistent Codex thread continues the
// conversation of a response ringcast gave a client, keyed by that response's id, bounded
// (oldest forgotten first). One table per upstream config, shared by its shards' dialects.
//
// Thread-safety: a mutex per table; the registry of tables takes its own mutex.
#include <map>
#include <mutex>

#include "worker_dialect_codex.h"

namespace rc::server::codex {

std::optional<retained_thread> thread_store::take(std::string_view response_id) {
  std::lock_guard lock(mu_);
  auto it = by_response_.find(std::string(response_id));
  if (it == by_response_.end()) return std::nullopt;
  retained_thread t = std::move(it->second);
  by_response_.erase(it);
  return t;
}

void thread_store::put(std::string response_id, retained_thread t) {
  std::lock_guard lock(mu_);
  if (max_ == 0) return;
  // Forget the oldest beyond the bound (order_ may name entries already taken: skip those).
  while (by_response_.size() >= max_ && !order_.empty()) {
    by_response_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 2 * max_) {  // drop names of taken entries so order_ stays bounded
    std::deque<std::string> live;
    for (auto& id : order_)
      if (by_response_.count(id)) live.push_back(std::move(id));
    order_.swap(live);
  }
  order_.push_back(response_id);
  by_response_[std::move(response_id)] = std::move(t);
}

size_t thread_store::size() const {
  std::lock_guard lock(mu_);
  return by_response_.size();
}

std::shared_ptr<thread_store> store_for(const void* config_key, size_t max) {
  static std::mutex mu;
  static std::map<const void*, std::weak_ptr<thread_store>> stores;
  std::lock_guard lock(mu);
  for (auto it = stores.begin(); it != stores.end();) {  // forget those of old configs
    if (it->second.expired()) it = stores.erase(it);
    else ++it;
  }
  if (auto s = stores[config_key].lock()) return s;
  auto s = std::make_shared<thread_store>(max);
  stores[config_key] = s;
  return s;
}

}  // namespace rc::server::codex
