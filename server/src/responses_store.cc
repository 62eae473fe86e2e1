#include "server/responses_store.h"

namespace rc::server {

void responses_store::touch(entry& e) { lru_.splice(lru_.begin(), lru_, e.lru); }

void responses_store::put(const std::string& id, std::vector<turn> conversation,
                          openai::response_object response, std::vector<openai::input_item> input) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    it->second.conversation = std::move(conversation);
    it->second.response = std::move(response);
    it->second.input = std::move(input);
    touch(it->second);
    return;
  }
  lru_.push_front(id);
  entry e;
  e.conversation = std::move(conversation);
  e.response = std::move(response);
  e.input = std::move(input);
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

std::optional<responses_store::stored> responses_store::find(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  touch(it->second);
  return stored{it->second.response, it->second.input};
}

bool responses_store::erase(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  lru_.erase(it->second.lru);
  entries_.erase(it);
  return true;
}

void responses_store::release(const std::string& id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.busy = false;
}

}  // namespace rc::server
