// ws-echo: N WebSocket connections to /echo (--ws-path), one message in flight on each: a
// message is sent, the echo comes back (checked byte for byte), the next one leaves. Latency is
// the round trip.
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "load/connection.h"
#include "load/env.h"
#include "load/mode.h"

namespace rc::load {
namespace {

class echo_worker;

class echo_conn final : public ws_connection {
 public:
  echo_conn(shard_env& env, int fd, uint64_t seed, echo_worker& w)
      : ws_connection(env, fd, seed), worker_(w) {}
  void send_next(uint64_t now_ns);
  bool waiting() const { return waiting_; }

 private:
  void on_open() override;
  void on_message(ws_event kind, std::string_view payload) override;

  echo_worker& worker_;
  uint64_t sent_at_ = 0;
  bool waiting_ = false;
};

class echo_worker final : public mode_worker {
 public:
  explicit echo_worker(shard_env& env)
      : env_(env),
        payload_(env.opts.message_bytes, 'x'),
        op_(env.opts.binary ? ws::opcode::binary : ws::opcode::text) {
    // A recognisable payload: the echo must come back byte for byte.
    for (size_t i = 0; i < payload_.size(); ++i) payload_[i] = static_cast<char>('a' + i % 26);
  }

  void start() override {
    uint32_t n = env_.share_of(env_.opts.connections);
    conns_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t global = env_.global_number(i);
      env_.connect(global, [this, global](int fd, int) {
        if (fd < 0) return;
        conns_.push_back(
            std::make_unique<echo_conn>(env_, fd, 0x9e3779b97f4a7c15 * (global + 1), *this));
        conns_.back()->start(env_.opts.ws_path);
      });
    }
  }

  void on_running(uint64_t now_ns) override {
    running_ = true;
    for (auto& c : conns_)
      if (c->open() && !c->closed()) c->send_next(now_ns);
  }

  bool drained(uint64_t) override {
    for (auto& c : conns_)
      if (!c->closed() && c->waiting()) return false;
    return true;
  }

  void finish() override {
    env_.finishing = true;
    env_.connects.cancel_all();
    for (auto& c : conns_) c->close();
  }

  bool load_on(uint64_t now_ns) const { return running_ && now_ns < env_.control.window_end_ns(); }
  std::string_view payload() const { return payload_; }
  ws::opcode op() const { return op_; }

 private:
  shard_env& env_;
  std::string payload_;
  ws::opcode op_;
  bool running_ = false;
  std::vector<std::unique_ptr<echo_conn>> conns_;
};

void echo_conn::send_next(uint64_t now_ns) {
  sent_at_ = now_ns;
  waiting_ = true;
  send(worker_.op(), worker_.payload());
}

void echo_conn::on_open() {
  mark_ready();
  uint64_t now = monotonic_ns();
  if (worker_.load_on(now)) send_next(now);  // opened after the load started
}

void echo_conn::on_message(ws_event kind, std::string_view payload) {
  uint64_t now = monotonic_ns();
  if (!waiting_) {
    fail(conn_failure::protocol);  // a message we did not ask for
    return;
  }
  waiting_ = false;
  bool same_kind = (kind == ws_event::binary) == (worker_.op() == ws::opcode::binary);
  if (!same_kind || payload != worker_.payload()) ++env_.results.errors.mismatch;
  env_.record(now, now - sent_at_);
  if (worker_.load_on(now)) send_next(now);
}

std::string check(load_options& o) {
  if (o.message_bytes > (16u << 20)) return "--message-bytes must be at most 16 MiB";
  if (o.ws_path.empty() || o.ws_path[0] != '/') return "--ws-path must start with /";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return o.connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<echo_worker>(env);
}

}  // namespace

constinit const mode_spec ws_echo_mode = {
    .name = "ws-echo",
    .summary = "WebSocket echo round trips on /echo (--ws-path), one in flight per connection",
    .unit = "messages",
    .unit_one = "message",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
