// connection: its share of the shard's inbound buffer budget (see inbound_budget.h).
#include "server/connection.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {

void connection::account_inbound() {
  size_t now = partial_input_bytes();
  if (ws_) now += ws_->buffered_bytes();
  if (now == inbound_held_) return;
  if (!shard_.inbound().update(inbound_held_, now)) refuse_inbound();
}

void connection::refuse_inbound() {
  if (mode_ == mode::ws) {
    ws_->refuse_input(1009, "server inbound buffer budget exhausted");
  } else if (phase_ == phase::reading && !async_ && mode_ == mode::http) {
    // A request still arriving: answer it now and drop what came of it.
    size_t wire_bytes = http_->in.size();
    http_->in = input_buffer{};
    http_->chunked.reset();
    http_->need_bytes = 0;
    http_->scanned_hint = 0;
    begin_error_response();
    access_begin(nullptr, wire_bytes);
    respond_error(503,
                  "The server holds too much partial input from clients right now (its inbound "
                  "buffer budget); retry later.",
                  "server_error", {}, "inbound_budget_exhausted",
                  {{"Retry-After", "1"}, {"retry-after-ms", "1000"}});
  } else if (!input_paused_) {
    // Input pipelined behind a pending response: it is answered in turn; read no more for now.
    input_paused_ = true;
    pause_receiving();
  }
  shard_.inbound().update(inbound_held_, partial_input_bytes() + (ws_ ? ws_->buffered_bytes() : 0));
}

}  // namespace rc::server
