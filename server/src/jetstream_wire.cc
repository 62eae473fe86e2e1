// The JSON of the JetStream API (see jetstream_wire.h).
#include "server/jetstream_wire.h"

#include <cerrno>

#include "base/byte_buffer.h"
#include "proto/base64.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace rc::server::js_wire {
namespace {

json::parser& wire_parser() {
  thread_local json::parser p;
  return p;
}

constexpr int64_t ns_per_ms = 1'000'000;

std::string to_string(const byte_buffer& b) {
  return std::string(b.view());
}

js_error protocol_error(std::string_view what) {
  js_error e;
  e.error = EPROTO;
  e.description = std::string(what);
  return e;
}

uint64_t u64_of(json::value v) {
  if (!v) return 0;
  if (v.kind() == json::kind::uint64) return v.get_uint64();
  if (v.kind() == json::kind::int64) return v.get_int64() < 0 ? 0 : uint64_t(v.get_int64());
  return 0;
}

std::string_view string_of(json::value v) {
  return v && v.is_string() ? v.get_string() : std::string_view();
}

// Parses `text`; returns the root object, or sets `err` (EPROTO for bad JSON, the API error for
// {"error":{...}}) and returns an invalid value.
json::value parse_answer(std::string_view text, js_error& err) {
  json::parse_result r = wire_parser().parse(text);
  if (!r.ok() || !r.root.is_object()) {
    err = protocol_error("JetStream answer is not a JSON object");
    return {};
  }
  json::value e = r.root.find("error");
  if (e && e.is_object()) {
    err.status = int(u64_of(e.find("code")));
    err.err_code = uint32_t(u64_of(e.find("err_code")));
    err.description = std::string(string_of(e.find("description")));
    if (err.status == 0) err.status = 500;
    return {};
  }
  return r.root;
}

int64_t ns_of_ms(int64_t ms) {
  return ms > 0 ? ms * ns_per_ms : 0;
}

}  // namespace

std::string stream_config_json(const js_stream_config& c) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.string_member("name", c.name);
  if (!c.description.empty()) w.string_member("description", c.description);
  w.key("subjects");
  w.begin_array();
  for (const std::string& s : c.subjects) w.string(s);
  w.end_array();
  w.string_member("retention", c.retention);
  w.int64_member("max_consumers", -1);
  w.int64_member("max_msgs", c.max_msgs);
  w.int64_member("max_bytes", c.max_bytes);
  w.int64_member("max_age", ns_of_ms(c.max_age_ms));
  w.int64_member("max_msgs_per_subject", c.max_msgs_per_subject);
  w.int64_member("max_msg_size", c.max_msg_size);
  w.string_member("discard", c.discard);
  w.string_member("storage", c.storage);
  w.uint64_member("num_replicas", c.replicas);
  if (c.duplicate_window_ms > 0)
    w.int64_member("duplicate_window", ns_of_ms(c.duplicate_window_ms));
  w.boolean_member("allow_rollup_hdrs", c.allow_rollup);
  w.boolean_member("deny_delete", c.deny_delete);
  w.boolean_member("deny_purge", false);
  w.boolean_member("allow_direct", c.allow_direct);
  w.end_object();
  return to_string(b);
}

js_stream_info parse_stream_info(std::string_view text) {
  js_stream_info info;
  json::value root = parse_answer(text, info.err);
  if (!root) return info;
  json::value state = root.find("state");
  std::optional<uint64_t> created = parse_rfc3339_ns(string_of(root.find("created")));
  if (!state || !state.is_object() || !created) {
    info.err = protocol_error("stream info without created/state");
    return info;
  }
  info.created_ns = *created;
  if (json::value config = root.find("config"); config && config.is_object())
    info.description = std::string(string_of(config.find("description")));
  info.first_seq = u64_of(state.find("first_seq"));
  info.last_seq = u64_of(state.find("last_seq"));
  info.messages = u64_of(state.find("messages"));
  return info;
}

js_pub_ack parse_pub_ack(std::string_view text) {
  js_pub_ack ack;
  json::value root = parse_answer(text, ack.err);
  if (!root) return ack;
  ack.stream = std::string(string_of(root.find("stream")));
  ack.seq = u64_of(root.find("seq"));
  json::value dup = root.find("duplicate");
  ack.duplicate = dup && dup.kind() == json::kind::boolean && dup.get_bool();
  if (ack.stream.empty() || ack.seq == 0)
    ack.err = protocol_error("publish ack without stream/seq");
  return ack;
}

std::string msg_get_by_seq_json(uint64_t seq) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.uint64_member("seq", seq);
  w.end_object();
  return to_string(b);
}

std::string msg_get_last_json(std::string_view subject) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.string_member("last_by_subj", subject);
  w.end_object();
  return to_string(b);
}

js_stored_msg parse_stored_msg(std::string_view text) {
  js_stored_msg m;
  json::value root = parse_answer(text, m.err);
  if (!root) {
    if (m.err.err_code == js_err_no_message_found) m.err = {};
    return m;
  }
  json::value msg = root.find("message");
  if (!msg || !msg.is_object()) {
    m.err = protocol_error("message get answer without message");
    return m;
  }
  byte_buffer hdrs, data;
  if (!base64::decode(string_of(msg.find("hdrs")), hdrs) ||
      !base64::decode(string_of(msg.find("data")), data)) {
    m.err = protocol_error("message get answer with bad base64");
    return m;
  }
  m.found = true;
  m.subject = std::string(string_of(msg.find("subject")));
  m.seq = u64_of(msg.find("seq"));
  m.time_ns = parse_rfc3339_ns(string_of(msg.find("time"))).value_or(0);
  m.headers = to_string(hdrs);
  m.data = to_string(data);
  return m;
}

std::string msg_delete_json(uint64_t seq) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.uint64_member("seq", seq);
  w.boolean_member("no_erase", true);
  w.end_object();
  return to_string(b);
}

js_error parse_success(std::string_view text) {
  js_error err;
  json::value root = parse_answer(text, err);
  if (!root) return err;
  json::value ok = root.find("success");
  if (!ok || ok.kind() != json::kind::boolean || !ok.get_bool()) {
    return protocol_error("answer without success");
  }
  return err;
}

std::string ordered_consumer_json(const ordered_request& r) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.string_member("stream_name", r.stream);
  w.key("config");
  w.begin_object();
  w.string_member("deliver_subject", r.deliver_subject);
  if (r.start_seq > 0) {
    w.string_member("deliver_policy", "by_start_sequence");
    w.uint64_member("opt_start_seq", r.start_seq);
  } else {
    w.string_member("deliver_policy", r.deliver_last_per_subject ? "last_per_subject" : "new");
  }
  w.string_member("ack_policy", "none");
  w.int64_member("max_deliver", 1);
  if (!r.filter_subject.empty()) w.string_member("filter_subject", r.filter_subject);
  w.string_member("replay_policy", "instant");
  w.boolean_member("flow_control", true);
  w.int64_member("idle_heartbeat", int64_t(r.heartbeat_ms) * ns_per_ms);
  if (r.headers_only) w.boolean_member("headers_only", true);
  w.boolean_member("mem_storage", true);
  w.int64_member("num_replicas", 1);
  w.int64_member("inactive_threshold", int64_t(r.inactive_threshold_ms) * ns_per_ms);
  w.end_object();
  w.end_object();
  return to_string(b);
}

consumer_created parse_consumer_created(std::string_view text) {
  consumer_created c;
  json::value root = parse_answer(text, c.err);
  if (!root) return c;
  c.name = std::string(string_of(root.find("name")));
  json::value delivered = root.find("delivered");
  if (c.name.empty() || !delivered || !delivered.is_object()) {
    c.err = protocol_error("consumer create answer without name/delivered");
    return c;
  }
  c.delivered_stream_seq = u64_of(delivered.find("stream_seq"));
  c.num_pending = u64_of(root.find("num_pending"));
  return c;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    uint64_t d = uint64_t(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

bool digits(std::string_view s, size_t pos, size_t n, unsigned& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + unsigned(s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<uint64_t> parse_rfc3339_ns(std::string_view s) {
  unsigned y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  uint64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    uint64_t scale = 100'000'000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac_ns += uint64_t(s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    unsigned oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset_s = int64_t(oh) * 3600 + int64_t(om) * 60;
    if (s[pos] == '-') offset_s = -offset_s;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t secs =
      days_from_civil(y, mo, d) * 86400 + int64_t(h) * 3600 + int64_t(mi) * 60 + sec - offset_s;
  if (secs < 0) return std::nullopt;
  return uint64_t(secs) * 1'000'000'000 + frac_ns;
}

}  // namespace rc::server::js_wire

namespace rc::server {

bool parse_ack_reply(std::string_view reply, js_delivery& d) {
  std::string_view tokens[12];
  size_t n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= reply.size(); ++i) {
    if (i == reply.size() || reply[i] == '.') {
      if (n == 12) return false;
      tokens[n++] = reply.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n != 9 && n != 11 && n != 12) return false;
  if (tokens[0] != "$JS" || tokens[1] != "ACK") return false;
  size_t base = n == 9 ? 4 : 6;  // index of <delivered>
  auto delivered = js_wire::parse_u64(tokens[base]);
  auto sseq = js_wire::parse_u64(tokens[base + 1]);
  auto cseq = js_wire::parse_u64(tokens[base + 2]);
  auto ts = js_wire::parse_u64(tokens[base + 3]);
  auto pending = js_wire::parse_u64(tokens[base + 4]);
  if (!delivered || !sseq || !cseq || !ts || !pending) return false;
  if (tokens[base - 2].empty() || tokens[base - 1].empty()) return false;  // stream, consumer
  d.delivered = *delivered;
  d.stream_seq = *sseq;
  d.consumer_seq = *cseq;
  d.time_ns = *ts;
  d.pending = *pending;
  return true;
}

}  // namespace rc::server
