// intrusive_list<T, Tag>: a doubly linked list whose links live inside the elements.
//
// Shards keep many membership lists (connections to flush this turn, connections waiting for
// receive buffers, subscribers of a topic): insert and remove must be O(1) with no allocation,
// and an element must be able to leave a list from its own destructor. An element joins a list
// kind by deriving from list_node<Tag> once per kind (the tag tells the hooks apart, as in
// boost::intrusive base hooks), and a node unlinks itself when destroyed.
//
// Thread-safety: none; a list and its elements belong to one shard.
#pragma once

#include <cstddef>

#include "base/assert.h"

namespace rc {

struct default_list_tag;

template <class Tag = default_list_tag>
class list_node {
 public:
  list_node() = default;
  list_node(const list_node&) = delete;
  list_node& operator=(const list_node&) = delete;
  ~list_node() { unlink(); }

  bool linked() const { return prev_ != nullptr; }
  void unlink() {
    if (!prev_) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  template <class T, class U>
  friend class intrusive_list;
  list_node* prev_ = nullptr;
  list_node* next_ = nullptr;
};

template <class T, class Tag = default_list_tag>
class intrusive_list {
  using node = list_node<Tag>;

 public:
  intrusive_list() { head_.prev_ = head_.next_ = &head_; }
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;
  ~intrusive_list() { clear(); }

  bool empty() const { return head_.next_ == &head_; }
  size_t size() const {
    size_t n = 0;
    for (const node* h = head_.next_; h != &head_; h = h->next_) ++n;
    return n;
  }

  // REQUIRES: `v` is not in a list of this kind.
  void push_back(T& v) {
    node& h = v;
    RC_ASSERT(!h.linked());
    h.prev_ = head_.prev_;
    h.next_ = &head_;
    head_.prev_->next_ = &h;
    head_.prev_ = &h;
  }

  T* front() { return empty() ? nullptr : owner(head_.next_); }
  T* pop_front() {
    if (empty()) return nullptr;
    node* h = head_.next_;
    h->unlink();
    return owner(h);
  }
  static void remove(T& v) { static_cast<node&>(v).unlink(); }
  static bool contains_any(const T& v) { return static_cast<const node&>(v).linked(); }

  void clear() {
    while (!empty()) head_.next_->unlink();
  }

  // Moves every element of `other` to the end of this list.
  void splice(intrusive_list& other) {
    while (T* v = other.pop_front()) push_back(*v);
  }

  // Visits every element; `fn` may remove the element it is given (and only that one).
  template <class Fn>
  void for_each(Fn&& fn) {
    for (node* h = head_.next_; h != &head_;) {
      node* next = h->next_;
      fn(*owner(h));
      h = next;
    }
  }

 private:
  static T* owner(node* h) { return static_cast<T*>(h); }
  node head_;
};

}  // namespace rc
