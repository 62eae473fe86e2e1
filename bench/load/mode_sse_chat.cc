// sse-chat: N keep-alive connections, each running one streaming chat completion at a time
// (POST /v1/chat/completions, "stream": true) in a closed loop: when a stream ends with
// [DONE] and the end of its body, the connection sends the next request at once, so N streams
// stay active. Measured per stream by chat_timing (TTFT overhead, token gaps, jitter). With
// --stagger-ms the connections start their loops spread over that time instead of at once.
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "load/chat_parse.h"
#include "load/chat_timing.h"
#include "load/chat_worker.h"
#include "load/connection.h"
#include "load/env.h"
#include "load/mode.h"

namespace rc::load {
namespace {

class sse_chat_worker;

class sse_chat_conn final : public load_connection {
 public:
  sse_chat_conn(shard_env& env, int fd, sse_chat_worker& w)
      : load_connection(env, fd), worker_(w) {}
  void start() {
    start_receiving();
    mark_ready();
  }
  void send_request(uint64_t now_ns);
  // Its turn to start the loop (chat_worker).
  void go(uint64_t now_ns) { send_request(now_ns); }
  bool busy() const { return clock_.active; }

 private:
  void on_data(const char* data, size_t len) override;
  void on_chunk(chat_chunk c);
  void on_response_end();

  sse_chat_worker& worker_;
  response_reader http_;
  chat_sse_reader sse_;
  stream_clock clock_;
  bool ok_status_ = false;
  bool saw_done_ = false;
};

class sse_chat_worker final : public chat_worker<sse_chat_conn> {
 public:
  explicit sse_chat_worker(shard_env& env) : chat_worker(env) {
    std::string body = chat_timing::request_json(env.opts, true);
    request_ = "POST /v1/chat/completions HTTP/1.1\r\nHost: " + env.opts.host_header +
               "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n";
    for (const auto& h : env.opts.headers) request_ += h + "\r\n";
    request_ += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  const std::string& request() const { return request_; }

 private:
  std::unique_ptr<sse_chat_conn> open(int fd, uint32_t) override {
    auto c = std::make_unique<sse_chat_conn>(env_, fd, *this);
    c->start();
    return c;
  }

  std::string request_;
};

void sse_chat_conn::send_request(uint64_t now_ns) {
  out().append(worker_.request());
  flush();
  worker_.timing().begin(clock_, now_ns);
  ok_status_ = false;
  saw_done_ = false;
  sse_.restart();
}

void sse_chat_conn::on_data(const char* data, size_t len) {
  std::string_view in(data, len), body;
  for (;;) {
    switch (http_.next(in, body)) {
      case response_reader::step::need_more:
        return;
      case response_reader::step::head:
        ok_status_ = http_.status() == 200;
        if (!ok_status_) ++env_.results.errors.status;
        break;
      case response_reader::step::body:
        // An error response's body is JSON, not a stream: it is counted by its status.
        if (ok_status_ && !sse_.feed(body, [this](chat_chunk c) { on_chunk(c); }))
          return fail(conn_failure::protocol);
        if (closed()) return;
        break;
      case response_reader::step::done:
        on_response_end();
        if (closed()) return;
        break;
      case response_reader::step::error:
        return fail(conn_failure::protocol);
    }
  }
}

void sse_chat_conn::on_chunk(chat_chunk c) {
  if (closed()) return;
  error_counts& e = env_.results.errors;
  if (saw_done_) {
    ++e.protocol;  // nothing may follow [DONE]
    return;
  }
  switch (c) {
    case chat_chunk::token:
      worker_.timing().token(clock_, monotonic_ns());
      break;
    case chat_chunk::other:
      break;
    case chat_chunk::done:
      saw_done_ = true;
      break;
    case chat_chunk::error:
      ++e.server_error;
      break;
    case chat_chunk::malformed:
      ++e.protocol;
      break;
  }
}

void sse_chat_conn::on_response_end() {
  if (!clock_.active) return fail(conn_failure::protocol);  // a response nobody asked for
  uint64_t now = monotonic_ns();
  if (ok_status_ && saw_done_) {
    worker_.timing().done(clock_, now);
  } else {
    if (ok_status_) ++env_.results.errors.protocol;  // the stream ended without [DONE]
    clock_.active = false;
  }
  if (worker_.load_on(now)) send_request(now);
}

std::string check(load_options& o) {
  if (o.max_tokens == 0) return "--max-tokens must be at least 1";
  if (o.first_token_ms < 0 || o.tokens_per_s < 0)
    return "--first-token-ms and --tokens-per-s must not be negative";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return o.connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<sse_chat_worker>(env);
}

}  // namespace

constinit const mode_spec sse_chat_mode = {
    .name = "sse-chat",
    .summary = "streaming chat completions over SSE, one per connection (closed loop)",
    .unit = "streams",
    .unit_one = "stream",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
