// Worker failures (worker_errors.h): the one table from JSON-RPC errors and supervision events to
// what the client sees.
#include "server/worker_errors.h"

#include <array>
#include <string>

#include "proto/json_reader.h"

namespace rc::server {

namespace {

// Retry-After for "try again shortly" answers that name no time of their own.
constexpr uint32_t default_retry_after_ms = 1000;
// The longest Retry-After a worker may ask for (a day): beyond it the value is not believed.
constexpr uint64_t retry_after_ms_max = 86'400'000;

struct row {
  std::string_view code;
  uint16_t status;
  std::string_view type;
  uint32_t retry_after_ms;
  bool retryable;
  std::string_view default_message;
};

constexpr std::array<row, 9> table{{
    {"invalid_request", 400, "invalid_request_error", 0, false, "The worker rejected the request."},
    {"model_not_found", 404, "invalid_request_error", 0, false,
     "The worker does not serve this model."},
    {"worker_overloaded", 503, "server_error", default_retry_after_ms, true,
     "The worker is overloaded."},
    {"worker_timeout", 504, "server_error", 0, false, "The worker did not answer in time."},
    {"worker_error", 502, "server_error", 0, false, "The worker failed."},
    {"worker_protocol_error", 502, "server_error", 0, false,
     "The worker broke the JSON-RPC protocol."},
    {"worker_crashed", 502, "server_error", 0, true, "The worker stopped while answering."},
    {"worker_unavailable", 503, "server_error", default_retry_after_ms, false,
     "No worker is available."},
    {"worker_busy", 503, "server_error", default_retry_after_ms, false,
     "Every worker is busy and the wait queue is full."},
}};

const row& find_row(std::string_view code) {
  for (const row& r : table) {
    if (r.code == code) return r;
  }
  return table[4];  // worker_error
}

std::string_view code_of_rpc(int64_t code) {
  switch (code) {
    case -32602:
      return "invalid_request";
    case -32004:
      return "model_not_found";
    case -32001:
      return "worker_overloaded";
    case -32002:
      return "worker_timeout";
    case -32700:
    case -32600:
    case -32601:
      return "worker_protocol_error";
    default:
      return "worker_error";
  }
}

// Applies the overrides of error.data (an object; anything else is ignored).
void apply_data(worker_failure& f, std::string_view data_json) {
  if (data_json.empty()) return;
  thread_local json::parser parser(
      json::parse_limits{.document_bytes_max = 1u << 20, .depth_max = 32});
  json::parse_result r = parser.parse(data_json);
  if (!r.ok() || !r.root.is_object()) return;
  json::value v = r.root.find("status");
  if (v && v.kind() == json::kind::int64 && v.get_int64() >= 400 && v.get_int64() <= 599) {
    f.http_status = static_cast<uint16_t>(v.get_int64());
  }
  if ((v = r.root.find("type")) && v.is_string() && !v.get_string().empty()) {
    f.type = v.get_string();
  }
  if ((v = r.root.find("code")) && v.is_string() && !v.get_string().empty()) {
    f.code = v.get_string();
  }
  if ((v = r.root.find("param")) && v.is_string()) f.param = v.get_string();
  v = r.root.find("retry_after_ms");
  if (v && v.kind() == json::kind::int64 && v.get_int64() >= 0 &&
      static_cast<uint64_t>(v.get_int64()) <= retry_after_ms_max) {
    f.retry_after_ms = static_cast<uint32_t>(v.get_int64());
  }
  if ((v = r.root.find("retryable")) && v.kind() == json::kind::boolean) {
    f.retryable = v.get_bool();
  }
}

}  // namespace

worker_failure worker_failure_of(std::string_view code, std::string message) {
  const row& r = find_row(code);
  worker_failure f{r.status, std::string(code), std::string(r.type), std::move(message), {}};
  if (f.message.empty()) f.message = r.default_message;
  f.retry_after_ms = r.retry_after_ms;
  f.retryable = r.retryable;
  return f;
}

worker_failure failure_from_rpc_error(int64_t code, std::string_view message,
                                      std::string_view data_json) {
  std::string text(message);
  if (text.empty()) text = "The worker answered error " + std::to_string(code) + ".";
  worker_failure f = worker_failure_of(code_of_rpc(code), std::move(text));
  apply_data(f, data_json);
  return f;
}

owned_event to_error_event(const worker_failure& f) {
  owned_event e = error_event(f.code, f.message, f.http_status, f.type, f.param, f.retry_after_ms);
  // The engine's retry decision (jsonrpc_engine.h); it clears the mark before the client sees it.
  if (f.retryable) e.raw_name = "retryable";
  return e;
}

}  // namespace rc::server
