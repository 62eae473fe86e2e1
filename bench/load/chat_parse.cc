#include "load/chat_parse.h"

#include <charconv>

namespace rc::load {
namespace {

std::string_view trim_front(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> find_string_field(std::string_view json, std::string_view key) {
  // Looks for `"key":"` without building the pattern: find the key, then check around it.
  size_t from = 0;
  for (;;) {
    size_t at = json.find(key, from);
    if (at == std::string_view::npos) return std::nullopt;
    size_t after = at + key.size();
    from = at + 1;
    if (at == 0 || json[at - 1] != '"') continue;
    if (json.size() < after + 3 || json[after] != '"' || json[after + 1] != ':' ||
        json[after + 2] != '"')
      continue;
    size_t start = after + 3;
    size_t end = json.find('"', start);
    if (end == std::string_view::npos) return std::nullopt;
    return json.substr(start, end - start);
  }
}

chat_chunk classify_chat_chunk(std::string_view data) {
  data = trim_front(data);
  if (data == "[DONE]") return chat_chunk::done;
  if (data.empty() || data.front() != '{') return chat_chunk::malformed;
  if (data.starts_with("{\"error\"")) return chat_chunk::error;
  size_t choices = data.find("\"choices\":");
  if (choices == std::string_view::npos) return chat_chunk::malformed;
  constexpr std::string_view delta_key = "\"delta\":{";
  size_t delta = data.find(delta_key, choices);
  if (delta == std::string_view::npos) {
    // The usage chunk has no choices; any other chunk must carry a delta.
    return data.compare(choices + 10, 2, "[]") == 0 ? chat_chunk::other : chat_chunk::malformed;
  }
  size_t body = delta + delta_key.size();
  size_t close = data.find('}', body);
  if (close == std::string_view::npos) return chat_chunk::malformed;
  constexpr std::string_view content_key = "\"content\":\"";
  size_t content = data.find(content_key, body);
  if (content == std::string_view::npos || content > close) return chat_chunk::other;
  size_t value = content + content_key.size();
  if (value >= data.size()) return chat_chunk::malformed;
  return data[value] == '"' ? chat_chunk::other : chat_chunk::token;
}

ws_chat_event classify_ws_chat(std::string_view message) {
  ws_chat_event out;
  auto event = find_string_field(message, "event");
  if (!event) return out;
  if (event->starts_with("flow.")) {
    out.kind = ws_chat_kind::flow;
    return out;
  }
  auto id = find_string_field(message, "id");
  if (!id || id->size() < 2 || id->front() != 'c') return out;
  const char* first = id->data() + 1;
  const char* last = id->data() + id->size();
  auto [p, ec] = std::from_chars(first, last, out.slot);
  if (ec != std::errc() || p != last) return out;
  if (*event == "chat.delta") {
    out.kind = ws_chat_kind::delta;
  } else if (*event == "chat.complete") {
    out.kind = ws_chat_kind::complete;
  } else if (*event == "error") {
    out.kind = ws_chat_kind::error;
  } else {
    out.kind = ws_chat_kind::other;
  }
  return out;
}

size_t write_slot_id(uint32_t slot, char* out) {
  out[0] = 'c';
  auto [p, ec] = std::to_chars(out + 1, out + 11, slot);
  (void)ec;  // ten digits always fit a uint32_t
  return static_cast<size_t>(p - out);
}

broker_event classify_broker_event(std::string_view type) {
  if (type == "progress") return broker_event::progress;
  if (type == "processing") return broker_event::processing;
  if (type == "queued") return broker_event::queued;
  if (type == "done") return broker_event::done;
  if (type == "error") return broker_event::error;
  return broker_event::other;
}

}  // namespace rc::load
