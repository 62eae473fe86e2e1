// ws_deflate: the permessage-deflate WebSocket extension (RFC 7692) without I/O — negotiation of
// Sec-WebSocket-Extensions, and the message codec over zlib (raw deflate).
//
// Negotiation (server). The client's header lists offers, best first; each is an extension name
// with parameters (RFC 6455 §9.1 grammar: tokens, `;`, `=`, token or quoted-string values). The
// first permessage-deflate offer the server can accept wins. An offer is declined (the next one
// is tried, and without one the connection simply has no extension, RFC 7692 §5) when it repeats
// a parameter, has an unknown one, gives a value to a flag, or a window size that is not 8..15 in
// the exact ABNF of §7.1.2. A header that is malformed beyond one element stops the scan there:
// the offers before it still count. Nothing here fails the handshake.
//
// What the server answers (policy chosen so memory stays bounded, see deflate_policy):
// * client_no_context_takeover, always (§7.1.1.2 allows it unasked): every client message
//   inflates alone, so the server keeps no inflate state per connection — one inflater per
//   thread serves every connection;
// * server_no_context_takeover when the client asked for it, or when the policy refuses a
//   compression context to this connection (§7.1.1.1 allows it unasked); otherwise the server
//   keeps a compressor per connection;
// * server_max_window_bits=N when the client offered it (N = the smaller of its value and the
//   policy's window); the compressor never uses a larger window than the answer allows. An
//   offer of 8 is declined: zlib's raw deflate cannot compress with a 256-byte window.
// * client_max_window_bits is never answered: the inflater's window is 15 bits, which decodes
//   any client window.
//
// Messages. A compressed message is the raw deflate stream of its payload, flushed with
// Z_SYNC_FLUSH and with the final 00 00 ff ff removed (§7.2.1); RSV1 is set on its first frame.
// inflater::inflate() puts the four bytes back, bounds the output (a decompression bomb stops at
// the limit, not after) and rejects a stream that is corrupt or stops inside a block.
// For compress-once fan-out, a message may be built from byte-aligned pieces: a stored block
// written for one subscriber (write_stored_block) followed by a shared compressed part that
// starts a fresh stream (no back-references across the boundary), which decodes as one message.
//
// Thread-safety: deflater and inflater belong to one thread; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/ws.h"

struct z_stream_s;

namespace rc::ws {

constexpr uint8_t deflate_window_bits_min = 9;  // zlib's smallest raw-deflate window
constexpr uint8_t deflate_window_bits_max = 15;
// The RSV1 bit of a frame's first byte: the message is compressed.
constexpr uint8_t rsv1_bit = 0x40;

// One permessage-deflate offer as parsed (0 window bits: the parameter was absent).
struct deflate_offer {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  uint8_t server_max_window_bits = 0;
  bool client_max_window_bits = false;       // offered, with or without a value
  uint8_t client_max_window_bits_value = 0;  // its value, 0 when given without one
};

// What the server allows; see the top of the file.
struct deflate_policy {
  uint8_t window_bits = 15;      // the compressor's window, deflate_window_bits_min..max
  bool context_takeover = true;  // false: answer server_no_context_takeover to everyone
};

// The extension as agreed for one connection.
struct deflate_agreement {
  bool server_no_context_takeover = false;  // the server compresses each message alone
  bool client_no_context_takeover = true;   // the client does (always asked by our server)
  uint8_t server_window_bits = 15;          // the window the server's compressor uses
  bool answer_server_max_window_bits = false;  // the offer named it: echo it in the answer
};

// Calls f(offer) for each well-formed permessage-deflate offer in a Sec-WebSocket-Extensions
// value, in order, until f returns true. Returns whether f did.
template <class F>
bool for_each_deflate_offer(std::string_view header, F&& f);

// Server: the agreement for the first acceptable offer, or nullopt (no extension).
std::optional<deflate_agreement> negotiate_deflate(std::string_view header,
                                                   const deflate_policy& policy);

// Server: appends the Sec-WebSocket-Extensions value answering `a`.
void write_deflate_answer(byte_buffer& out, const deflate_agreement& a);

// Client: parses the server's answer to its offer (one permessage-deflate element). Returns the
// agreement (server_window_bits is what the server may use) or nullopt if the answer is not a
// valid permessage-deflate answer (the client must then fail the connection, RFC 7692 §5).
std::optional<deflate_agreement> parse_deflate_answer(std::string_view header);

// Whether to keep the compression context between messages.
enum class deflate_context : uint8_t { keep, reset };

// A raw-deflate compressor. Memory: about 2^(window_bits + 2) + 2^(mem_level + 9) bytes plus
// zlib's fixed 6 KiB, allocated by the constructor.
class deflater {
 public:
  // REQUIRES: window_bits in deflate_window_bits_min..max, mem_level in 1..9.
  deflater(uint8_t window_bits, uint8_t mem_level);
  ~deflater();
  deflater(const deflater&) = delete;
  deflater& operator=(const deflater&) = delete;

  // Appends the compressed form of the message made of `parts` (in order) to out, without the
  // trailing 00 00 ff ff. With deflate_context::reset the next message starts a fresh stream.
  void compress(std::span<const std::string_view> parts, byte_buffer& out, deflate_context c);
  void compress(std::string_view message, byte_buffer& out, deflate_context c) {
    compress(std::span<const std::string_view>(&message, 1), out, c);
  }
  uint8_t window_bits() const { return window_bits_; }

 private:
  z_stream_s* z_;
  uint8_t window_bits_;
};

enum class inflate_status : uint8_t { ok, too_big, bad_data };

// What an inflater has done since it was made (the server's /metrics reads its shard's).
struct inflate_stats {
  uint64_t messages = 0;   // inflated ok
  uint64_t bytes_in = 0;   // their compressed bytes
  uint64_t bytes_out = 0;  // their inflated bytes
  uint64_t too_big = 0;    // refused past bytes_max (a server closes 1009)
  uint64_t bad_data = 0;   // corrupt or cut-off data (a server closes 1007)
};

// A raw-deflate decompressor with a 15-bit window (decodes any sender's window).
class inflater {
 public:
  inflater();
  ~inflater();
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;

  // Inflates one message's compressed payload. ok: output() holds the message (valid until the
  // next call); too_big: it would exceed bytes_max (decoding stopped there); bad_data: corrupt,
  // ends inside a block, or has bytes after a final block. With deflate_context::reset (or after
  // any failure) the next message starts a fresh stream; keep is for a peer that keeps its
  // context (only the client side of our load generator sees one).
  inflate_status inflate(std::string_view compressed, size_t bytes_max,
                         deflate_context c = deflate_context::reset);
  std::string_view output() const { return out_.view(); }
  // Drops the output's memory if a large message grew it.
  void trim();
  const inflate_stats& stats() const { return stats_; }

 private:
  z_stream_s* z_;
  byte_buffer out_;
  inflate_stats stats_;
};

// Appends stored (uncompressed) deflate blocks holding `bytes`, not final: byte-aligned at both
// ends, so a compressed stream may follow. 5 bytes of framing per 65,535 bytes.
void write_stored_block(byte_buffer& out, std::string_view bytes);

// Appends a server frame (unmasked) carrying a compressed message, or its first fragment, with
// RSV1 set. REQUIRES: op is text or binary.
void write_compressed_frame(byte_buffer& out, opcode op, std::string_view compressed,
                            fin f = fin::yes);

// ---- parsing, generic over the header grammar (the template above) ----

namespace detail {
struct ext_param {
  std::string_view name;
  std::string_view value;  // unquoted; may still hold quoted-pair backslashes (never valid here)
  bool has_value = false;
};
constexpr size_t ext_params_max = 8;  // more than any valid permessage-deflate offer has
struct ext_element {
  std::string_view name;
  ext_param params[ext_params_max];
  size_t param_count = 0;
  bool malformed = false;  // a syntax error or too many parameters inside this element
};
// Parses the element starting at `pos`, advancing pos past its trailing comma. Returns false at
// the end of the header, or when the element is broken so badly (an unterminated quoted string)
// that the rest of the header can't be split safely.
bool next_extension(std::string_view header, size_t& pos, ext_element& e);
std::optional<deflate_offer> to_deflate_offer(const ext_element& e);
}  // namespace detail

template <class F>
bool for_each_deflate_offer(std::string_view header, F&& f) {
  size_t pos = 0;
  detail::ext_element e;
  while (detail::next_extension(header, pos, e)) {
    if (e.malformed) continue;
    if (auto offer = detail::to_deflate_offer(e); offer && f(*offer)) return true;
  }
  return false;
}

}  // namespace rc::ws
