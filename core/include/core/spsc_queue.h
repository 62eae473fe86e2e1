// spsc_queue<T>: a bounded, lock-free, single-producer single-consumer queue.
//
// The building block of the shard mailboxes: exactly one thread pushes and exactly one thread
// pops. Capacity is a power of two fixed at construction. Producer and consumer indices live on
// separate cache lines, and each side caches the other's index so that, while the queue is
// neither full nor empty, a push or pop touches no cache line the other thread writes (the
// technique of Rigtorp's SPSCQueue).
//
// Memory ordering: push publishes the element with a release store of tail_; pop acquires it.
// pop releases the slot with a release store of head_; push acquires it before reusing the slot.
//
// Thread-safety: try_push from the producer thread only; try_pop/front/pop from the consumer
// thread only; size_approx and empty_approx from anywhere (a snapshot, possibly stale).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "base/assert.h"

namespace rc {

inline constexpr size_t cache_line_bytes = 64;

template <class T>
class spsc_queue {
 public:
  // REQUIRES: capacity is a power of two, >= 2.
  explicit spsc_queue(size_t capacity)
      : mask_(capacity - 1), slots_(std::allocator<slot>().allocate(capacity)) {
    RC_ASSERT(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  }
  spsc_queue(const spsc_queue&) = delete;
  spsc_queue& operator=(const spsc_queue&) = delete;
  ~spsc_queue() {
    while (try_pop()) {
    }
    std::allocator<slot>().deallocate(slots_, mask_ + 1);
  }

  size_t capacity() const { return mask_ + 1; }

  // Returns false, leaving `v` untouched, when the queue is full.
  bool try_push(T&& v) {
    size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) return false;
    }
    new (&slots_[tail & mask_].value) T(std::move(v));
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // The oldest element, or nullptr when empty. Valid until pop().
  T* front() {
    size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return nullptr;
    }
    return std::launder(reinterpret_cast<T*>(&slots_[head & mask_].value));
  }

  // REQUIRES: front() returned non-null since the last pop().
  void pop() {
    size_t head = head_.load(std::memory_order_relaxed);
    RC_ASSERT(head != tail_cache_);
    std::launder(reinterpret_cast<T*>(&slots_[head & mask_].value))->~T();
    head_.store(head + 1, std::memory_order_release);
  }

  std::optional<T> try_pop() {
    T* f = front();
    if (!f) return std::nullopt;
    std::optional<T> v(std::move(*f));
    pop();
    return v;
  }

  size_t size_approx() const {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }
  bool empty_approx() const { return size_approx() == 0; }

 private:
  struct slot {
    alignas(T) unsigned char value[sizeof(T)];
  };

  const size_t mask_;
  slot* const slots_;
  // Producer side.
  alignas(cache_line_bytes) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;
  // Consumer side.
  alignas(cache_line_bytes) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;
  char pad_[cache_line_bytes - sizeof(std::atomic<size_t>) - sizeof(size_t)];
};

}  // namespace rc
