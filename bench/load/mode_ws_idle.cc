// ws-idle: N WebSocket connections (to /ws by default) that stay open and quiet; with
// --server-pid, the report gives the server's RSS growth per connection. Nothing is sent but
// pongs to the server's heartbeat pings; the window only times how long they are held. The
// "completions" are the connections that stayed open through the window.
#include <memory>
#include <string>
#include <vector>

#include "load/connection.h"
#include "load/env.h"
#include "load/mode.h"

namespace rc::load {
namespace {

class idle_conn final : public ws_connection {
 public:
  using ws_connection::ws_connection;

 private:
  void on_open() override { mark_ready(); }
  void on_message(ws_event, std::string_view) override {}
};

class idle_worker final : public mode_worker {
 public:
  explicit idle_worker(shard_env& env) : env_(env) {}

  void start() override {
    uint32_t n = env_.share_of(env_.opts.connections);
    conns_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t global = env_.global_number(i);
      env_.connect(global, [this, global](int fd, int) {
        if (fd < 0) return;
        conns_.push_back(std::make_unique<idle_conn>(env_, fd, 0x9e3779b97f4a7c15 * (global + 1)));
        conns_.back()->start(env_.opts.ws_path);
      });
    }
  }

  void on_running(uint64_t) override {}
  bool drained(uint64_t) override { return true; }

  void finish() override {
    // Every connection still open now held out through the window.
    for (auto& c : conns_) {
      if (!c->open() || c->closed()) continue;
      ++env_.results.ops;
      ++env_.results.ops_total;
    }
    env_.finishing = true;
    env_.connects.cancel_all();
    for (auto& c : conns_) c->close();
  }

 private:
  shard_env& env_;
  std::vector<std::unique_ptr<idle_conn>> conns_;
};

std::string check(load_options& o) {
  if (o.ws_path.empty() || o.ws_path[0] != '/') return "--ws-path must start with /";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return o.connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<idle_worker>(env);
}

}  // namespace

constinit const mode_spec ws_idle_mode = {
    .name = "ws-idle",
    .summary = "idle WebSocket connections held open (server RSS per connection)",
    .unit = "connections",
    .unit_one = "connection",
    .kind = measure::holding,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
