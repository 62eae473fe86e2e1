#include "server/worker_errors.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::server {
namespace {

struct expected_row {
  uint16_t status;
  std::string_view code, type;
  uint32_t retry_after_ms;
  bool retryable;
};

void expect_row(const worker_failure& f, const expected_row& r) {
  EXPECT_EQ(f.http_status, r.status) << r.code;
  EXPECT_EQ(f.code, r.code);
  EXPECT_EQ(f.type, r.type) << r.code;
  EXPECT_EQ(f.retry_after_ms, r.retry_after_ms) << r.code;
  EXPECT_EQ(f.retryable, r.retryable) << r.code;
  EXPECT_FALSE(f.message.empty()) << r.code;
}

TEST(WorkerErrors, RpcInvalidParams) {
  worker_failure f = failure_from_rpc_error(-32602, "max_tokens must be positive", "");
  expect_row(f, {400, "invalid_request", "invalid_request_error", 0, false});
  EXPECT_EQ(f.message, "max_tokens must be positive");
  // data.code names the OpenAI code instead; data.param the parameter.
  f = failure_from_rpc_error(-32602, "m", R"({"code":"invalid_value","param":"max_tokens"})");
  EXPECT_EQ(f.code, "invalid_value");
  EXPECT_EQ(f.param, "max_tokens");
  EXPECT_EQ(f.http_status, 400);
}

TEST(WorkerErrors, RpcModelNotFound) {
  expect_row(failure_from_rpc_error(-32004, "no such model", ""),
             {404, "model_not_found", "invalid_request_error", 0, false});
}

TEST(WorkerErrors, RpcOverloaded) {
  expect_row(failure_from_rpc_error(-32001, "busy", ""),
             {503, "worker_overloaded", "server_error", 1000, true});
  worker_failure f = failure_from_rpc_error(-32001, "busy", R"({"retry_after_ms":250})");
  EXPECT_EQ(f.retry_after_ms, 250u);
  EXPECT_TRUE(f.retryable);
}

TEST(WorkerErrors, RpcTimeout) {
  expect_row(failure_from_rpc_error(-32002, "too slow", ""),
             {504, "worker_timeout", "server_error", 0, false});
}

TEST(WorkerErrors, RpcInternalAndOtherCodes) {
  for (int64_t code : {-32603, -32000, -32003, 1, 0, 42000}) {
    expect_row(failure_from_rpc_error(code, "x", ""),
               {502, "worker_error", "server_error", 0, false});
  }
}

TEST(WorkerErrors, RpcProtocolCodes) {
  for (int64_t code : {-32700, -32600, -32601}) {
    expect_row(failure_from_rpc_error(code, "x", ""),
               {502, "worker_protocol_error", "server_error", 0, false});
  }
}

TEST(WorkerErrors, EmptyMessageGetsADefault) {
  EXPECT_EQ(failure_from_rpc_error(-32603, "", "").message, "The worker answered error -32603.");
}

TEST(WorkerErrors, DataOverridesEveryField) {
  worker_failure f = failure_from_rpc_error(
      -32603, "quota",
      R"({"status":429,"type":"rate_limit_error","code":"rate_limited","param":"p",)"
      R"("retry_after_ms":3000,"retryable":true})");
  expect_row(f, {429, "rate_limited", "rate_limit_error", 3000, true});
  EXPECT_EQ(f.param, "p");
  f = failure_from_rpc_error(-32001, "busy", R"({"retryable":false})");
  EXPECT_FALSE(f.retryable);
}

TEST(WorkerErrors, BadDataIsIgnored) {
  for (std::string_view data : {
           R"({"status":200})",
           R"({"status":600})",
           R"({"status":"500"})",
           R"({"status":429.5})",
           R"({"retry_after_ms":-1})",
           R"({"retry_after_ms":1e99})",
           R"({"retry_after_ms":99999999999})",
           R"({"retryable":"yes"})",
           R"({"code":7})",
           R"({"type":""})",
           R"({"code":""})",
           "[1]",
           "\"s\"",
           "not json",
           "{",
       }) {
    worker_failure f = failure_from_rpc_error(-32603, "m", data);
    expect_row(f, {502, "worker_error", "server_error", 0, false});
  }
}

TEST(WorkerErrors, SupervisionRows) {
  expect_row(worker_failure_of("worker_crashed", "gone"),
             {502, "worker_crashed", "server_error", 0, true});
  expect_row(worker_failure_of("worker_protocol_error", ""),
             {502, "worker_protocol_error", "server_error", 0, false});
  expect_row(worker_failure_of("worker_timeout", ""),
             {504, "worker_timeout", "server_error", 0, false});
  expect_row(worker_failure_of("worker_unavailable", ""),
             {503, "worker_unavailable", "server_error", 1000, false});
  expect_row(worker_failure_of("worker_busy", ""),
             {503, "worker_busy", "server_error", 1000, false});
  expect_row(worker_failure_of("worker_overloaded", ""),
             {503, "worker_overloaded", "server_error", 1000, true});
  expect_row(worker_failure_of("worker_error", ""),
             {502, "worker_error", "server_error", 0, false});
  // Unknown codes keep their name and map like worker_error.
  expect_row(worker_failure_of("slow_consumer", "too slow"),
             {502, "slow_consumer", "server_error", 0, false});
  EXPECT_EQ(worker_failure_of("worker_crashed", "gone").message, "gone");
}

TEST(WorkerErrors, ErrorEventCarriesEveryField) {
  worker_failure f = failure_from_rpc_error(-32001, "busy", R"({"param":"n","retry_after_ms":5})");
  owned_event o = to_error_event(f);
  engine_event e = o.view();
  EXPECT_EQ(e.type, event_type::error);
  EXPECT_EQ(e.http_status, 503);
  EXPECT_EQ(e.error_code, "worker_overloaded");
  EXPECT_EQ(e.error_type, "server_error");
  EXPECT_EQ(e.error_message, "busy");
  EXPECT_EQ(e.error_param, "n");
  EXPECT_EQ(e.retry_after_ms, 5u);
}

}  // namespace
}  // namespace rc::server
