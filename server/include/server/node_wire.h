// node_wire: the bytes of node routing (remote_node.h) — a generation request sent to the node
// that retains its upstream session, and the events coming back — losslessly (every field,
// doubles bit for bit), with the record codec of responses_record.h (record_codec.h).
//
// Request ("RCG" version(1)):
//   upstream model original(api(1) [body] stream include_usage passthrough request_id
//   previous_response_id response_id) conversation(a responses record, responses_record.h, whose
//   response and input are empty) tools: count, then per tool: name description parameters_json
//   [strict] tool_choice(mode(1) function_name raw_json) parallel_tool_calls choices [max_tokens]
//   stop: count, then strings [seed(zigzag)] temperature top_p deadline_in_ms
// The deadline travels as the time left (the nodes' monotonic clocks differ): 0 means none, and
// the receiver sets deadline_ms = its now + the time left.
//
// Event ("RCE" version(1)): type(1) choice text tool_index tool_call_id tool_name finish(1)
//   usage(input output cached reasoning) error_code error_message http_status error_type
//   error_param retry_after_ms raw raw_name raw_api(1)
//
// Malformed input (truncated, a bad magic or version, an enum out of range, bytes after the end,
// longer than the caller's limit) is refused with a reason, like responses records.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/engine.h"
#include "server/owned_event.h"
#include "server/responses_record.h"

namespace rc::server {

inline constexpr uint8_t node_wire_version = 1;

// `now_ms`: the sender's monotonic clock (for the deadline's time left).
void encode_node_request(std::string_view upstream, const generation_request& req,
                         uint64_t now_ms, std::string& out);
// `now_ms`: the receiver's clock. `upstream` and `req` are overwritten.
record_error decode_node_request(std::string_view in, size_t bytes_max, uint64_t now_ms,
                                 std::string& upstream, generation_request& req);

void encode_node_event(const engine_event& e, std::string& out);
record_error decode_node_event(std::string_view in, size_t bytes_max, owned_event& out);

}  // namespace rc::server
