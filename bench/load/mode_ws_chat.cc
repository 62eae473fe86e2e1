// ws-chat: N WebSocket connections to /ws, each keeping --streams-per-conn `chat.completion`
// actions in flight (request ids "c<slot>"): when one completes (chat.complete) or fails (an
// `error` event, counted), the slot sends the next at once. Measured per stream by chat_timing
// exactly as sse-chat is, one token per chat.delta event; --stagger-ms as in sse-chat.
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

class ws_chat_worker;

class ws_chat_conn final : public ws_connection {
 public:
  ws_chat_conn(shard_env& env, int fd, uint64_t seed, ws_chat_worker& w);
  // The connection's turn to start: its streams begin now, or as soon as it is open.
  void go(uint64_t now_ns) {
    wanted_ = true;
    if (open()) send_all(now_ns);
  }
  bool busy() const {
    for (const stream_clock& c : slots_)
      if (c.active) return true;
    return false;
  }

 private:
  void on_open() override;
  void on_message(ws_event kind, std::string_view payload) override;
  void send_request(uint32_t slot, uint64_t now_ns);
  void send_all(uint64_t now_ns) {
    for (uint32_t s = 0; s < slots_.size(); ++s) send_request(s, now_ns);
  }

  ws_chat_worker& worker_;
  bool wanted_ = false;
  std::vector<stream_clock> slots_;
  std::string message_;  // the action, rewritten per slot
};

class ws_chat_worker final : public chat_worker<ws_chat_conn> {
 public:
  explicit ws_chat_worker(shard_env& env)
      : chat_worker(env), payload_(chat_timing::request_json(env.opts, false)) {}

  const std::string& payload() const { return payload_; }

 private:
  std::unique_ptr<ws_chat_conn> open(int fd, uint32_t global) override {
    auto c = std::make_unique<ws_chat_conn>(env_, fd, 0x9e3779b97f4a7c15 * (global + 1), *this);
    c->start(env_.opts.ws_path);
    return c;
  }

  std::string payload_;
};

ws_chat_conn::ws_chat_conn(shard_env& env, int fd, uint64_t seed, ws_chat_worker& w)
    : ws_connection(env, fd, seed), worker_(w), slots_(env.opts.streams_per_conn) {}

void ws_chat_conn::send_request(uint32_t slot, uint64_t now_ns) {
  char id[12];
  size_t id_len = write_slot_id(slot, id);
  message_.assign("{\"id\":\"");
  message_.append(id, id_len);
  message_.append("\",\"action\":\"chat.completion\",\"payload\":");
  message_.append(worker_.payload());
  message_.push_back('}');
  send(ws::opcode::text, message_);
  worker_.timing().begin(slots_[slot], now_ns);
}

void ws_chat_conn::on_open() {
  mark_ready();
  uint64_t now = monotonic_ns();
  if (wanted_ && worker_.load_on(now)) send_all(now);  // its turn came before it was open
}

void ws_chat_conn::on_message(ws_event kind, std::string_view payload) {
  error_counts& e = env_.results.errors;
  if (kind != ws_event::text) return fail(conn_failure::protocol);
  ws_chat_event ev = classify_ws_chat(payload);
  if (ev.kind == ws_chat_kind::malformed) return fail(conn_failure::protocol);
  if (ev.kind == ws_chat_kind::flow) {
    if (payload.find("flow.pause") != std::string_view::npos) ++env_.results.streams.flow_pauses;
    return;
  }
  if (ev.slot >= slots_.size() || !slots_[ev.slot].active)
    return fail(conn_failure::protocol);  // an answer to a request nobody made
  stream_clock& c = slots_[ev.slot];
  uint64_t now = monotonic_ns();
  switch (ev.kind) {
    case ws_chat_kind::delta:
      worker_.timing().token(c, now);
      return;
    case ws_chat_kind::complete:
      worker_.timing().done(c, now);
      break;
    case ws_chat_kind::error:
      ++e.server_error;
      c.active = false;
      break;
    default:
      return;  // chat.tool_call and the like: not tokens
  }
  if (worker_.load_on(now)) send_request(ev.slot, now);
}

std::string check(load_options& o) {
  if (o.max_tokens == 0) return "--max-tokens must be at least 1";
  if (o.streams_per_conn == 0 || o.streams_per_conn > 65536)
    return "--streams-per-conn must be 1..65536";
  if (o.first_token_ms < 0 || o.tokens_per_s < 0)
    return "--first-token-ms and --tokens-per-s must not be negative";
  if (o.ws_path.empty() || o.ws_path[0] != '/') return "--ws-path must start with /";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return o.connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<ws_chat_worker>(env);
}

}  // namespace

constinit const mode_spec ws_chat_mode = {
    .name = "ws-chat",
    .summary = "chat.completion actions over WebSocket /ws, --streams-per-conn in flight each",
    .unit = "streams",
    .unit_one = "stream",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
