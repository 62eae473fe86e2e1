// ws_reader: the client side's incremental WebSocket frame reader, for the load generator.
//
// ws_session (wslay) is the full protocol engine; a load generator that must outrun the server
// needs less: frames parsed with proto/ws.h's header parser, fragments reassembled, control
// frames handed up (the caller answers pings), and server-side rules checked that cost nothing
// (server frames are unmasked, no RSV bits but RSV1 with permessage-deflate, control frames short and unfragmented, continuations
// only inside a fragmented message). UTF-8 is not validated: the load generator looks for a few
// fields in the JSON it receives and counts what it does not understand.
//
// Copies: a frame that arrives whole in one read is delivered straight from the caller's buffer;
// only a frame split across reads is carried over (in `pending_`), and only a fragmented message
// is assembled (in `message_`). Both buffers keep their capacity, so steady state allocates
// nothing.
//
// Thread-safety: one reader per connection, on its shard. The sink must not destroy the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/ws.h"
#include "proto/ws_deflate.h"

namespace rc::load {

enum class ws_event : uint8_t { text, binary, ping, pong, close };

struct ws_sink {
  void (*fn)(void* ctx, ws_event kind, std::string_view payload) = nullptr;
  void* ctx = nullptr;
};

// A sink that calls obj->*Method(kind, payload), without a virtual call.
template <auto Method, class T>
ws_sink bind_sink(T* obj) {
  return {[](void* ctx, ws_event kind, std::string_view payload) {
            (static_cast<T*>(ctx)->*Method)(kind, payload);
          },
          obj};
}

enum class ws_read_error : uint8_t {
  none,
  bad_header,        // length not in minimal form
  masked,            // a server frame with a mask
  rsv_bits,          // an extension bit we did not negotiate
  bad_opcode,        // a reserved opcode
  bad_control,       // a control frame fragmented or longer than 125 bytes
  bad_continuation,  // a continuation outside a fragmented message, or a new one inside it
  too_big,           // a message longer than message_bytes_max
  bad_compressed,    // permessage-deflate: corrupt, or longer than message_bytes_max inflated
};

std::string_view describe(ws_read_error e);

class ws_reader {
 public:
  explicit ws_reader(uint64_t message_bytes_max = 16 << 20)
      : message_bytes_max_(message_bytes_max) {}

  // Reads `in`, calling the sink for every complete message and control frame. Returns false
  // after a protocol error (see error()); the reader then ignores further input.
  bool feed(std::string_view in, const ws_sink& sink);

  ws_read_error error() const { return error_; }

  // permessage-deflate was negotiated: RSV1 on a message's first frame marks it compressed, and
  // it is inflated with `inf` (deflate_context::keep when the server keeps its context: then
  // the inflater must be this connection's own) before the sink sees it.
  void set_inflate(ws::inflater* inf, ws::deflate_context c) {
    inflate_ = inf;
    inflate_context_ = c;
  }

 private:
  // Handles the whole frames at the front of [p, p + n); returns the bytes they took.
  size_t parse(const char* p, size_t n, const ws_sink& sink);
  bool frame(const ws::frame_header& h, std::string_view payload, const ws_sink& sink);
  bool deliver(ws_event kind, std::string_view payload, bool compressed, const ws_sink& sink);
  bool fail(ws_read_error e) {
    error_ = e;
    return false;
  }

  uint64_t message_bytes_max_;
  ws_read_error error_ = ws_read_error::none;
  bool assembling_ = false;
  bool compressed_ = false;  // the message being assembled has RSV1
  ws::inflater* inflate_ = nullptr;
  ws::deflate_context inflate_context_ = ws::deflate_context::reset;
  ws_event message_kind_ = ws_event::text;
  byte_buffer pending_;
  byte_buffer message_;
};

}  // namespace rc::load
