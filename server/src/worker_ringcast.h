// Private to the `ringcast` worker dialect (worker_dialect_ringcast.cc, worker_ringcast_*.cc):
// the generate call, the encoder of its params, and the decoding helpers they share.
//
// Thread-safety: shard-local, like the dialect. wire_parser() is one parser per thread; a view
// from it is valid until the next parse on that thread, so a call parses, emits and is done
// before it returns (emit() never parses worker input).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "server/worker_dialect.h"

namespace rc::server::ringcast_wire {

inline constexpr int64_t protocol_version = 1;
// Tool calls one choice may make (a larger index is a protocol error, not an allocation).
inline constexpr uint32_t tool_calls_max = 128;

json::parser& wire_parser();

// The params object text `text`, or an invalid value (not JSON, not an object, empty).
json::value parse_object(std::string_view text);
// A member that must be a non-negative integer: nullopt if absent or of any other kind
// (`bad` says which: true when present but wrong).
std::optional<uint64_t> uint_member(json::value obj, std::string_view key, bool& bad);

// `key` and its value, or null when there is none: the dialect's params always carry the member.
template <class Int>
void nullable_member(json::writer& w, std::string_view key, const std::optional<Int>& v) {
  w.key(key);
  if (!v) {
    w.null();
  } else if constexpr (std::is_signed_v<Int>) {
    w.int64(*v);
  } else {
    w.uint64(*v);
  }
}

// Appends the `generate` params for `p` (ringcast's normalized view + the client's body).
void encode_generate(const call_params& p, std::string& out);

std::unique_ptr<worker_call> make_generate_call(std::string params_json, uint32_t choices);

}  // namespace rc::server::ringcast_wire
