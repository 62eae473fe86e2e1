// The Responses WebSocket mode (GET /v1/responses after the upgrade): response.create
// messages, run in lanes by stream_id.
#include "proto/json_writer.h"
#include "proto/openai_errors.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/responses_api.h"
#include "server/shard.h"

namespace rc::server {

void responses_ws_handler::send_error(ws_endpoint& ws, const openai::api_error& e) {
  byte_buffer b;
  openai::write_responses_ws_error(b, e);
  ws.send_text(b.view());
}

void responses_ws_handler::on_message(ws_endpoint& ws, ws::message_kind kind,
                                      std::string_view payload) {
  if (closed_) return;
  if (ws.shard().draining()) {  // what runs may finish; nothing new starts
    send_error(ws,
               abort_error("draining", "the server is shutting down; retry on a new connection"));
    return;
  }
  if (kind != ws::message_kind::text) {
    send_error(ws, openai::invalid_request("messages must be JSON text frames"));
    return;
  }
  json::value root;
  if (auto err = openai::parse_json_body(ws.shard().json_parser(), payload.data(), payload.size(),
                                         payload.size(), root)) {
    send_error(ws, *err);
    return;
  }
  json::value type = root.find("type");
  if (!type || !type.is_string() || type.get_string() != "response.create") {
    send_error(ws, openai::invalid_request("expected {\"type\":\"response.create\", ...}", "type"));
    return;
  }
  std::string stream_id;
  if (json::value sid = root.find("stream_id"); sid && sid.is_string()) stream_id = sid.get_string();
  openai::responses_request req;
  if (auto err = openai::parse_responses_request(root, req)) {
    send_error(ws, *err);
    return;
  }
  uint32_t max = ws.shard().config().ws_inflight_max;
  if (inflight_ >= max) {
    openai::api_error e = openai::overloaded();
    e.message = "too many responses in progress on this connection (" + std::to_string(max) + ")";
    send_error(ws, e);
    return;
  }
  uint64_t retry_ms = 0;
  if (!ws.conn().admit_ws_action(retry_ms)) {
    openai::api_error e = openai::rate_limited("Rate limit reached for requests");
    e.code = "rate_limited";
    send_error(ws, e);
    return;
  }
  if (auto refused = admit_ws_generation(ws, retry_ms)) {
    send_error(ws, *refused);
    if (refused->code == "queue_full") ws.pause_flow_for(retry_ms);
    return;
  }
  ++inflight_;
  // For engines that forward it: the request in its HTTP shape (without `type` and `stream_id`).
  byte_buffer body;
  json::writer w(body);
  w.begin_object();
  for (json::member m : root.members()) {
    if (m.key == "type" || m.key == "stream_id") continue;
    w.raw_member(m.key, m.value.to_json());
  }
  w.end_object();
  lane& l = lanes_[stream_id];
  l.waiting.push_back({std::move(req), original_of(ws.conn(), api_kind::responses,
                                                   std::string(body.view()), true, false)});
  if (!l.running) run_next(ws, stream_id);
}

void responses_ws_handler::run_next(ws_endpoint& ws, const std::string& stream_id) {
  auto it = lanes_.find(stream_id);
  if (it == lanes_.end() || it->second.waiting.empty()) return;
  lane& l = it->second;
  openai::responses_request req = std::move(l.waiting.front().req);
  original_request original = std::move(l.waiting.front().original);
  l.waiting.pop_front();
  l.running = true;
  uint64_t conn_id = ws.connection_id();
  start_response(ws.conn(), responses_mode::ws, std::move(req), {}, [conn_id, stream_id] {
    connection* c = shard_server::current()->live_connection(conn_id);
    if (!c || !c->websocket()) return;
    auto& self = static_cast<responses_ws_handler&>(c->websocket()->handler());
    if (self.closed_) return;
    --self.inflight_;
    auto lane_it = self.lanes_.find(stream_id);
    if (lane_it == self.lanes_.end()) return;
    lane_it->second.running = false;
    if (lane_it->second.waiting.empty()) {
      self.lanes_.erase(lane_it);
    } else {
      self.run_next(*c->websocket(), stream_id);
    }
  }, generation_deadline_ms(ws.shard(), {}), std::move(original));
}

void responses_ws_handler::on_close(ws_endpoint&) {
  closed_ = true;
  lanes_.clear();
}

handler_result handle_responses_ws(request_context& ctx) {
  return upgrade_websocket(ctx, std::make_unique<responses_ws_handler>());
}

}  // namespace rc::server
