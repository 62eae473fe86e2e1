// buffer_ring: a provided-buffer ring (IORING_REGISTER_PBUF_RING) that multishot receives pick
// their buffers from.
//
// All connections of a shard share these buffers, so an idle connection holds none: a buffer is
// taken by the kernel when data arrives and handed back by recycle() as soon as the data has been
// parsed (or copied out, when a message spans two reads). Every buffer has padding_bytes of
// readable slack after its usable size, so parsers that read ahead (simdjson needs
// SIMDJSON_PADDING) can run in place; the kernel never writes into the slack.
//
// Debian 12's liburing 2.3 lacks io_uring_setup_buf_ring (2.4+), so the ring memory is mmap'ed
// and registered here.
//
// Thread-safety: owned by one shard; recycle() only from that shard.
#pragma once

#include <cstdint>
#include <string>

#include "core/uring.h"

namespace rc {

struct buffer_ring_options {
  uint32_t count = 2048;         // power of two, <= 32768
  uint32_t buffer_bytes = 4096;  // what one receive may fill
  uint32_t padding_bytes = 64;   // readable slack after each buffer
};

class buffer_ring {
 public:
  buffer_ring() = default;
  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;
  ~buffer_ring();

  // Returns an empty string on success, else what went wrong.
  std::string init(uring& ring, uint16_t group_id, const buffer_ring_options& opts);

  uint16_t group_id() const { return group_id_; }
  uint32_t buffer_bytes() const { return opts_.buffer_bytes; }
  uint32_t padding_bytes() const { return opts_.padding_bytes; }
  uint32_t count() const { return opts_.count; }

  char* buffer(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * stride_; }

  // Gives buffer `bid` back to the kernel. Visible to it after the next publish().
  void recycle(uint16_t bid);
  // Publishes recycled buffers (one release store); the reactor calls it once per loop turn.
  void publish();

  // Buffers currently owned by the kernel (free for receives) after the last publish.
  uint32_t available() const { return available_; }
  void note_taken() { --available_; }

 private:
  uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  size_t stride_ = 0;
  buffer_ring_options opts_;
  uint16_t group_id_ = 0;
  uint32_t pending_ = 0;    // recycled but not yet published
  uint32_t available_ = 0;
};

}  // namespace rc
