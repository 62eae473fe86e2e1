// byte_buffer: a growable, contiguous run of bytes that codecs append to.
//
// It is the output type of every writer in proto/ (HTTP responses, SSE frames, WebSocket
// frames, JSON) and the unit the server hands to the send path. Growth doubles, so appending
// n bytes costs amortised O(n). The storage can be released to an owner that frees it with
// std::free (core's shared_buffer adopts it that way), which is how one encoding is shared by
// many connections without a copy.
//
// Thread-safety: none; a buffer belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "base/assert.h"

namespace rc {

class byte_buffer {
 public:
  byte_buffer() = default;
  explicit byte_buffer(size_t capacity) { reserve(capacity); }
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  byte_buffer(byte_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~byte_buffer() { std::free(data_); }

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }

  void clear() { size_ = 0; }
  // Frees the storage as well (clear() keeps it for reuse).
  void reset() {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

  void reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    size_t next = capacity_ ? capacity_ * 2 : 64;
    while (next < capacity) next *= 2;
    char* p = static_cast<char*>(std::realloc(data_, next));
    if (!p) throw std::bad_alloc();
    data_ = p;
    capacity_ = next;
  }

  // Returns room for n more bytes; commit(k) with k <= n makes k of them part of the buffer.
  char* prepare(size_t n) {
    reserve(size_ + n);
    return data_ + size_;
  }
  void commit(size_t n) {
    RC_ASSERT(size_ + n <= capacity_);
    size_ += n;
  }

  void append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(prepare(s.size()), s.data(), s.size());
    size_ += s.size();
  }
  void append(const char* p, size_t n) { append(std::string_view(p, n)); }
  void push_back(char c) {
    *prepare(1) = c;
    ++size_;
  }

  // Removes the first n bytes, keeping the rest (used for leftovers of partial input).
  void consume(size_t n) {
    RC_ASSERT(n <= size_);
    if (n == size_) {
      size_ = 0;
      return;
    }
    std::memmove(data_, data_ + n, size_ - n);
    size_ -= n;
  }
  void resize(size_t n) {
    reserve(n);
    size_ = n;
  }

  // Hands the storage to the caller, who must std::free() it; the buffer is left empty.
  char* release() {
    size_ = capacity_ = 0;
    return std::exchange(data_, nullptr);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace rc
