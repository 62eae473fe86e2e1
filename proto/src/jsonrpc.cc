// The JSON-RPC parser and writers (jsonrpc.h).
//
// Parsing is two passes over one message: simdjson validates the whole text and gives the typed
// view (kinds, unescaped strings), then json_splice's token scan finds the raw text of the
// members whose JSON is passed on (id, params, result, error.data), so they are not re-encoded.
// The text is first copied into the parser's padded buffer: simdjson then parses in place, and
// the views in `message` live as long as that copy, not as long as the caller's buffer.
#include <limits>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_splice.h"
#include "proto/json_writer.h"
#include "proto/jsonrpc.h"

namespace rc::jsonrpc {

struct parser::impl {
  json::parser json{json::parse_limits{.document_bytes_max = std::numeric_limits<size_t>::max(),
                                       .depth_max = depth_max}};
  std::string text;  // the message, followed by json::padding_bytes of slack
  std::vector<json::member_span> members, inner;
};

parser::parser() : impl_(std::make_unique<impl>()) {}
parser::~parser() = default;

namespace {

// The raw text of the last member named `key` of the object whose members are `spans`.
std::string_view raw_member(std::string_view text, const std::vector<json::member_span>& spans,
                            std::string_view key) {
  std::string_view found;
  for (const json::member_span& m : spans) {
    if (json::key_equals(m.key, key))
      found = text.substr(m.value_begin, m.value_end - m.value_begin);
  }
  return found;
}

bool fail(std::string& error, std::string_view why) {
  error.assign(why);
  return false;
}

// Reads the id (REQUIRES: present). Integers and strings; null only where `null_ok`.
bool read_id(json::value v, std::string_view raw, bool null_ok, message& out, std::string& error) {
  switch (v.kind()) {
    case json::kind::uint64:
      out.id_number = v.get_uint64();
      break;
    case json::kind::int64:
      if (v.get_int64() >= 0) out.id_number = static_cast<uint64_t>(v.get_int64());
      break;
    case json::kind::string:
      break;
    case json::kind::null:
      if (!null_ok) return fail(error, "id is null");
      break;
    default:
      return fail(error, "id is not an integer or a string");
  }
  out.id = raw;
  return true;
}

bool read_error(json::value e, std::string_view raw, std::vector<json::member_span>& spans,
                message& out, std::string& error) {
  if (!e.is_object()) return fail(error, "error is not an object");
  json::value code = e.find("code");
  if (!code || code.kind() != json::kind::int64) return fail(error, "error.code is not an integer");
  out.error_code = code.get_int64();
  json::value msg = e.find("message");
  if (msg) {
    if (!msg.is_string()) return fail(error, "error.message is not a string");
    out.error_message = msg.get_string();
  }
  size_t close = 0;
  if (!json::scan_object(raw, spans, close)) return fail(error, "error is not an object");
  out.error_data = raw_member(raw, spans, "data");
  out.type = kind::error;
  return true;
}

}  // namespace

bool parser::parse(std::string_view json, message& out, std::string& error) {
  out = message{};
  std::string& text = impl_->text;
  text.assign(json);
  text.append(json::padding_bytes, '\0');
  json::parse_result r = impl_->json.parse(text.data(), json.size(), text.size());
  if (!r.ok()) return fail(error, "not JSON: " + std::string(json::to_string(r.status)));
  json::value root = r.root;
  if (!root.is_object()) return fail(error, "not a JSON object");
  std::string_view src(text.data(), json.size());
  size_t close = 0;
  if (!json::scan_object(src, impl_->members, close)) return fail(error, "not a JSON object");
  const auto& spans = impl_->members;

  json::value version = root.find("jsonrpc");
  if (version && !(version.is_string() && version.get_string() == "2.0")) {
    return fail(error, "jsonrpc is not \"2.0\"");
  }
  json::value id = root.find("id");
  json::value method = root.find("method");
  json::value result = root.find("result");
  json::value err = root.find("error");
  if (method) {
    if (!method.is_string()) return fail(error, "method is not a string");
    if (result || err) return fail(error, "a message with a method has a result or an error");
    out.method = method.get_string();
    json::value params = root.find("params");
    if (params) {
      if (!params.is_object() && !params.is_array()) {
        return fail(error, "params is not an object or an array");
      }
      out.params = raw_member(src, spans, "params");
    }
    if (!id) {
      out.type = kind::notification;
      return true;
    }
    out.type = kind::request;
    return read_id(id, raw_member(src, spans, "id"), false, out, error);
  }
  if (result && err) return fail(error, "a response has both result and error");
  if (!result && !err) return fail(error, "neither a method, a result nor an error");
  if (!id) return fail(error, "a response without an id");
  if (!read_id(id, raw_member(src, spans, "id"), static_cast<bool>(err), out, error)) return false;
  if (result) {
    out.type = kind::response;
    out.result = raw_member(src, spans, "result");
    return true;
  }
  return read_error(err, raw_member(src, spans, "error"), impl_->inner, out, error);
}

namespace {

void begin(json::writer& w, bool with_jsonrpc) {
  w.begin_object();
  if (with_jsonrpc) w.string_member("jsonrpc", "2.0");
}

void flush(byte_buffer& b, std::string& out) {
  out.append(b.view());
}

}  // namespace

void write_request(std::string& out, uint64_t id, std::string_view method,
                   std::string_view params_json, bool with_jsonrpc) {
  byte_buffer b;
  json::writer w(b);
  begin(w, with_jsonrpc);
  w.key("id");
  w.uint64(id);
  w.string_member("method", method);
  w.key("params");
  w.raw(params_json.empty() ? std::string_view("{}") : params_json);
  w.end_object();
  flush(b, out);
}

void write_notification(std::string& out, std::string_view method, std::string_view params_json,
                        bool with_jsonrpc) {
  byte_buffer b;
  json::writer w(b);
  begin(w, with_jsonrpc);
  w.string_member("method", method);
  w.key("params");
  w.raw(params_json.empty() ? std::string_view("{}") : params_json);
  w.end_object();
  flush(b, out);
}

void write_result(std::string& out, std::string_view id_json, std::string_view result_json,
                  bool with_jsonrpc) {
  byte_buffer b;
  json::writer w(b);
  begin(w, with_jsonrpc);
  w.key("id");
  w.raw(id_json.empty() ? std::string_view("null") : id_json);
  w.key("result");
  w.raw(result_json.empty() ? std::string_view("null") : result_json);
  w.end_object();
  flush(b, out);
}

void write_error(std::string& out, std::string_view id_json, int64_t code, std::string_view message,
                 std::string_view data_json, bool with_jsonrpc) {
  byte_buffer b;
  json::writer w(b);
  begin(w, with_jsonrpc);
  w.key("id");
  w.raw(id_json.empty() ? std::string_view("null") : id_json);
  w.key("error");
  w.begin_object();
  w.key("code");
  w.int64(code);
  w.string_member("message", message);
  if (!data_json.empty()) {
    w.key("data");
    w.raw(data_json);
  }
  w.end_object();
  w.end_object();
  flush(b, out);
}

}  // namespace rc::jsonrpc
