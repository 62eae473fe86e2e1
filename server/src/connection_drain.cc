// connection: its part of a drain (SIGTERM/SIGINT). See shard.h for the sequence and
// connection.h for the contract of each step.
//
// What clients see: a stream that ends by itself (a chat or Responses generation, a broker
// message) runs to its end until the drain deadline; one still running then ends with the
// documented mid-stream error with code "draining" (chat SSE `data: {"error":…}`, Responses
// `event: error`, broker `event: error`, WebSocket `error` event), never with a clean-looking end.
// Endless streams (topic subscriptions) get that error event as soon as draining starts. A
// request still running at the deadline is answered 503. WebSockets close with 1001 behind their
// last events.
#include "server/connection.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {
namespace {

constexpr std::string_view drain_message = "the server is shutting down; retry on a new connection";

}  // namespace

bool connection::begin_drain() {
  if (phase_ == phase::closing || closing()) return false;
  cut_streams(cut_scope::endless, "draining", drain_message);
  if (phase_ == phase::closing || closing()) return false;
  if (mode_ == mode::ws) {
    if (ws_->closing()) return false;
    if (has_finite_streams()) return true;
    note_close_reason(close_reason::drain);
    close_websocket(1001, "server shutting down", ws_close_order::after_backlog);
    return false;
  }
  if (mode_ == mode::sse) {
    current_.keep_alive = false;  // the stream runs to its end, then the connection closes
    if (producers_.empty()) {
      note_close_reason(close_reason::drain);
      end_sse();
    }
    return false;
  }
  if (phase_ == phase::handling) {
    current_.keep_alive = false;  // the pending response closes the connection
    return false;
  }
  if ((phase_ == phase::reading || phase_ == phase::idle) && !input_empty()) {
    // A request is arriving, or waits for the resume_input posted behind an answer just written:
    // answer it (with Connection: close), then close.
    return false;
  }
  if (!deferred_.empty()) return false;  // closes once they are written (connection_deferred.cc)
  phase_ = phase::closing;
  close_after_flush(shard_.config().linger_ms);
  update_timer();
  return false;
}

bool connection::drain_step() {
  if (mode_ != mode::ws || phase_ == phase::closing || closing() || ws_->closing()) return true;
  if (has_finite_streams()) return false;
  note_close_reason(close_reason::drain);
  close_websocket(1001, "server shutting down", ws_close_order::after_backlog);
  return true;
}

void connection::drain_deadline() {
  if (phase_ == phase::closing || closing()) return;
  cut_streams(cut_scope::all, "draining", drain_message);
  if (phase_ == phase::closing || closing()) return;
  if (mode_ == mode::ws) {
    note_close_reason(close_reason::drain);
    close_websocket(1001, "server shutting down", ws_close_order::after_backlog);
    return;
  }
  if (mode_ == mode::sse) {
    note_close_reason(close_reason::drain);
    end_sse_and_close();
    return;
  }
  // A handler that answers later without a stream (a metrics scrape, an enqueue) is a matter of
  // milliseconds: the shard's final abort bounds it. Anything else has nothing left to answer.
  if (phase_ == phase::handling || !deferred_.empty()) return;
  phase_ = phase::closing;
  close_after_flush(0);
  update_timer();
}

void connection::cut_streams(cut_scope scope, std::string_view code, std::string_view message) {
  if (producers_.empty()) return;
  // Rendering an error may end the response (an SSE stream ends with its error), which closes
  // the connection's remaining producers: take them out first, cut one at a time, and put back
  // what is left.
  intrusive_list<stream_producer, producer_list_tag> pending, kept;
  pending.splice(producers_);
  mode before = mode_;
  while (stream_producer* p = pending.pop_front()) {
    if (scope == cut_scope::endless && p->ends_by_itself()) {
      kept.push_back(*p);
      continue;
    }
    note_close_reason(close_reason::drain);
    p->on_cut(code, message);
    if (mode_ != before || phase_ == phase::closing || closing()) break;
  }
  producers_.splice(kept);
  producers_.splice(pending);
  if (mode_ != before || phase_ == phase::closing || closing()) close_stream_producers();
}

bool connection::has_finite_streams() {
  bool any = false;
  producers_.for_each([&](stream_producer& p) { any |= p.ends_by_itself(); });
  return any;
}

bool connection::refused_while_draining(route_id route) {
  bool endless = route == route_id::ws || route == route_id::echo ||
                 route == route_id::responses_ws || route == route_id::topic_events;
  if (!endless) return false;
  respond_api_error(*this, abort_error("draining", drain_message), 1000);
  return true;
}

}  // namespace rc::server
