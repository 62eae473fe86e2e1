#include "core/buffer_ring.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "base/assert.h"

namespace rc {

buffer_ring::~buffer_ring() {
  if (br_) {
    io_uring_unregister_buf_ring(ring_->raw(), group_id_);
    munmap(br_, ring_bytes_);
  }
  std::free(base_);
}

std::string buffer_ring::init(uring& ring, uint16_t group_id, const buffer_ring_options& opts) {
  if (opts.count == 0 || opts.count > 32768 || (opts.count & (opts.count - 1)) != 0)
    return "receive buffer count must be a power of two between 1 and 32768";
  if (opts.buffer_bytes < 256) return "receive buffers must be at least 256 bytes";
  ring_ = &ring;
  opts_ = opts;
  group_id_ = group_id;
  ring_bytes_ = static_cast<size_t>(opts.count) * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
                   0);
  if (mem == MAP_FAILED) return std::string("cannot map the buffer ring: ") + strerror(errno);
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof reg);
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = opts.count;
  reg.bgid = group_id;
  if (int rc = io_uring_register_buf_ring(ring.raw(), &reg, 0); rc != 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return std::string("cannot register the buffer ring (needs Linux 5.19+): ") + strerror(-rc);
  }
  io_uring_buf_ring_init(br_);
  // Cache-line aligned strides keep two buffers from sharing a line between kernel and parser.
  stride_ = (static_cast<size_t>(opts.buffer_bytes) + opts.padding_bytes + 63) & ~size_t{63};
  // aligned_alloc requires the size to be a multiple of the alignment.
  size_t total = (stride_ * opts.count + 4095) & ~size_t{4095};
  base_ = static_cast<char*>(std::aligned_alloc(4096, total));
  if (!base_) return "cannot allocate receive buffers";
  for (uint32_t i = 0; i < opts.count; ++i) recycle(static_cast<uint16_t>(i));
  publish();
  return {};
}

void buffer_ring::recycle(uint16_t bid) {
  RC_ASSERT(bid < opts_.count);
  io_uring_buf_ring_add(br_, buffer(bid), opts_.buffer_bytes, bid,
                        io_uring_buf_ring_mask(opts_.count), static_cast<int>(pending_));
  ++pending_;
}

void buffer_ring::publish() {
  if (pending_ == 0) return;
  io_uring_buf_ring_advance(br_, static_cast<int>(pending_));
  available_ += pending_;
  pending_ = 0;
}

}  // namespace rc
