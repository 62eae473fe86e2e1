// The WebSocket broker protocol on GET /ws (API.md, "WebSocket broker"): text frames, one JSON
// object each. Requests are {"id":"req-1","action":A,"payload":{...}}; every event sent back
// carries the request id: {"id","event",<"data">}; errors are
// {"id","event":"error","error":{"code","message"}} and never close the connection.
//
// Flow control: at most ws_inflight_max requests may be in progress (waiting on another shard)
// per connection. Reaching it sends {"event":"flow.pause"} in the control lane; draining to half
// sends {"event":"flow.resume"}; a request sent while paused is answered with a flow_paused
// error. Subscriptions (one per topic per connection, at most topics_per_connection_max) end
// with the connection.
//
// Thread-safety: owned by one connection's ws_endpoint, on its shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/unique_function.h"
#include "server/ws_endpoint.h"

namespace rc::server {
class generation_task;
}

#include "proto/openai_errors.h"

namespace rc::json {
class value;
}

namespace rc::server {

class broker_ws_handler final : public ws_handler {
 public:
  void on_message(ws_endpoint& ws, ws::message_kind kind, std::string_view payload) override;
  bool admits_messages() const override { return true; }
  void on_close(ws_endpoint& ws) override;

  // Event and error frames, shared by the actions.
  static void send_event(ws_endpoint& ws, std::string_view id, std::string_view event,
                         std::string_view data_json);
  static void send_error(ws_endpoint& ws, std::string_view id, std::string_view code,
                         std::string_view message);
  // An admission refusal: the error (with retry_after_ms), and flow.pause when the engine queue
  // was full (flow.resume follows after retry_after_ms).
  static void send_refusal(ws_endpoint& ws, std::string_view id, const openai::api_error& e,
                           uint64_t retry_after_ms);

 private:
  void dispatch(ws_endpoint& ws, std::string_view id, std::string_view action,
                const json::value& payload);
  void subscribe(ws_endpoint& ws, std::string_view id, const json::value& payload);
  void unsubscribe(ws_endpoint& ws, std::string_view id, const json::value& payload);
  void publish(ws_endpoint& ws, std::string_view id, const json::value& payload);
  void system_health(ws_endpoint& ws, std::string_view id);
  void start_stream(ws_endpoint& ws, std::string_view id, std::string_view action,
                    const json::value& payload);
  void cancel(ws_endpoint& ws, std::string_view id, const json::value& payload);
  void message_stream(ws_endpoint& ws, std::string_view id, const json::value& payload);
  // What an asynchronous action runs when it is over: frees its in-flight slot (and forgets the
  // stream, for chat.completion and responses.create).
  static unique_function<void()> finisher(uint64_t connection_id, std::string request_id);

  // In-flight accounting for asynchronous actions (see above).
  void begin_async(ws_endpoint& ws);
  // Runs after an asynchronous action finished, if the connection is still there.
  static void end_async(uint64_t connection_id);

  // The maps are made on first use: a connection that never subscribes (or watches) holds
  // neither (an empty std::unordered_map is 56 bytes, and every open /ws holds its handler).
  using id_map = std::unordered_map<std::string, uint64_t>;
  static id_map& made(std::unique_ptr<id_map>& m) {
    if (!m) m = std::make_unique<id_map>();
    return *m;
  }
  std::unique_ptr<id_map> subscriptions_;  // topic -> subscription id
  // Request id -> running stream: at most ws_inflight_max, usually one, so a vector searched in
  // order (an unordered_map's first insert also allocates a 13-bucket table: ~170 bytes a stream).
  std::vector<std::pair<std::string, generation_task*>> streams_;
  generation_task* const* find_stream(std::string_view id) const;
  void forget_stream(std::string_view id);
  // request id -> broker watch id of a message.stream (entries of ended watches are pruned).
  std::unique_ptr<id_map> watches_;
  uint32_t inflight_ = 0;
  bool paused_ = false;
  bool closed_ = false;
};

// GET /echo (--echo): every text or binary message comes back as it came.
class echo_ws_handler final : public ws_handler {
 public:
  void on_message(ws_endpoint& ws, ws::message_kind kind, std::string_view payload) override;
};

}  // namespace rc::server
