// One generation against an openai upstream: attempts and retries, the answer decoded as it
// arrives, events queued and delivered with backpressure (see openai_call.h).
#include "openai_call.h"

#include <algorithm>
#include <ctime>

#include "proto/json_splice.h"
#include "proto/openai_upstream.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// The most of a non-2xx answer kept for its error envelope.
constexpr size_t error_body_bytes_max = 64 * 1024;
// The most of a non-streamed answer (a whole completion or response object).
constexpr size_t whole_body_bytes_max = 16u << 20;
// After [DONE] or a terminal Responses event, how long the body's end may take before the call
// finishes anyway (the connection is then closed rather than reused).
constexpr uint64_t end_grace_ms = 200;

}  // namespace

upstream_error_kind error_kind_of(client_error e) {
  switch (e) {
    case client_error::connect_failed: return upstream_error_kind::connect_failed;
    case client_error::reset: return upstream_error_kind::reset;
    case client_error::timeout_connect: return upstream_error_kind::timeout_connect;
    case client_error::timeout_first_byte: return upstream_error_kind::timeout_first_byte;
    case client_error::timeout_idle: return upstream_error_kind::timeout_idle;
    case client_error::timeout_total: return upstream_error_kind::timeout_total;
    case client_error::tls: return upstream_error_kind::tls;
    case client_error::pool_exhausted: return upstream_error_kind::pool_exhausted;
    case client_error::protocol:
    case client_error::none: break;
  }
  return upstream_error_kind::protocol;
}

upstream_error_kind error_kind_of_status(int status) {
  if (status == 401 || status == 403) return upstream_error_kind::auth;
  if (status == 429) return upstream_error_kind::http_429;
  return status >= 500 ? upstream_error_kind::http_5xx : upstream_error_kind::http_4xx;
}

openai_call::openai_call(openai_engine& e, const generation_request& req, engine_sink& sink)
    : engine_(e),
      sink_(sink),
      client_model_(req.model),
      request_id_(req.original.request_id),
      choices_(std::max<uint32_t>(req.choices, 1)) {
  timer_.bind<openai_call, &openai_call::on_timer>(this);
  const upstream_config& cfg = e.config();
  start_ms_ = e.shard().loop().now_ms();
  uint32_t window = cfg.total_timeout_ms ? cfg.total_timeout_ms : cfg.first_byte_timeout_ms;
  retry_deadline_ms_ = start_ms_ + window;
  if (!http1::field_text_ok(request_id_)) request_id_.clear();
  json::parser& parser = e.parser();
  starting_ = true;  // events wait for the loop: never delivered from inside generate()
  if (auto f = prepare_upstream_body(req, cfg.api, e.upstream_model(req.model), parser, body_)) {
    fail(std::move(*f), upstream_error_kind::count);
  } else {
    body_bytes_ = shared_buffer::copy_of(body_.text);
    start_attempt();
  }
  starting_ = false;
}

openai_call::~openai_call() {
  engine_.shard().loop().cancel_timer(timer_);
  handle_.reset();  // aborts the upstream request; its connection is closed, not reused
  if (verdict_pending_) engine_.endpoints().on_abandoned(endpoint_);
  engine_.update_gauges();
}

void openai_call::arm(timer_use use, uint64_t delay_ms) {
  engine_.shard().loop().cancel_timer(timer_);
  timer_use_ = use;
  engine_.shard().loop().arm_after_ms(timer_, delay_ms);
}

void openai_call::on_timer() {
  timer_use use = std::exchange(timer_use_, timer_use::none);
  switch (use) {
    case timer_use::retry:
      start_attempt();
      break;
    case timer_use::drain:
      drain();
      break;
    case timer_use::grace:
      if (phase_ != phase::over) {
        handle_.reset();
        finish_ok();
      }
      break;
    case timer_use::none:
      break;
  }
}

void openai_call::verdict(bool ok) {
  if (!verdict_pending_) return;
  verdict_pending_ = false;
  if (ok) {
    engine_.endpoints().on_success(endpoint_);
  } else {
    engine_.endpoints().on_failure(endpoint_, engine_.shard().loop().now_ms());
  }
}

void openai_call::start_attempt() {
  int ep = engine_.pick(endpoint_);
  if (ep < 0) {
    upstream_failure f = failure_from_transport(client_error::connect_failed, engine_.config().name,
                                                "every endpoint's circuit breaker is open");
    uint64_t wait = engine_.endpoints().retry_after_ms(engine_.shard().loop().now_ms());
    f.retry_after_ms = static_cast<uint32_t>(std::clamp<uint64_t>(wait, 1000, UINT32_MAX));
    fail(std::move(f), upstream_error_kind::no_endpoint);
    return;
  }
  endpoint_ = ep;
  verdict_pending_ = true;
  ++attempts_;
  upstream_metrics& m = engine_.metrics();
  ++m.requests;
  if (attempts_ > 1) {
    ++m.retries;
    engine_.endpoints().note_retry(ep);
  }
  const upstream_config& cfg = engine_.config();
  http_request req;
  req.method = "POST";
  req.target = cfg.endpoints[static_cast<size_t>(ep)].base_path + (body_.wire == api_kind::chat ? "/chat/completions" : "/responses");
  req.headers = engine_.base_headers();
  req.headers.emplace_back("content-type", "application/json");
  req.headers.emplace_back("accept", body_.stream ? "text/event-stream" : "application/json");
  if (!request_id_.empty()) req.headers.emplace_back("x-request-id", request_id_);
  req.body = body_bytes_;
  req.timeouts = {.connect_ms = cfg.connect_timeout_ms,
                  .first_byte_ms = cfg.first_byte_timeout_ms,
                  .idle_ms = cfg.idle_timeout_ms,
                  .total_ms = cfg.total_timeout_ms};
  phase_ = phase::waiting;
  status_ = 0;
  retry_after_ms_.reset();
  error_body_.clear();
  whole_.clear();
  sse_.restart();
  got_response_bytes_ = false;
  grace_armed_ = false;
  handle_ = engine_.client().start(engine_.endpoints().pool(ep), std::move(req), *this);
  engine_.update_gauges();
}

// ---- the answer ----

void openai_call::on_response_head(const http1::response& head) {
  status_ = head.status;
  got_response_bytes_ = true;
  retry_after_ms_ = retry_after_of(head, std::time(nullptr));
  if (status_ < 200 || status_ >= 300) {
    phase_ = phase::error_body;
    return;
  }
  verdict(true);
  std::string_view type = head.find("content-type");
  phase_ = type.substr(0, 17) == "text/event-stream" ? phase::sse : phase::whole;
}

void openai_call::on_response_body(std::string_view bytes) {
  uint64_t t0 = engine_.shard().loop().now_ns();
  switch (phase_) {
    case phase::error_body:
      error_body_.append(bytes.substr(0, error_body_bytes_max - std::min(error_body_bytes_max, error_body_.size())));
      if (error_body_.size() >= error_body_bytes_max) {
        // The rest is not wanted: decide from what was kept (the connection is closed).
        handle_.reset();
        on_response_end();
      }
      return;
    case phase::whole:
      if (whole_.size() + bytes.size() > whole_body_bytes_max) {
        fail(protocol_failure("The upstream's answer is larger than " +
                              std::to_string(whole_body_bytes_max) + " bytes."),
             upstream_error_kind::protocol);
        return;
      }
      whole_.append(bytes);
      return;
    case phase::sse:
      break;
    default:
      return;
  }
  bool any = false;
  while (phase_ == phase::sse) {
    sse::decoder::step s = sse_.next(bytes);
    if (s == sse::decoder::step::need_more) break;
    if (s == sse::decoder::step::error) {
      fail(protocol_failure(sse_.error() == sse::decode_error::line_too_long
                                ? "The upstream sent an oversized line."
                                : "The upstream sent an oversized event."),
           upstream_error_kind::protocol);
      return;
    }
    any = true;
    on_sse_event(sse_.current().type, sse_.current().data);
  }
  if (phase_ == phase::over) return;
  if (upstream_done_ && phase_ == phase::sse && !grace_armed_) {  // once: later bytes don't extend it
    grace_armed_ = true;
    arm(timer_use::grace, end_grace_ms);
  }
  if (any) {
    drain();
    engine_.metrics().added_latency.observe_us((engine_.shard().loop().now_ns() - t0) / 1000);
  }
}

void openai_call::on_sse_event(std::string_view name, std::string_view data) {
  if (upstream_done_) return;  // nothing counts after the end
  if (body_.wire == api_kind::chat && data == "[DONE]") {
    upstream_done_ = true;
    return;
  }
  json::parse_result r = engine_.parser().parse(data);
  if (!r.ok()) {
    fail(protocol_failure("The upstream sent an event that is not JSON."), upstream_error_kind::protocol);
    return;
  }
  if (body_.wire == api_kind::chat) {
    on_chat_value(data, r.root);
  } else {
    on_responses_value(data, name, r.root);
  }
}

void openai_call::on_chat_value(std::string_view data, const json::value& root) {
  decoded_.clear();
  chat_.decode(root, decoded_);
  if (bad_choice(decoded_)) return;
  for (const auto& e : decoded_) saw_finish_ |= e.type == openai::stream_event_type::done;
  if (!body_.passthrough) {
    push_decoded(decoded_);
    return;
  }
  for (auto& e : decoded_) {
    if (e.type != openai::stream_event_type::error) continue;
    std::vector<openai::stream_event> only{std::move(e)};
    push_decoded(only);
    return;
  }
  // The usage chunk (no choices) goes to clients that asked for it; ringcast asked for itself.
  if (!chat_.last_had_choices() && root.find("usage") && !body_.client_include_usage) return;
  // So do the "usage": null members of the other chunks: without them, as from the upstream.
  if (!body_.client_include_usage && data.find("\"usage\"") != std::string_view::npos) {
    unasked_.clear();
    if (json::remove_member(data, "usage", "null", unasked_)) data = unasked_.view();
  }
  push_raw(data, {});
}

void openai_call::on_responses_value(std::string_view data, std::string_view name,
                                     const json::value& root) {
  decoded_.clear();
  responses_.decode_event(root, decoded_);
  if (responses_.finished()) upstream_done_ = true;
  bool failed = std::any_of(decoded_.begin(), decoded_.end(), [](const openai::stream_event& e) {
    return e.type == openai::stream_event_type::error;
  });
  // An upstream error before anything reached the client becomes the client's HTTP error
  // (lazy start); after that a passed-through stream relays the upstream's own `error` or
  // `response.failed` event and ends with it.
  if (!body_.passthrough || (failed && !committed_)) {
    push_decoded(decoded_);
    return;
  }
  if (failed) {
    engine_.count_error(upstream_error_kind::stream);
    upstream_done_ = true;
  }
  json::value type = root.is_object() ? root.find("type") : json::value();
  if (type && type.is_string()) name = type.get_string();
  // The name goes out as the client's `event:` line: a CR or LF in it would forge events.
  if (!std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
      })) {
    fail(protocol_failure("The upstream sent an event type that is not a name."), upstream_error_kind::protocol);
    return;
  }
  push_raw(data, name);
}

void openai_call::on_response_end() {
  engine_.update_gauges();
  switch (phase_) {
    case phase::error_body: {
      std::optional<uint32_t> wait;
      if (retry_after_ms_) wait = static_cast<uint32_t>(std::min<uint64_t>(*retry_after_ms_, UINT32_MAX));
      upstream_failure f = failure_from_status(status_, error_body_, wait);
      // A 5xx counts against the endpoint's breaker; a 4xx or 429 is an answer, not an outage.
      verdict(status_ < 500);
      engine_.count_error(error_kind_of_status(status_));
      attempt_result r;
      r.status = status_;
      r.retry_after_ms = retry_after_ms_;
      r.got_response_bytes = true;
      attempt_failed(std::move(f), r);
      return;
    }
    case phase::whole:
      on_whole_body();
      return;
    case phase::sse:
      if (upstream_done_ || (body_.wire == api_kind::chat && saw_finish_)) {
        finish_ok();
        return;
      }
      fail(protocol_failure("The upstream ended the stream before it finished."), upstream_error_kind::stream);
      return;
    default:
      return;
  }
}

void openai_call::on_whole_body() {
  json::parse_result r = engine_.parser().parse(whole_);
  if (!r.ok() || !r.root.is_object()) {
    fail(protocol_failure("The upstream's answer is not a JSON object."), upstream_error_kind::protocol);
    return;
  }
  decoded_.clear();
  if (body_.wire == api_kind::chat) {
    chat_.decode(r.root, decoded_);
  } else {
    responses_.decode_response(r.root, decoded_);
  }
  if (bad_choice(decoded_)) return;
  bool failed = std::any_of(decoded_.begin(), decoded_.end(), [](const openai::stream_event& e) {
    return e.type == openai::stream_event_type::error;
  });
  if (body_.passthrough && !failed) {
    push_raw(whole_, {});
  } else if (push_decoded(decoded_)) {
    return;
  }
  finish_ok();
}

void openai_call::on_response_error(client_error kind, std::string_view message) {
  engine_.update_gauges();
  if (phase_ == phase::over) return;
  if (upstream_done_) {  // the stream had ended; only its tail went missing
    finish_ok();
    return;
  }
  engine_.count_error(error_kind_of(kind));
  if (kind == client_error::pool_exhausted) {
    // Our own pool was full: says nothing about the endpoint's health (no breaker verdict).
    if (std::exchange(verdict_pending_, false)) engine_.endpoints().on_abandoned(endpoint_);
  } else {
    verdict(false);
  }
  attempt_result r;
  r.error = kind;
  r.got_response_bytes = got_response_bytes_;
  attempt_failed(engine_.transport_failure(kind, message), r);
}

// ---- retries and endings ----

void openai_call::attempt_failed(upstream_failure f, const attempt_result& result) {
  attempt_result r = result;
  r.relayed = committed_;
  uint64_t now = engine_.shard().loop().now_ms();
  retry_decision d = engine_.retries().decide(r, attempts_, now, retry_deadline_ms_);
  if (d.retry) {
    phase_ = phase::idle;
    arm(timer_use::retry, d.delay_ms);
    return;
  }
  fail(std::move(f), upstream_error_kind::count);
}

void openai_call::fail(upstream_failure f, upstream_error_kind kind) {
  if (phase_ == phase::over) return;
  if (kind != upstream_error_kind::count) engine_.count_error(kind);
  phase_ = phase::over;
  if (handle_.active()) handle_.reset();  // a broken stream's connection is never reused
  engine_.metrics().duration.observe_us((engine_.shard().loop().now_ms() - start_ms_) * 1000);
  if (committed_) {
    // Mid-stream: the client already has a 200; the status no longer applies.
    f.envelope.clear();
  }
  push(out_event{.type = event_type::error, .error = std::move(f)});
  drain();
}

void openai_call::finish_ok() {
  if (phase_ == phase::over) return;
  phase_ = phase::over;
  engine_.shard().loop().cancel_timer(timer_);
  engine_.metrics().duration.observe_us((engine_.shard().loop().now_ms() - start_ms_) * 1000);
  out_event e{.type = event_type::usage};
  e.usage = body_.wire == api_kind::chat ? chat_.usage() : responses_.usage();
  push(std::move(e));
  drain();
}

}  // namespace rc::server
