#include "server/worker_dialect.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "proto/jsonrpc.h"
#include "server/worker_errors.h"

namespace rc::server {
namespace {

// A call_context that records what a call does: the interface must be implementable as frozen.
struct recording_context final : call_context {
  uint64_t next_id() override { return ++last_id; }
  void expect_response(uint64_t id) override { expected.push_back(id); }
  void route_key(std::string_view key) override { keys.emplace_back(key); }
  void send(std::string_view json) override { sent.emplace_back(json); }
  bool emit(const engine_event& e) override {
    events.emplace_back(e);
    return true;
  }
  void finish() override { finished = true; }
  void handshake_done(bool ok, std::string_view, std::vector<std::string> m) override {
    handshake_ok = ok;
    models = std::move(m);
  }
  uint64_t last_id = 0;
  std::vector<uint64_t> expected;
  std::vector<std::string> keys, sent, models;
  std::vector<owned_event> events;
  bool finished = false, handshake_ok = false;
};

TEST(WorkerDialect, InterfacesAreAbstractAndImplementable) {
  static_assert(std::is_abstract_v<call_context>);
  static_assert(std::is_abstract_v<worker_call>);
  static_assert(std::is_abstract_v<worker_dialect>);
  recording_context ctx;
  call_context& c = ctx;
  EXPECT_EQ(c.next_id(), 1u);
  c.send("{}");
  EXPECT_EQ(ctx.sent.size(), 1u);
  jsonrpc::message m;
  EXPECT_EQ(m.type, jsonrpc::kind::notification);
  worker_failure f{502, "worker_error", "server_error", "x", {}};
  EXPECT_FALSE(f.retryable);
}

}  // namespace
}  // namespace rc::server
