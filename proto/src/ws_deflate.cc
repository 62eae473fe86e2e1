// permessage-deflate message codec over zlib (see ws_deflate.h).
#include "proto/ws_deflate.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "base/assert.h"

namespace rc::ws {
namespace {

// RFC 7692 §7.2.1: the empty stored block a sync flush ends with, removed by the sender and put
// back by the receiver.
constexpr char sync_tail[4] = {0x00, 0x00, static_cast<char>(0xff), static_cast<char>(0xff)};

// Output grows in steps of at least this much while inflating, and a buffer grown past
// inflate_capacity_kept_bytes is released by trim().
constexpr size_t inflate_step_bytes = 16 * 1024;
constexpr size_t inflate_capacity_kept_bytes = 64 * 1024;

Bytef* bytes(const char* p) {
  return reinterpret_cast<Bytef*>(const_cast<char*>(p));
}

}  // namespace

// ---- deflater ----

deflater::deflater(uint8_t window_bits, uint8_t mem_level)
    : z_(new z_stream{}), window_bits_(window_bits) {
  RC_ASSERT(window_bits >= deflate_window_bits_min && window_bits <= deflate_window_bits_max);
  RC_ASSERT(mem_level >= 1 && mem_level <= 9);
  // Negative window bits: raw deflate, no zlib header or checksum (§7.2.1).
  int rv = deflateInit2(z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -static_cast<int>(window_bits),
                        mem_level, Z_DEFAULT_STRATEGY);
  if (rv != Z_OK) {
    delete z_;
    throw std::bad_alloc();  // the arguments are checked above: only memory can fail
  }
}

deflater::~deflater() {
  deflateEnd(z_);
  delete z_;
}

void deflater::compress(std::span<const std::string_view> parts, byte_buffer& out,
                        deflate_context c) {
  size_t total = 0;
  for (std::string_view p : parts) total += p.size();
  if (total == 0) {
    // An empty message is one empty stored block (RFC 7692 7.2.3.6). zlib can't make it after a
    // sync flush, since a second flush with no input writes nothing; the block adds nothing to
    // the window, so a kept context stays in step with the reader's.
    out.push_back('\0');
    if (c == deflate_context::reset) deflateReset(z_);
    return;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    z_->next_in = bytes(parts[i].data());
    z_->avail_in = static_cast<uInt>(parts[i].size());
    int flush = last ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    do {
      // deflateBound() is for a whole stream; for one flushed piece the input plus a little per
      // block is enough, and the loop takes care of the rest.
      size_t room = std::max<size_t>(total / 2 + 64, 256);
      z_->next_out = reinterpret_cast<Bytef*>(out.prepare(room));
      z_->avail_out = static_cast<uInt>(room);
      int rv = ::deflate(z_, flush);
      RC_ASSERT(rv == Z_OK || rv == Z_BUF_ERROR);  // a valid stream in memory cannot fail
      out.commit(room - z_->avail_out);
    } while (z_->avail_in > 0 || z_->avail_out == 0);
  }
  RC_ASSERT(out.size() >= 4 && std::memcmp(out.data() + out.size() - 4, sync_tail, 4) == 0);
  out.resize(out.size() - 4);
  if (c == deflate_context::reset) deflateReset(z_);
}

// ---- inflater ----

inflater::inflater() : z_(new z_stream{}) {
  if (inflateInit2(z_, -static_cast<int>(deflate_window_bits_max)) != Z_OK) {
    delete z_;
    throw std::bad_alloc();
  }
}

inflater::~inflater() {
  inflateEnd(z_);
  delete z_;
}

inflate_status inflater::inflate(std::string_view compressed, size_t bytes_max,
                                 deflate_context c) {
  out_.clear();
  inflate_status st = inflate_status::ok;
  bool ended = false;  // a final block was decoded
  std::string_view pieces[2] = {compressed, {sync_tail, sizeof sync_tail}};
  for (size_t i = 0; i < 2 && st == inflate_status::ok && !ended; ++i) {
    z_->next_in = bytes(pieces[i].data());
    z_->avail_in = static_cast<uInt>(pieces[i].size());
    bool full = false;  // the last call filled its output: more may be pending
    while (st == inflate_status::ok && !ended && (z_->avail_in > 0 || full)) {
      // Never offer more room than the limit plus one byte: a message that needs the extra
      // byte is too big, and decoding stops there instead of producing more.
      size_t left = bytes_max + 1 - out_.size();
      size_t room = std::min(left, std::max(inflate_step_bytes, out_.size()));
      z_->next_out = reinterpret_cast<Bytef*>(out_.prepare(room));
      z_->avail_out = static_cast<uInt>(room);
      int rv = ::inflate(z_, Z_SYNC_FLUSH);
      out_.commit(room - z_->avail_out);
      full = z_->avail_out == 0;
      if (out_.size() > bytes_max) {
        st = inflate_status::too_big;
      } else if (rv == Z_STREAM_END) {
        ended = true;
        // After a final block only our own 00 00 ff ff may be left over.
        if (i == 0 && z_->avail_in > 0) st = inflate_status::bad_data;
      } else if (rv == Z_BUF_ERROR) {
        break;  // no progress possible: the input is used up and nothing is pending
      } else if (rv != Z_OK) {
        st = inflate_status::bad_data;  // Z_DATA_ERROR (Z_NEED_DICT can't occur in raw mode)
      }
    }
  }
  // A message must end at a block boundary (inflate waits for the next block header: data_type
  // bit 128) or with a final block; anything else was cut off inside a block.
  if (st == inflate_status::ok && !ended && (z_->data_type & 128) == 0) {
    st = inflate_status::bad_data;
  }
  if (st != inflate_status::ok || c == deflate_context::reset || ended) inflateReset(z_);
  if (st == inflate_status::ok) {
    ++stats_.messages;
    stats_.bytes_in += compressed.size();
    stats_.bytes_out += out_.size();
  } else {
    ++(st == inflate_status::too_big ? stats_.too_big : stats_.bad_data);
  }
  return st;
}

void inflater::trim() {
  if (out_.capacity() > inflate_capacity_kept_bytes) out_.reset();
}

void write_compressed_frame(byte_buffer& out, opcode op, std::string_view compressed, fin f) {
  RC_ASSERT(op == opcode::text || op == opcode::binary);
  char* dst = out.prepare(frame_header_bytes_max + compressed.size());
  size_t n = encode_frame_header(dst, op, compressed.size(), f);
  dst[0] = static_cast<char>(dst[0] | rsv1_bit);
  if (!compressed.empty()) std::memcpy(dst + n, compressed.data(), compressed.size());
  out.commit(n + compressed.size());
}

// ---- stored blocks ----

void write_stored_block(byte_buffer& out, std::string_view bytes) {
  do {
    size_t n = std::min<size_t>(bytes.size(), 0xffff);
    // BFINAL 0, BTYPE 00, then padding to the byte boundary: one zero byte at a boundary.
    char head[5] = {0, static_cast<char>(n & 0xff), static_cast<char>(n >> 8),
                    static_cast<char>(~n & 0xff), static_cast<char>((~n >> 8) & 0xff)};
    out.append(head, sizeof head);
    out.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
  } while (!bytes.empty());
}

}  // namespace rc::ws
