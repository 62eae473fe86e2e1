#include "server/responses_store.h"

namespace rc::server {

void responses_store::touch(entry& e) { lru_.splice(lru_.begin(), lru_, e.lru); }

void responses_store::put(const std::string& id, std::vector<turn> conversation) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    it->second.conversation = std::move(conversation);
    touch(it->second);
    return;
  }
  lru_.push_front(id);
  entry e;
  e.conversation = std::move(conversation);
  e.lru = lru_.begin();
  entries_.emplace(id, std::move(e));
  while (entries_.size() > max_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

responses_store::take_status responses_store::acquire(const std::string& id,
                                                      std::vector<turn>& out) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return take_status::not_found;
  if (it->second.busy) return take_status::busy;
  it->second.busy = true;
  touch(it->second);
  out = it->second.conversation;
  return take_status::ok;
}

void responses_store::release(const std::string& id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.busy = false;
}

}  // namespace rc::server
