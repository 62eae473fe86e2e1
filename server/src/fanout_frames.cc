#include "server/fanout_frames.h"

#include "base/byte_buffer.h"
#include "proto/http1_writer.h"
#include "proto/json_writer.h"
#include "proto/sse.h"
#include "proto/ws.h"
#include "server/connection.h"
#include "server/openai_api.h"
#include "server/ws_broker.h"
#include "server/ws_endpoint.h"

namespace rc::server {

void fanout_frames::encode(std::string_view id, std::string_view type, std::string_view data,
                           std::string_view ws_tail) {
  byte_buffer frame;
  sse::write_event(frame, sse::event{.id = id, .type = type, .data = data});
  byte_buffer chunk(frame.size() + 16);
  http1::write_chunk_header(chunk, frame.size());
  sse_frame_offset = static_cast<uint32_t>(chunk.size());
  sse_frame_len = static_cast<uint32_t>(frame.size());
  chunk.append(frame.view());
  chunk.append("\r\n");
  sse = shared_buffer::copy_of(chunk.view());

  byte_buffer ws_frame(ws_tail.size() + 1 + ws::frame_header_bytes_max);
  ws::write_frame_header(ws_frame, ws::opcode::continuation, ws_tail.size() + 1, ws::fin::yes);
  ws_frame.append(ws_tail);
  ws_frame.push_back('}');
  ws = shared_buffer::copy_of(ws_frame.view());
}

shared_buffer ws_prefix_frame(std::string_view request_id) {
  byte_buffer payload;
  payload.append("{\"id\":");
  json::write_string(payload, request_id);
  payload.push_back(',');
  byte_buffer frame;
  ws::write_frame_header(frame, ws::opcode::text, payload.size(), ws::fin::no);
  frame.append(payload.view());
  return shared_buffer::copy_of(frame.view());
}

bool push_frames(connection& c, subscriber_kind kind, const shared_buffer& ws_prefix,
                 const fanout_frames& f) {
  if (kind == subscriber_kind::ws) {
    ws_endpoint* ws = c.websocket();
    return ws && ws->send_fanout(ws_prefix, f.ws);
  }
  // Small events are copied into the connection's buffer, like the WebSocket pair above: a
  // turn's events to one subscriber then leave as one plain send, where as shared slices they
  // were a sendmsg whose iovecs (one per event) the kernel imports and copies one by one.
  if (c.sse_chunked()) return c.stream_push_shared(f.sse, 0, static_cast<uint32_t>(f.sse.size()));
  return c.stream_push_shared(f.sse, f.sse_frame_offset, f.sse_frame_len);
}

void end_cut_subscriber(connection& c, subscriber_kind kind, std::string_view request_id,
                        std::string_view subject_key, std::string_view subject,
                        std::string_view code, std::string_view message) {
  if (kind == subscriber_kind::ws) {
    if (ws_endpoint* ws = c.websocket())
      broker_ws_handler::send_error(*ws, request_id, code, message);
    return;
  }
  if (c.current_mode() != connection::mode::sse) {
    if (!c.closing()) respond_api_error(c, abort_error(code, message), 1000);
    return;
  }
  byte_buffer json;
  json::writer w(json);
  w.begin_object();
  w.string_member(subject_key, subject);
  w.string_member("code", code);
  w.string_member("message", message);
  w.end_object();
  byte_buffer frame;
  sse::write_event(frame, sse::event{.type = "error", .data = json.view()});
  c.stream_push_sse(frame.view());
  c.end_sse_and_close();
}

}  // namespace rc::server
