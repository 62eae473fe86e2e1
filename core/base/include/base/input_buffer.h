// input_buffer: bytes received and not yet consumed, taken from the front.
//
// consume() only moves a read offset; the unconsumed bytes are moved back to the front when new
// input is appended and the consumed part is at least as large as what is left. So a backlog of
// pipelined requests answered one at a time (each waiting for an asynchronous step) costs
// amortised O(1) per byte consumed, not a move of the whole backlog per request — which under
// overload turned into quadratic work and a collapse of throughput.
//
// append() keeps `padding` bytes of capacity after the data (parsers that read past the end of
// their input, like simdjson, parse in place), and capacity() is measured from data().
//
// Thread-safety: none; a buffer belongs to one thread at a time.
#pragma once

#include <cstddef>

#include "base/assert.h"
#include "base/byte_buffer.h"

namespace rc {

class input_buffer {
 public:
  bool empty() const { return head_ == buf_.size(); }
  size_t size() const { return buf_.size() - head_; }
  const char* data() const { return buf_.data() + head_; }
  // Bytes usable from data() on: the input and the padding after it.
  size_t capacity() const { return buf_.capacity() - head_; }

  void append(const char* p, size_t n, size_t padding) {
    if (head_ > 0 && head_ >= size()) compact();
    buf_.reserve(buf_.size() + n + padding);
    buf_.append(p, n);
  }

  void consume(size_t n) {
    RC_ASSERT(n <= size());
    head_ += n;
    if (head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
    }
  }

  // Frees the storage (only when empty: an idle connection holds no buffer).
  void release_if_empty() {
    if (empty()) {
      buf_.reset();
      head_ = 0;
    }
  }

  // The unconsumed bytes as a buffer of their own; this one is left empty.
  byte_buffer take() {
    compact();
    return std::move(buf_);
  }

 private:
  void compact() {
    buf_.consume(head_);
    head_ = 0;
  }

  byte_buffer buf_;
  size_t head_ = 0;
};

}  // namespace rc
