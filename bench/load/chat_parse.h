// chat_parse: recognises the streaming frames the chat and broker modes read, without a JSON
// parser (the load generator must read faster than the server writes).
//
// Each function looks at one complete unit (an SSE event's data, a WebSocket message, a
// response body) and only at the few fields it needs, as the server writes them (API.md):
//   * an OpenAI chat.completion.chunk carries a token when its `delta` object holds a
//     non-empty "content" string; the opening role chunk (content "") and the closing chunk
//     (empty delta, finish_reason) are `other`; `[DONE]` ends the stream; `{"error":…}` is the
//     server's in-stream error; anything else is malformed.
//   * a WebSocket broker event names its request `id` ("c<slot>", which we minted) and its
//     `event` (chat.delta, chat.complete, error; flow.* without an id).
//   * a broker lifecycle event is named by its SSE `event:` type.
// String values are taken up to the next quote: the fields read here (ids we minted, event
// names, message ids the server minted) never contain escapes. A missing field or an
// unterminated string is malformed, never an over-read.
//
// chat_sse_reader joins sse::decoder to the chunk classifier for the body of one chat stream:
// bytes may be split anywhere; each complete event is classified once.
//
// Thread-safety: pure functions; a reader belongs to one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proto/sse.h"

namespace rc::load {

// The value of the first `"key":"…"` in `json`, or nullopt (absent or unterminated).
std::optional<std::string_view> find_string_field(std::string_view json, std::string_view key);

enum class chat_chunk : uint8_t { token, other, done, error, malformed };
chat_chunk classify_chat_chunk(std::string_view data);

enum class ws_chat_kind : uint8_t { delta, complete, error, flow, other, malformed };
struct ws_chat_event {
  ws_chat_kind kind = ws_chat_kind::malformed;
  uint32_t slot = 0;  // from the request id "c<slot>"; valid for delta, complete, error
};
ws_chat_event classify_ws_chat(std::string_view message);

// Writes the request id for `slot` ("c<slot>") to `out` (at least 11 bytes); returns its length.
size_t write_slot_id(uint32_t slot, char* out);

enum class broker_event : uint8_t { queued, processing, progress, done, error, other };
broker_event classify_broker_event(std::string_view type);

class chat_sse_reader {
 public:
  // Decodes `body`, calling on_chunk(chat_chunk) for each complete event. Returns false once
  // the SSE framing broke a decoder limit (the stream is unusable).
  template <class OnChunk>
  bool feed(std::string_view body, OnChunk&& on_chunk) {
    return decoder_.feed(body, [&](const sse::decoded_event& e) {
      on_chunk(classify_chat_chunk(e.data));
    }) == sse::decode_error::none;
  }
  // A new response begins on the connection.
  void restart() { decoder_.restart(); }

 private:
  sse::decoder decoder_;
};

}  // namespace rc::load
