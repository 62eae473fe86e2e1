// responses_record: the bytes a stored response is kept as outside the shard that made it (the
// cluster's key-value bucket rc_responses, responses_cluster.h): the conversation up to and
// including the response's output, the `response` object and its request's input items — what
// responses_store keeps, losslessly (every field, doubles bit for bit).
//
// Layout (all integers little-endian base-128 varints, strings a varint length then the bytes):
//
//   "RCR" version(1 byte, = 1)
//   conversation: count, then per turn: role(1 byte) text
//   response:     id created_at(zigzag) [completed_at] status(1) settings
//                 output: count, then per item: type(1) id status(1) text call_id name arguments
//                 [usage: input output cached reasoning] error_code error_message incomplete_reason
//   input:        count, then per item: type(1) id role(1) text media_parts call_id name arguments
//                 output tool_namespace type_name raw_json
//
// where [x] is a presence byte (0 or 1) then x, and settings are written member by member in
// declaration order (response_settings, openai_responses.h). A value that is not exactly one
// record — truncated, a bad magic or version, an enum out of range, a count larger than the bytes
// left could hold, bytes after the end, or longer than the caller's limit — is refused with a
// reason; nothing is allocated from an untrusted length before it is checked.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proto/openai_responses.h"
#include "server/engine.h"

namespace rc::server {

struct stored_response {
  std::vector<turn> conversation;
  openai::response_object response;
  std::vector<openai::input_item> input;
};

inline constexpr uint8_t responses_record_version = 1;

// Appends the record of (conversation, response, input) to `out`.
void encode_response_record(const std::vector<turn>& conversation,
                            const openai::response_object& response,
                            const std::vector<openai::input_item>& input, std::string& out);

enum class record_error : uint8_t {
  none,
  too_large,    // longer than the limit
  bad_magic,    // not a responses record
  bad_version,  // a version this build does not read
  truncated,    // ends inside a field
  bad_value,    // an enum, presence byte or count out of range, or an overlong varint
  trailing,     // bytes after the record
};
std::string_view to_string(record_error e);

// Decodes one record into `out` (overwritten). `bytes_max`: the longest value accepted.
record_error decode_response_record(std::string_view in, size_t bytes_max, stored_response& out);

}  // namespace rc::server
