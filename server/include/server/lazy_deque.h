// lazy_deque: a std::deque that allocates nothing until its first element, and frees its storage
// when it is emptied. libstdc++'s std::deque allocates its map and a 512-byte node even when
// default-constructed, which a member of every connection would cost each of them while it sits
// unused (nearly always). Only what its users need: push at the back, pop at the front, iterate.
//
// Thread-safety: none (like std::deque).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace rc::server {

template <class T>
class lazy_deque {
 public:
  using iterator = typename std::deque<T>::iterator;

  bool empty() const { return !q_ || q_->empty(); }
  size_t size() const { return q_ ? q_->size() : 0; }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    return q_->emplace_back(std::forward<Args>(args)...);
  }
  // REQUIRES: !empty().
  T& front() { return q_->front(); }
  T& back() { return q_->back(); }
  void pop_front() {
    q_->pop_front();
    if (q_->empty()) q_.reset();
  }

  // Value-initialized iterators compare equal: an unallocated queue is an empty range.
  iterator begin() { return q_ ? q_->begin() : iterator(); }
  iterator end() { return q_ ? q_->end() : iterator(); }

 private:
  std::unique_ptr<std::deque<T>> q_;
};

}  // namespace rc::server
