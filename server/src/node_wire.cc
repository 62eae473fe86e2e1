// node_wire (node_wire.h): the request and event bytes of node routing.
#include "server/node_wire.h"

#include "server/record_codec.h"

namespace rc::server {
namespace {

using record_codec::reader;
using record_codec::writer;

constexpr std::string_view request_magic = "RCG";
constexpr std::string_view event_magic = "RCE";

#if defined(__GLIBCXX__) && defined(__x86_64__)
// A new member must be added to the bytes (and this size updated): lossless only while every
// member is named.
static_assert(sizeof(generation_request) == 368, "generation_request changed: update node_wire");
static_assert(sizeof(original_request) == 128, "original_request changed: update node_wire");
static_assert(sizeof(openai::function_tool) == 104, "function_tool changed: update node_wire");
static_assert(sizeof(engine_event) == 224, "engine_event changed: update node_wire");
#endif

// Checks the magic and version; returns the reader past them, or the error.
record_error open(std::string_view in, size_t bytes_max, std::string_view magic, reader& r) {
  if (in.size() > bytes_max) return record_error::too_large;
  if (in.size() < magic.size() + 1 || in.substr(0, magic.size()) != magic) {
    return in.size() < magic.size() + 1 && magic.starts_with(in) ? record_error::truncated
                                                                 : record_error::bad_magic;
  }
  if (static_cast<uint8_t>(in[magic.size()]) != node_wire_version) return record_error::bad_version;
  r.in = in;
  r.pos = magic.size() + 1;
  return record_error::none;
}

record_error close(reader& r) {
  if (r.ok() && r.left() != 0) r.fail(record_error::trailing);
  return r.err;
}

}  // namespace

void encode_node_request(std::string_view upstream, const generation_request& req,
                         uint64_t now_ms, std::string& out) {
  out.append(request_magic);
  out.push_back(static_cast<char>(node_wire_version));
  writer w{out};
  w.str(upstream);
  w.str(req.model);
  const original_request& o = req.original;
  w.enumeration(o.api);
  w.boolean(o.body != nullptr);
  if (o.body) w.str(*o.body);
  w.boolean(o.stream);
  w.boolean(o.include_usage);
  w.boolean(o.passthrough);
  w.str(o.request_id);
  w.str(o.previous_response_id);
  w.str(o.response_id);
  std::string conversation;
  encode_response_record(req.conversation, {}, {}, conversation);
  w.str(conversation);
  w.varint(req.tools.size());
  for (const openai::function_tool& t : req.tools) {
    w.str(t.name);
    w.str(t.description);
    w.str(t.parameters_json);
    w.opt(t.strict, &writer::boolean);
  }
  w.enumeration(req.tool_choice.mode);
  w.str(req.tool_choice.function_name);
  w.str(req.tool_choice.raw_json);
  w.boolean(req.parallel_tool_calls);
  w.varint(req.choices);
  w.opt(req.max_tokens, &writer::varint);
  w.varint(req.stop.size());
  for (const std::string& s : req.stop) w.str(s);
  w.opt(req.seed, &writer::i64);
  w.f64(req.temperature);
  w.f64(req.top_p);
  w.varint(req.deadline_ms == 0 ? 0 : req.deadline_ms > now_ms ? req.deadline_ms - now_ms : 1);
}

record_error decode_node_request(std::string_view in, size_t bytes_max, uint64_t now_ms,
                                 std::string& upstream, generation_request& req) {
  reader r;
  if (record_error e = open(in, bytes_max, request_magic, r); e != record_error::none) return e;
  req = generation_request{};
  upstream = r.str();
  req.model = r.str();
  original_request& o = req.original;
  o.api = r.enumeration(api_kind::responses);
  if (r.boolean()) o.body = std::make_shared<const std::string>(r.str());
  o.stream = r.boolean();
  o.include_usage = r.boolean();
  o.passthrough = r.boolean();
  o.request_id = r.str();
  o.previous_response_id = r.str();
  o.response_id = r.str();
  std::string conversation = r.str();
  if (r.ok()) {
    stored_response inner;
    record_error e = decode_response_record(conversation, conversation.size(), inner);
    if (e != record_error::none) r.fail(e);
    req.conversation = std::move(inner.conversation);
  }
  req.tools.resize(r.count(4));
  for (openai::function_tool& t : req.tools) {
    t.name = r.str();
    t.description = r.str();
    t.parameters_json = r.str();
    t.strict = r.opt(&reader::boolean);
  }
  req.tool_choice.mode = r.enumeration(openai::tool_choice_mode::function);
  req.tool_choice.function_name = r.str();
  req.tool_choice.raw_json = r.str();
  req.parallel_tool_calls = r.boolean();
  uint64_t choices = r.varint();
  if (choices > UINT32_MAX) r.fail(record_error::bad_value);
  req.choices = static_cast<uint32_t>(choices);
  req.max_tokens = r.opt(&reader::varint);
  req.stop.resize(r.count(1));
  for (std::string& s : req.stop) s = r.str();
  req.seed = r.opt(&reader::i64);
  req.temperature = r.f64();
  req.top_p = r.f64();
  uint64_t left = r.varint();
  req.deadline_ms = left == 0 ? 0 : now_ms + left;
  return close(r);
}

void encode_node_event(const engine_event& e, std::string& out) {
  out.append(event_magic);
  out.push_back(static_cast<char>(node_wire_version));
  writer w{out};
  w.enumeration(e.type);
  w.varint(e.choice);
  w.str(e.text);
  w.varint(e.tool_index);
  w.str(e.tool_call_id);
  w.str(e.tool_name);
  w.enumeration(e.finish);
  w.varint(e.usage.input_tokens);
  w.varint(e.usage.output_tokens);
  w.varint(e.usage.cached_tokens);
  w.varint(e.usage.reasoning_tokens);
  w.str(e.error_code);
  w.str(e.error_message);
  w.varint(e.http_status);
  w.str(e.error_type);
  w.str(e.error_param);
  w.varint(e.retry_after_ms);
  w.str(e.raw);
  w.str(e.raw_name);
  w.enumeration(e.raw_api);
}

record_error decode_node_event(std::string_view in, size_t bytes_max, owned_event& out) {
  reader r;
  if (record_error e = open(in, bytes_max, event_magic, r); e != record_error::none) return e;
  out = owned_event{};
  engine_event& b = out.base;
  auto u32 = [&r] {
    uint64_t v = r.varint();
    if (v > UINT32_MAX) r.fail(record_error::bad_value);
    return static_cast<uint32_t>(v);
  };
  b.type = r.enumeration(event_type::raw);
  b.choice = u32();
  out.text = r.str();
  b.tool_index = u32();
  out.tool_call_id = r.str();
  out.tool_name = r.str();
  b.finish = r.enumeration(openai::finish_reason::content_filter);
  b.usage.input_tokens = r.varint();
  b.usage.output_tokens = r.varint();
  b.usage.cached_tokens = r.varint();
  b.usage.reasoning_tokens = r.varint();
  out.error_code = r.str();
  out.error_message = r.str();
  uint32_t status = u32();
  if (status > UINT16_MAX) r.fail(record_error::bad_value);
  b.http_status = static_cast<uint16_t>(status);
  out.error_type = r.str();
  out.error_param = r.str();
  b.retry_after_ms = u32();
  out.raw = r.str();
  out.raw_name = r.str();
  b.raw_api = r.enumeration(api_kind::responses);
  return close(r);
}

}  // namespace rc::server
