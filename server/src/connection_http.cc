#include "server/connection.h"

#include <string>

#include "base/assert.h"
#include "core/clock.h"
#include "proto/http1_writer.h"
#include "proto/openai_errors.h"
#include "server/authentication.h"
#include "server/errors.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {
namespace {

// A client-sent x-request-id is echoed only if it is short visible ASCII; anything else could
// smuggle bytes into our response headers or logs, so it is replaced by a fresh id.
bool acceptable_request_id(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

}  // namespace

connection::connection(shard_server& shard, int fd, uint64_t id)
    : stream_socket(shard.sockets(), fd), shard_(shard), id_(id),
      http_(std::make_unique<http_input>()) {
  timer_.bind<connection, &connection::on_timer>(this);
}

connection::~connection() = default;  // here, where ws_endpoint and token_grant are complete

// mimalloc's size classes around here are 640, 768, 896 bytes: 24 bytes more cost 128 for every
// open connection (see the end of connection.h).
static_assert(sizeof(connection) <= 640, "connection outgrew its allocator size class");

void connection::start() {
  ++shard_.metrics().connections_open[static_cast<size_t>(protocol::http)];
  // A new connection must send its first request head within the header timeout, like any
  // other request: a client that connects and stays silent is not an idle keep-alive client.
  phase_ = phase::reading;
  http_->request_started_ms = shard_.loop().now_ms();
  start_receiving();
  update_timer();
}

// ---- input ----

void connection::on_data(const char* data, size_t len) {
  if (phase_ == phase::closing) return;
  if (mode_ == mode::ws) {
    ws_->on_data(std::string_view(data, len));
    account_inbound();
    return;
  }
  if (mode_ == mode::sse) {
    // A client may send nothing while it reads a stream; what it sends anyway is kept for after
    // the stream (HTTP allows pipelining), within the usual bound.
    keep_input(data, len);
    return;
  }
  if (phase_ == phase::idle) {
    phase_ = phase::reading;
    http_->request_started_ms = shard_.loop().now_ms();
  }
  if (!http_->in.empty() || async_ || input_paused_ || waiting_admission()) {
    keep_input(data, len);
    if (!async_ && !input_paused_ && !waiting_admission()) {
      size_t used = process(http_->in.data(), http_->in.size(), http_->in.capacity());
      http_->in.consume(used);
      http_->in.release_if_empty();
      hand_over_to_websocket();
    }
  } else {
    size_t padding = shard_.loop().buffers().padding_bytes();
    size_t used = process(data, len, len + padding);
    if (used < len && phase_ != phase::closing) keep_input(data + used, len - used);
    hand_over_to_websocket();
  }
  // Pipelined requests pile up while a response is pending: past what one request may
  // legitimately occupy, stop reading until they have been answered.
  const auto& cfg = shard_.config();
  if (!input_paused_ && input_size() > cfg.header_bytes_max + cfg.body_bytes_max + 65536) {
    input_paused_ = true;
    pause_receiving();
  }
  account_inbound();
  update_timer();
}

void connection::keep_input(const char* data, size_t len) {
  // Keep JSON padding after the data so bodies parse in place from here too.
  size_t padding = shard_.loop().buffers().padding_bytes();
  http_->in.append(data, len, padding);
}

size_t connection::process(const char* data, size_t len, size_t capacity) {
  RC_ASSERT(!in_process_);
  in_process_ = true;
  size_t off = 0;
  while (off < len && phase_ != phase::closing && !async_ && mode_ == mode::http &&
         !waiting_admission()) {
    if (over_output_limit()) {
      // The client pipelines faster than it reads: stop until the output drains.
      input_paused_ = true;
      pause_receiving();
      break;
    }
    size_t n = process_one(data + off, len - off, capacity - off);
    if (n == 0) break;
    off += n;
  }
  in_process_ = false;
  if (eof_ && phase_ == phase::idle && off == len && deferred_.empty()) {
    phase_ = phase::closing;
    close_after_flush(shard_.config().linger_ms);
  }
  return off;
}

size_t connection::process_one(const char* data, size_t len, size_t capacity) {
  http1::request& req = shard_.scratch_request();
  const http1::limits& lim = shard_.limits();
  if (http_->chunked) {
    // The head (head_bytes_ long) is complete; the chunked body continues after what was fed.
    size_t head = http_->need_bytes;
    chunked_request& c = *http_->chunked;
    http1::result r = c.decoder.feed(data + head + c.fed, len - head - c.fed, c.body);
    if (r.status == http1::status::error) {
      reject(r.error, len);
      return len;
    }
    if (r.status == http1::status::incomplete) {
      c.fed = len - head;
      return 0;
    }
    size_t total = head + c.fed + r.consumed;
    http1::result h = http1::parse_head(data, len, lim, req);
    RC_ASSERT(h.status == http1::status::complete);
    http_->need_bytes = 0;
    size_t padding = shard_.loop().buffers().padding_bytes();
    c.body.reserve(c.body.size() + padding);
    byte_buffer body = std::move(c.body);
    http_->chunked.reset();
    dispatch(req, body.view(), body.capacity(), total);
    return total;
  }
  if (http_->need_bytes != 0 && len < http_->need_bytes) return 0;

  http1::result r = http1::parse_head(data, len, lim, req, http_->scanned_hint);
  if (r.status == http1::status::incomplete) {
    http_->scanned_hint = r.consumed;
    return 0;
  }
  http_->scanned_hint = 0;
  if (r.status == http1::status::error) {
    reject(r.error, len);
    return len;
  }
  // Behind deferred answers only more publications go on; the rest waits for those answers.
  if (!deferred_.empty() && !may_follow_deferred(req)) return 0;
  // Admission is decided on the head, before the body; the rate token may have to come from
  // another shard, and then nothing is consumed until it has (on_rate_answer parses again).
  route_match matched;  // the route, when this call decided admission (dispatch reuses it)
  bool have_match = false;
  if (!prepare_admission(req, matched, have_match)) return 0;
  const route_match* m = have_match ? &matched : nullptr;
  size_t head = r.consumed;
  switch (req.body) {
    case http1::body_kind::none:
      http_->need_bytes = 0;
      dispatch(req, {}, 0, head, m);
      return head;
    case http1::body_kind::content_length: {
      size_t body_len = static_cast<size_t>(req.content_length);
      if (len - head >= body_len) {
        http_->need_bytes = 0;
        dispatch(req, std::string_view(data + head, body_len), capacity - head, head + body_len, m);
        return head + body_len;
      }
      http_->need_bytes = head + body_len;
      break;
    }
    case http1::body_kind::chunked:
      http_->chunked = std::make_unique<chunked_request>(lim);
      http_->need_bytes = head;  // while http_->chunked is set, http_->need_bytes holds the head length
      if (size_t n = process_one(data, len, capacity); n != 0) return n;
      break;
  }
  // The body is still on its way. A client that asked for it gets the go-ahead now.
  if (req.expect_continue && !continue_sent_ && phase_ != phase::closing) {
    continue_sent_ = true;
    if (!deferred_.empty()) {
      // Behind deferred answers: the 100 leaves after them, in request order (RFC 9112 §9.3.2).
      deferred_answer& d = deferred_.emplace_back();
      d.ready = true;
      d.bytes.append(http1::continue_response);
    } else {
      out().append(http1::continue_response);
      flush();
    }
  }
  return 0;
}

void connection::dispatch(const http1::request& req, std::string_view body, size_t body_capacity,
                          size_t wire_bytes, const route_match* matched) {
  phase_ = phase::handling;
  continue_sent_ = false;
  const auto& cfg = shard_.config();
  current_.version = req.version;
  current_.head = req.method == http1::method::head;
  current_.keep_alive =
      req.keep_alive && !shard_.draining() &&
      (cfg.keepalive_requests_max == 0 ||
       requests_served_ + deferred_.size() + 1 < cfg.keepalive_requests_max);
  current_.start_ns = monotonic_ns();
  std::string_view client_id = req.find("x-request-id");
  if (acceptable_request_id(client_id)) {
    std::memcpy(current_.request_id, client_id.data(), client_id.size());
    current_.request_id_len = static_cast<uint8_t>(client_id.size());
  } else {
    current_.request_id_len = static_cast<uint8_t>(shard_.make_request_id(current_.request_id));
  }

  route_match local;
  const route_match* mp = matched ? matched : &(local = match_route(req.method, req.path));
  if ((mp->route == route_id::dashboard || mp->route == route_id::dashboard_ops) &&
      !shard_.config().dashboard) {
    local = route_match();  // without --dashboard: an unknown path, whatever the method
    local.status = 404;
    mp = &local;
  }
  const route_match& m = *mp;
  current_.route = m.route;
  current_.key = nullptr;
  token_.reset();
  access_begin(&req, wire_bytes);
  current_.rate_headers = false;
  // What this request is admitted under, even if a reload comes: the snapshot its admission
  // (its key) was decided with at the head.
  rules_ = ticket_ && ticket_->rules ? std::move(ticket_->rules) : shard_.rules();
  const cors_policy& cors = rules_->cors;
  current_.allow_origin = cors.configured() ? cors.allow_origin(req.find("origin")) : "";
  if (req.method == http1::method::options && m.status == 405) {
    reset_ticket();  // preflights are not admitted (prepare_admission took nothing)
    answer_preflight(req, m.allow);
    return;
  }
  if (!admit(req)) return;
  if (shard_.draining() && refused_while_draining(m.route)) return;
  if (m.status == 404) {
    respond_error(
        404, "Invalid URL (" + std::string(req.method_name) + " " + std::string(req.path) + ")");
    return;
  }
  if (m.status == 405) {
    respond_error(405,
                  "Method " + std::string(req.method_name) + " is not allowed for " +
                      std::string(req.path) + " (allowed: " + std::string(m.allow) + ")",
                  "invalid_request_error", {}, "method_not_allowed", {{"Allow", m.allow}});
    return;
  }
  request_context ctx(shard_, *this, req, body, body_capacity, m);
  if (m.handler(ctx) == handler_result::async) {
    // An asynchronous handler may still have answered at once (an early error): then there is
    // nothing to wait for.
    async_ = phase_ == phase::handling;
  } else {
    RC_ASSERT(phase_ != phase::handling);  // a synchronous handler must have answered
  }
}

void connection::answer_preflight(const http1::request& req, std::string_view allow) {
  if (current_.allow_origin.empty()) {
    ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::origin)];
    respond_error(403, "This origin is not allowed to call this server (see --cors-origin)",
                  "invalid_request_error", {}, "origin_not_allowed");
    return;
  }
  // Browsers' SDK clients send their own headers (x-stainless-*, openai-beta): echo what the
  // preflight asks for, so any header may be sent by an allowed origin.
  std::string_view asked = req.find("access-control-request-headers");
  std::string methods = std::string(allow) + ", OPTIONS";
  respond(204, {}, {},
          {{"Access-Control-Allow-Methods", methods},
           {"Access-Control-Allow-Headers",
            asked.empty() ? std::string_view("authorization, content-type, x-api-key") : asked},
           {"Access-Control-Max-Age", "600"}});
}

void connection::write_common_headers(http1::response_writer& w) {
  if (!current_.allow_origin.empty()) {
    w.header("Access-Control-Allow-Origin", current_.allow_origin);
    w.header("Vary", "Origin");
    w.header("Access-Control-Expose-Headers",
             "x-request-id, retry-after, retry-after-ms, x-ratelimit-limit-requests, "
             "x-ratelimit-remaining-requests, x-ratelimit-reset-requests");
  }
  if (current_.rate_headers) {
    w.header("x-ratelimit-limit-requests", current_.rate_limit);
    w.header("x-ratelimit-remaining-requests", current_.rate_remaining);
    w.header("x-ratelimit-reset-requests", format_reset(current_.rate_reset_ms));
  }
}

void connection::reject(http1::error e, size_t wire_bytes) {
  auto slot = static_cast<size_t>(e);
  if (slot < parse_error_slots) ++shard_.metrics().parse_errors[slot];
  // The stream can't be trusted past a malformed request: answer and close.
  begin_error_response();
  access_begin(nullptr, wire_bytes);
  respond_error(http1::status_of(e), parse_error_message(e, shard_.config()),
                "invalid_request_error", {}, http1::name_of(e));
}

void connection::begin_error_response() {
  phase_ = phase::handling;
  current_.route = route_id::unmatched;
  current_.version = http1::version::http_1_1;
  current_.keep_alive = false;
  current_.head = false;
  current_.start_ns = monotonic_ns();
  current_.request_id_len = static_cast<uint8_t>(shard_.make_request_id(current_.request_id));
  current_.allow_origin = {};
  current_.rate_headers = false;
  reset_ticket();
  current_.key = nullptr;
}

// ---- output ----

void connection::respond(int status, std::string_view content_type, std::string_view body,
                         header_list headers) {
  RC_ASSERT(phase_ == phase::handling);
  if (!answering_ && !deferred_.empty()) hold_answer();
  byte_buffer& o = answer_out();
  if (o.capacity() == 0) o.reserve(512 + body.size());
  write_response_head(status, content_type, headers, body, body.size());
  finish_request(status);
}

void connection::respond_parts(int status, std::string_view content_type,
                               std::vector<shared_buffer>&& parts) {
  RC_ASSERT(phase_ == phase::handling);
  if (!answering_ && !deferred_.empty()) hold_answer();
  size_t length = 0;
  for (const shared_buffer& p : parts) length += p.size();
  write_response_head(status, content_type, {}, {}, length);
  if (render_to_) {
    if (!current_.head)
      for (const shared_buffer& p : parts) render_to_->append(p.view());
  } else if (!current_.head) {
    for (shared_buffer& p : parts) {
      auto n = static_cast<uint32_t>(p.size());
      append_shared(std::move(p), 0, n);
    }
  }
  finish_request(status);
}

void connection::write_response_head(int status, std::string_view content_type,
                                     header_list headers, std::string_view body, size_t length) {
  http1::response_writer w(answer_out(), shard_.date());
  w.start(status);
  // Content types are the server's constants; the request id was checked on the way in.
  if (!content_type.empty()) w.header_trusted("Content-Type", content_type);
  for (const auto& [name, value] : headers) w.header(name, value);
  w.header_trusted("x-request-id", std::string_view(current_.request_id, current_.request_id_len));
  write_common_headers(w);
  if (!current_.keep_alive) {
    w.connection(http1::connection_header::close);
  } else if (current_.version == http1::version::http_1_0) {
    w.connection(http1::connection_header::keep_alive);
  }
  if (status == 204 || status == 304) {
    w.end_head_no_body();  // RFC 9110 §8.6: no Content-Length on 204
  } else if (current_.head || body.size() != length) {
    w.end_with_length(length);  // a HEAD request, or the body follows in parts
  } else {
    w.end_with_body(body);
  }
}

void connection::respond_error(int status, std::string_view message, std::string_view type,
                               std::string_view param, std::string_view code, header_list headers) {
  byte_buffer body;
  write_error_body(body, message, type, param, code);
  respond(status, "application/json", body.view(), headers);
}

uint64_t connection::count_request(int status) {
  auto& m = shard_.metrics();
  ++m.requests[static_cast<size_t>(current_.route)][status_slot(status)];
  uint64_t now = monotonic_ns();
  m.request_latency.observe_us((now - current_.start_ns) / 1000);
  ++requests_served_;
  return now;
}

void connection::finish_request(int status) {
  uint64_t now = count_request(status);
  access_end(status, now);
  if (answering_) {
    // A deferred answer: leave_deferred() writes it in its turn.
    if (!current_.keep_alive) close_after_answers_ = true;
    phase_ = phase::idle;
    return;
  }
  if (render_to_) {
    // Held behind deferred answers: written after them; parsing goes on once they are.
    render_to_ = nullptr;
    if (!current_.keep_alive) close_after_answers_ = true;
    async_ = false;
    phase_ = phase::idle;
    return;
  }
  complete_request();
}

void connection::complete_request() {
  flush();
  bool was_async = async_;
  async_ = false;
  if (!current_.keep_alive || (eof_ && input_empty())) {
    phase_ = phase::closing;
    close_after_flush(shard_.config().linger_ms);
    update_timer();
    return;
  }
  phase_ = phase::idle;
  if (was_async) {
    // Parse what was pipelined behind this response, in a later turn: the caller may be in the
    // middle of another connection's request.
    uint64_t id = id_;
    shard_.loop().post(shard_.id(), [id] {
      if (auto* c = shard_server::current()->find_connection(id)) c->resume_input();
    });
  }
  if (!in_process_) update_timer();
}

void connection::resume_input() {
  // Reading: a request waited behind deferred answers (connection_deferred.cc).
  if ((phase_ != phase::idle && phase_ != phase::reading) || async_ || !deferred_.empty()) return;
  if (!input_empty()) {
    if (phase_ == phase::idle) {
      phase_ = phase::reading;
      http_->request_started_ms = shard_.loop().now_ms();
    }
    size_t used = process(http_->in.data(), http_->in.size(), http_->in.capacity());
    http_->in.consume(used);
    http_->in.release_if_empty();
    hand_over_to_websocket();  // a pipelined upgrade
  }
  const auto& cfg = shard_.config();
  if (input_paused_ && !async_ && !over_output_limit() &&
      input_size() <= cfg.header_bytes_max + cfg.body_bytes_max) {
    input_paused_ = false;
    resume_receiving();
  }
  account_inbound();
  update_timer();
}

bool connection::over_output_limit() const {
  return queued_bytes() > shard_.config().output_bytes_max;
}

void connection::on_drained() {
  if (input_paused_) resume_input();
  update_timer();
}

// ---- end of life ----

void connection::on_eof(int err) {
  eof_ = true;
  if (mode_ != mode::http || (phase_ == phase::handling && !producers_.empty())) {
    // A stream's reader left, or the client of a request still being generated did (or the
    // socket failed): stop the work at once and close. The handler tells its producers first.
    note_close_reason(close_reason::client_closed);  // a reset too: the client left
    if (ws_) ws_->on_peer_gone();
    close_stream_producers();
    phase_ = phase::closing;
    abort();
    return;
  }
  if (err == 0 && deferred_.empty() && phase_ == phase::idle && !input_empty() && !async_) {
    // Requests wait in the input for a resume_input posted for the next turn (behind an answer
    // just written): parse them now, so a complete one is answered before the connection closes.
    resume_input();
    if (phase_ == phase::closing) return;
  }
  if (err != 0 || (deferred_.empty() && (phase_ == phase::idle || (phase_ == phase::reading &&
                                                                     !waiting_admission())))) {
    // A failed connection, or a peer that finished sending between requests or in the middle of
    // one (which can never complete): nothing more to answer.
    phase_ = phase::closing;
    if (err != 0) {
      abort();
    } else {
      close_after_flush(shard_.config().linger_ms);
    }
    update_timer();
    return;
  }
  // A response is pending, or a complete request waits for its admission (on_rate_answer): answer
  // it (and what was pipelined before the end), then close.
}

void connection::on_closed() {
  shard_.inbound().update(inbound_held_, 0);
  if (ws_) ws_->on_peer_gone();
  close_stream_producers();
  access_closed();
  if (ring_) {
    ring_->close();
    shard_.release_ring(std::move(ring_));
  }
  protocol p = mode_ == mode::ws    ? protocol::ws
               : mode_ == mode::sse ? protocol::sse
                                    : protocol::http;
  --shard_.metrics().connections_open[static_cast<size_t>(p)];
  shard_.metrics().bytes_out += bytes_sent();
  shard_.metrics().bytes_in += bytes_received();
  shard_.loop().cancel_timer(timer_);
  shard_.on_connection_closed(*this);
  delete this;
}

// ---- timers ----

void connection::update_timer() {
  reactor& r = shard_.loop();
  const auto& cfg = shard_.config();
  uint64_t now = r.now_ms();
  if (phase_ == phase::closing) {
    deadline_ms_ = no_deadline;
    r.cancel_timer(timer_);
    return;
  }
  if (mode_ == mode::ws) {
    deadline_ms_ = ws_->next_timer_ms();
  } else if (mode_ == mode::sse) {
    deadline_ms_ = last_send_ms_ + cfg.heartbeat_ms;
  } else if (queued_bytes() > 0) {
    deadline_ms_ = now + cfg.write_timeout_ms;
  } else if (!deferred_.empty()) {
    // Deferred answers come from another shard in a mailbox round trip; one lost to a refused
    // post (topics_outbox.cc) would never come: bounded like an idle connection.
    deadline_ms_ = now + cfg.idle_timeout_ms;
  } else if (phase_ == phase::reading) {
    deadline_ms_ = http_->request_started_ms + cfg.header_timeout_ms;
  } else if (phase_ == phase::idle) {
    deadline_ms_ = now + cfg.idle_timeout_ms;
  } else {
    deadline_ms_ = no_deadline;  // an asynchronous handler bounds its own wait
    return;                      // (an armed timer fires, finds no deadline, and stops)
  }
  r.arm_by_ms(timer_, deadline_ms_);
}

void connection::on_timer() {
  auto& m = shard_.metrics();
  if (phase_ == phase::closing || deadline_ms_ == no_deadline) return;
  if (uint64_t now = shard_.loop().now_ms(); now < deadline_ms_) {
    // Armed for an earlier deadline that has since moved (see update_timer): wait for this one.
    shard_.loop().arm_at_ms(timer_, deadline_ms_);
    return;
  }
  if (mode_ != mode::http) {
    on_stream_timer();
    return;
  }
  if (queued_bytes() > 0) {
    ++m.timeouts[static_cast<size_t>(timeout_kind::write)];
    note_close_reason(close_reason::timeout);
    phase_ = phase::closing;
    abort();
    return;
  }
  if (!deferred_.empty()) {
    // An answer from another shard never came: nothing can be written in its place in order.
    ++m.timeouts[static_cast<size_t>(timeout_kind::idle)];
    note_close_reason(close_reason::timeout);
    phase_ = phase::closing;
    abort();
    return;
  }
  if (phase_ == phase::reading) {
    ++m.timeouts[static_cast<size_t>(timeout_kind::header)];
    if (http_->in.empty() && requests_served_ == 0 && bytes_received() == 0) {
      // Connected and never said a word: there is nobody to answer.
      phase_ = phase::closing;
      close_after_flush(0);
      return;
    }
    phase_ = phase::handling;
    current_.route = route_id::unmatched;
    current_.version = http1::version::http_1_1;
    current_.keep_alive = false;
    current_.head = false;
    current_.start_ns = monotonic_ns();
    current_.request_id_len = static_cast<uint8_t>(shard_.make_request_id(current_.request_id));
    current_.allow_origin = {};
    current_.rate_headers = false;
    current_.key = nullptr;
    access_begin(nullptr, http_->in.size());
    note_close_reason(close_reason::timeout);
    respond_error(408, "The request was not received in time", "invalid_request_error", {},
                  "request_timeout");
    return;
  }
  if (phase_ == phase::idle) {
    ++m.timeouts[static_cast<size_t>(timeout_kind::idle)];
    phase_ = phase::closing;
    close_after_flush(0);
  }
}

}  // namespace rc::server
