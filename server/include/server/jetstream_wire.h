// jetstream_wire: the JSON of the JetStream API — request bodies and the parsing of answers.
//
// Pure functions (no I/O), so they are unit tested without a server. Answers are parsed with a
// thread-local json::parser. Every parser maps an {"error":{code, err_code, description}}
// answer into js_error, and an answer that is not the JSON it should be into js_error{EPROTO}.
//
// Thread-safety: pure functions; each thread uses its own parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/jetstream.h"

namespace rc::server::js_wire {

// The body of STREAM.CREATE / STREAM.UPDATE.
std::string stream_config_json(const js_stream_config& c);
// STREAM.CREATE / UPDATE / INFO answers.
js_stream_info parse_stream_info(std::string_view json);

// A publish ack: {"stream":"S","seq":N[,"duplicate":true]} or an error.
js_pub_ack parse_pub_ack(std::string_view json);

// STREAM.MSG.GET bodies and answer ("no message found" → found=false, err cleared).
std::string msg_get_by_seq_json(uint64_t seq);
std::string msg_get_last_json(std::string_view subject);
js_stored_msg parse_stored_msg(std::string_view json);

// STREAM.MSG.DELETE body ({"seq":N,"no_erase":true}) and answer ({"success":true}).
std::string msg_delete_json(uint64_t seq);
js_error parse_success(std::string_view json);

// CONSUMER.CREATE for an ordered push consumer.
struct ordered_request {
  std::string_view stream, deliver_subject, filter_subject;
  uint64_t start_seq = 0;  // 0: deliver new (or last per subject); else by_start_sequence
  bool deliver_last_per_subject = false;
  bool headers_only = false;
  uint32_t heartbeat_ms = 1000;
  uint32_t inactive_threshold_ms = 30000;  // the server drops it after this long without interest
};
std::string ordered_consumer_json(const ordered_request& r);

struct consumer_created {
  js_error err;
  std::string name;
  uint64_t delivered_stream_seq = 0;  // the stream sequence it starts after
  uint64_t num_pending = 0;           // messages matching the filter still to deliver
};
consumer_created parse_consumer_created(std::string_view json);

// RFC 3339 timestamp ("2026-12-04T23:30:00.123456789Z", offsets allowed) → ns since the Unix
// epoch; nullopt when malformed or before 1970.
std::optional<uint64_t> parse_rfc3339_ns(std::string_view s);

// Decimal digits only, no sign, no overflow past 2^64-1.
std::optional<uint64_t> parse_u64(std::string_view s);

}  // namespace rc::server::js_wire
