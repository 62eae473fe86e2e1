// shared_buffer: an immutable, reference-counted run of bytes that many connections on many
// shards may send at once.
//
// Fan-out encodes a publication once (one SSE frame, one WebSocket frame), wraps each in a
// shared_buffer and queues references on every subscriber: a reference is a pointer and an
// atomic increment, never a copy. The bytes are written once by the creator before the buffer is
// shared and never change afterwards, so readers need no synchronisation beyond the reference
// count (acq_rel on the final decrement so the freeing thread sees all prior uses).
//
// Thread-safety: a shared_buffer handle belongs to one thread; distinct handles to the same bytes
// may live on different threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "base/assert.h"

namespace rc {

class shared_buffer {
 public:
  shared_buffer() = default;

  static shared_buffer copy_of(std::string_view bytes) {
    RC_ASSERT(bytes.size() <= UINT32_MAX);
    void* mem = std::malloc(sizeof(header) + bytes.size());
    if (!mem) throw std::bad_alloc();
    auto* h = new (mem) header{{1}, static_cast<uint32_t>(bytes.size())};
    if (!bytes.empty()) std::memcpy(reinterpret_cast<char*>(h + 1), bytes.data(), bytes.size());
    return shared_buffer(h);
  }

  shared_buffer(const shared_buffer& o) : h_(o.h_) {
    if (h_) h_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  shared_buffer& operator=(const shared_buffer& o) {
    shared_buffer copy(o);
    std::swap(h_, copy.h_);
    return *this;
  }
  shared_buffer(shared_buffer&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  shared_buffer& operator=(shared_buffer&& o) noexcept {
    if (this != &o) {
      release();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~shared_buffer() { release(); }

  explicit operator bool() const { return h_ != nullptr; }
  const char* data() const { return h_ ? reinterpret_cast<const char*>(h_ + 1) : nullptr; }
  size_t size() const { return h_ ? h_->size : 0; }
  std::string_view view() const { return {data(), size()}; }
  uint32_t use_count() const { return h_ ? h_->refs.load(std::memory_order_relaxed) : 0; }

 private:
  struct header {
    std::atomic<uint32_t> refs;
    uint32_t size;
  };
  explicit shared_buffer(header* h) : h_(h) {}
  void release() {
    if (h_ && h_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      h_->~header();
      std::free(h_);
    }
    h_ = nullptr;
  }

  header* h_ = nullptr;
};

}  // namespace rc
