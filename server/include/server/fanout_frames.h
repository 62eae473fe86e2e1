// fanout_frames: one event encoded once for every subscriber that receives it — topic
// publications and broker lifecycle events alike — and the per-subscriber step that queues it.
//
// SSE: one buffer holding the HTTP chunk framing around the SSE frame; HTTP/1.0 streams send
// the frame alone (an offset and length into the same buffer). WebSocket: every message to a
// subscriber is two fragments, the subscriber's own prefix frame ({"id":"<request id>",, made
// once per subscription) and the event's shared continuation frame with the rest of the
// object, so the event is encoded once whatever the request ids.
//
// Thread-safety: the buffers are immutable and refcounted; events cross shards by value.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/shared_buffer.h"

namespace rc::server {

class connection;

enum class subscriber_kind : uint8_t { sse, ws };

struct fanout_frames {
  shared_buffer sse;              // "<hex>\r\n" + SSE frame + "\r\n"
  uint32_t sse_frame_offset = 0;  // the SSE frame alone
  uint32_t sse_frame_len = 0;
  shared_buffer ws;  // WebSocket continuation frame: `ws_tail` + "}"

  uint64_t bytes() const { return sse.size() + ws.size(); }

  // Encodes an SSE event with this id, type and data, and the WebSocket continuation whose
  // payload is `ws_tail` (the members after the subscriber's "id") and the closing brace.
  void encode(std::string_view id, std::string_view type, std::string_view data,
              std::string_view ws_tail);
};

// A subscriber's first WebSocket fragment: a text frame header (not final) and {"id":<id>,.
shared_buffer ws_prefix_frame(std::string_view request_id);

// Queues `f` on a subscriber's connection in its framing. False if the connection refused it.
bool push_frames(connection& c, subscriber_kind kind, const shared_buffer& ws_prefix,
                 const fanout_frames& f);

// Ends a subscriber's stream that the server cut (see stream_producer::on_cut) with its error
// event: over SSE `event: error` with {<subject_key>: <subject>, code, message} and no id (a
// client's Last-Event-ID stays on the last real event), then the response ends and the
// connection closes; over WebSocket the `error` event of request `request_id` (the connection
// stays open). An SSE response that has not begun yet is answered 503 instead.
void end_cut_subscriber(connection& c, subscriber_kind kind, std::string_view request_id,
                        std::string_view subject_key, std::string_view subject,
                        std::string_view code, std::string_view message);

}  // namespace rc::server
