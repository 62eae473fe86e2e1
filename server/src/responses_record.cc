#include "server/responses_record.h"

#include "server/record_codec.h"

#include <bit>
#include <cstring>
#include <optional>

namespace rc::server {
namespace {

constexpr std::string_view magic = "RCR";

// A new member of one of these structs must be added to the record (and this size updated): the
// record is lossless only while it names every member.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(openai::input_item) == 312, "input_item changed: update responses_record");
static_assert(sizeof(openai::output_item) == 176, "output_item changed: update responses_record");
static_assert(sizeof(openai::response_settings) == 640,
              "response_settings changed: update responses_record");
static_assert(sizeof(openai::response_object) == 864,
              "response_object changed: update responses_record");
static_assert(sizeof(turn) == 40, "turn changed: update responses_record");
#endif

using record_codec::reader;
using record_codec::writer;

void write_settings(writer& w, const openai::response_settings& s) {
  w.str(s.model);
  w.boolean(s.instructions.has_value());
  if (s.instructions) w.str(*s.instructions);
  w.opt(s.max_output_tokens, &writer::i64);
  w.str(s.previous_response_id);
  w.boolean(s.store);
  w.f64(s.temperature);
  w.f64(s.top_p);
  w.boolean(s.parallel_tool_calls);
  w.enumeration(s.tool_choice.mode);
  w.str(s.tool_choice.function_name);
  w.str(s.tool_choice.raw_json);
  w.varint(s.tools.size());
  for (const openai::function_tool& t : s.tools) {
    w.str(t.name);
    w.str(t.description);
    w.str(t.parameters_json);
    w.opt(t.strict, &writer::boolean);
  }
  w.varint(s.tool_entries.size());
  for (const std::string& e : s.tool_entries) w.str(e);
  w.enumeration(s.text_format.type);
  w.str(s.text_format.name);
  w.str(s.text_format.schema_json);
  w.opt(s.text_format.strict, &writer::boolean);
  w.str(s.text_format.raw_json);
  w.str(s.text_verbosity);
  w.str(s.reasoning_effort);
  w.str(s.reasoning_summary);
  w.str(s.service_tier);
  w.str(s.prompt_cache_key);
  w.str(s.safety_identifier);
  w.enumeration(s.truncation);
  w.str(s.user);
  w.varint(s.metadata.size());
  for (const auto& [k, v] : s.metadata) {
    w.str(k);
    w.str(v);
  }
}

void write_object(writer& w, const openai::response_object& r) {
  w.str(r.id);
  w.i64(r.created_at);
  w.opt(r.completed_at, &writer::i64);
  w.enumeration(r.status);
  write_settings(w, r.settings);
  w.varint(r.output.size());
  for (const openai::output_item& o : r.output) {
    w.enumeration(o.type);
    w.str(o.id);
    w.enumeration(o.status);
    w.str(o.text);
    w.str(o.call_id);
    w.str(o.name);
    w.str(o.arguments);
  }
  w.boolean(r.usage.has_value());
  if (r.usage) {
    w.varint(r.usage->input_tokens);
    w.varint(r.usage->output_tokens);
    w.varint(r.usage->cached_tokens);
    w.varint(r.usage->reasoning_tokens);
  }
  w.str(r.error_code);
  w.str(r.error_message);
  w.str(r.incomplete_reason);
}

void write_input(writer& w, const openai::input_item& i) {
  w.enumeration(i.type);
  w.str(i.id);
  w.enumeration(i.role);
  w.str(i.text);
  w.varint(i.media_parts);
  w.str(i.call_id);
  w.str(i.name);
  w.str(i.arguments);
  w.str(i.output);
  w.str(i.tool_namespace);
  w.str(i.type_name);
  w.str(i.raw_json);
}

void read_settings(reader& r, openai::response_settings& s) {
  s.model = r.str();
  s.instructions = r.opt(&reader::str);
  s.max_output_tokens = r.opt(&reader::i64);
  s.previous_response_id = r.str();
  s.store = r.boolean();
  s.temperature = r.f64();
  s.top_p = r.f64();
  s.parallel_tool_calls = r.boolean();
  s.tool_choice.mode = r.enumeration(openai::tool_choice_mode::function);
  s.tool_choice.function_name = r.str();
  s.tool_choice.raw_json = r.str();
  s.tools.resize(r.count(4));
  for (openai::function_tool& t : s.tools) {
    t.name = r.str();
    t.description = r.str();
    t.parameters_json = r.str();
    t.strict = r.opt(&reader::boolean);
  }
  s.tool_entries.resize(r.count(1));
  for (std::string& e : s.tool_entries) e = r.str();
  s.text_format.type = r.enumeration(openai::output_format::json_schema);
  s.text_format.name = r.str();
  s.text_format.schema_json = r.str();
  s.text_format.strict = r.opt(&reader::boolean);
  s.text_format.raw_json = r.str();
  s.text_verbosity = r.str();
  s.reasoning_effort = r.str();
  s.reasoning_summary = r.str();
  s.service_tier = r.str();
  s.prompt_cache_key = r.str();
  s.safety_identifier = r.str();
  s.truncation = r.enumeration(openai::truncation_mode::auto_);
  s.user = r.str();
  s.metadata.resize(r.count(2));
  for (auto& [k, v] : s.metadata) {
    k = r.str();
    v = r.str();
  }
}

void read_object(reader& r, openai::response_object& o) {
  o.id = r.str();
  o.created_at = r.i64();
  o.completed_at = r.opt(&reader::i64);
  o.status = r.enumeration(openai::response_status::cancelled);
  read_settings(r, o.settings);
  o.output.resize(r.count(7));
  for (openai::output_item& i : o.output) {
    i.type = r.enumeration(openai::output_item_type::function_call);
    i.id = r.str();
    i.status = r.enumeration(openai::item_status::incomplete);
    i.text = r.str();
    i.call_id = r.str();
    i.name = r.str();
    i.arguments = r.str();
  }
  o.usage.reset();
  if (r.boolean() && r.ok()) {
    openai::usage_counts u;
    u.input_tokens = r.varint();
    u.output_tokens = r.varint();
    u.cached_tokens = r.varint();
    u.reasoning_tokens = r.varint();
    o.usage = u;
  }
  o.error_code = r.str();
  o.error_message = r.str();
  o.incomplete_reason = r.str();
}

void read_input(reader& r, openai::input_item& i) {
  i.type = r.enumeration(openai::input_item_type::other);
  i.id = r.str();
  i.role = r.enumeration(openai::message_role::function);
  i.text = r.str();
  uint64_t media = r.varint();
  if (media > UINT32_MAX) r.fail(record_error::bad_value);
  i.media_parts = static_cast<uint32_t>(media);
  i.call_id = r.str();
  i.name = r.str();
  i.arguments = r.str();
  i.output = r.str();
  i.tool_namespace = r.str();
  i.type_name = r.str();
  i.raw_json = r.str();
}

}  // namespace

void encode_response_record(const std::vector<turn>& conversation,
                            const openai::response_object& response,
                            const std::vector<openai::input_item>& input, std::string& out) {
  writer w{out};
  out.append(magic);
  w.u8(responses_record_version);
  w.varint(conversation.size());
  for (const turn& t : conversation) {
    w.enumeration(t.role);
    w.str(t.text);
  }
  write_object(w, response);
  w.varint(input.size());
  for (const openai::input_item& i : input) write_input(w, i);
}

record_error decode_response_record(std::string_view in, size_t bytes_max, stored_response& out) {
  if (in.size() > bytes_max) return record_error::too_large;
  if (in.size() < magic.size() + 1 || in.substr(0, magic.size()) != magic) {
    return in.size() < magic.size() + 1 && magic.starts_with(in) ? record_error::truncated
                                                                 : record_error::bad_magic;
  }
  if (static_cast<uint8_t>(in[magic.size()]) != responses_record_version)
    return record_error::bad_version;
  reader r{in, magic.size() + 1};
  out = stored_response{};
  out.conversation.resize(r.count(2));
  for (turn& t : out.conversation) {
    t.role = r.enumeration(openai::message_role::function);
    t.text = r.str();
  }
  read_object(r, out.response);
  out.input.resize(r.count(12));
  for (openai::input_item& i : out.input) read_input(r, i);
  if (r.ok() && r.left() != 0) r.fail(record_error::trailing);
  return r.err;
}

std::string_view to_string(record_error e) {
  switch (e) {
    case record_error::none:
      return "ok";
    case record_error::too_large:
      return "too large";
    case record_error::bad_magic:
      return "not a responses record";
    case record_error::bad_version:
      return "unknown record version";
    case record_error::truncated:
      return "truncated";
    case record_error::bad_value:
      return "value out of range";
    case record_error::trailing:
      return "bytes after the record";
  }
  return "?";
}

}  // namespace rc::server
