#include "server/worker_dialect.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "proto/jsonrpc.h"
#include "server/worker_errors.h"
#include "worker_test_context.h"

namespace rc::server {
namespace {

using test::recording_context;

TEST(WorkerDialect, InterfacesAreAbstractAndImplementable) {
  static_assert(std::is_abstract_v<call_context>);
  static_assert(std::is_abstract_v<worker_call>);
  static_assert(std::is_abstract_v<worker_dialect>);
  recording_context ctx;
  call_context& c = ctx;
  EXPECT_EQ(c.next_id(), 7u);
  c.send("{}");
  EXPECT_EQ(ctx.sent.size(), 1u);
  jsonrpc::message m;
  EXPECT_EQ(m.type, jsonrpc::kind::notification);
  worker_failure f{502, "worker_error", "server_error", "x", {}};
  EXPECT_FALSE(f.retryable);
}

}  // namespace
}  // namespace rc::server
