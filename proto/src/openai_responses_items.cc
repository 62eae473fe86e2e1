// The stored-response routes' encodings: input item pages, deletion, not found.
#include "proto/openai_responses_items.h"

#include <algorithm>
#include <charconv>

#include "proto/json_writer.h"

namespace rc::openai {
namespace {

void write_input_item(json::writer& w, const input_item& item) {
  if (item.type == input_item_type::other) {
    w.raw(item.raw_json);
    return;
  }
  w.begin_object();
  w.string_member("id", item.id);
  switch (item.type) {
    case input_item_type::message:
      w.string_member("type", "message");
      w.string_member("role", to_string(item.role));
      w.key("content");
      w.begin_array();
      w.begin_object();
      if (item.role == message_role::assistant) {
        w.string_member("type", "output_text");
        w.string_member("text", item.text);
        w.key("annotations");
        w.begin_array();
        w.end_array();
      } else {
        w.string_member("type", "input_text");
        w.string_member("text", item.text);
      }
      w.end_object();
      w.end_array();
      break;
    case input_item_type::function_call:
      w.string_member("type", "function_call");
      w.string_member("call_id", item.call_id);
      if (!item.tool_namespace.empty()) w.string_member("namespace", item.tool_namespace);
      w.string_member("name", item.name);
      w.string_member("arguments", item.arguments);
      break;
    case input_item_type::function_call_output:
      w.string_member("type", "function_call_output");
      w.string_member("call_id", item.call_id);
      w.string_member("output", item.output);
      break;
    case input_item_type::custom_tool_call:
      w.string_member("type", "custom_tool_call");
      w.string_member("call_id", item.call_id);
      w.string_member("name", item.name);
      w.string_member("input", item.arguments);
      break;
    case input_item_type::custom_tool_call_output:
      w.string_member("type", "custom_tool_call_output");
      w.string_member("call_id", item.call_id);
      w.string_member("output", item.output);
      break;
    case input_item_type::other:  // written above
      break;
  }
  w.string_member("status", "completed");
  w.end_object();
}

}  // namespace

void set_item_id(input_item& item, std::string id) {
  if (item.type == input_item_type::other && item.raw_json.size() > 1 && item.raw_json[0] == '{') {
    byte_buffer b;
    json::write_string(b, id);
    std::string spliced = "{\"id\":";
    spliced.append(b.view());
    if (item.raw_json.size() > 2) spliced += ',';
    spliced.append(item.raw_json, 1);
    item.raw_json = std::move(spliced);
  }
  item.id = std::move(id);
}

std::optional<api_error> parse_item_page_request(std::optional<std::string_view> after,
                                                 std::optional<std::string_view> limit,
                                                 std::optional<std::string_view> order,
                                                 item_page_request& out) {
  if (limit) {
    uint32_t n = 0;
    auto [p, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
    if (ec != std::errc() || p != limit->data() + limit->size() || limit->empty() || n < 1 ||
        n > item_page_limit_max) {
      return invalid_request("Invalid 'limit': expected an integer between 1 and " +
                                 std::to_string(item_page_limit_max) + ".",
                             "limit", "invalid_value");
    }
    out.limit = n;
  }
  if (order) {
    if (*order != "asc" && *order != "desc") {
      return invalid_request("Invalid 'order': expected 'asc' or 'desc'.", "order",
                             "invalid_value");
    }
    out.ascending = *order == "asc";
  }
  if (after) out.after = std::string(*after);
  return std::nullopt;
}

std::optional<api_error> write_input_item_page(byte_buffer& out, std::span<const input_item> items,
                                               const item_page_request& p) {
  // Walk the items in the requested order; start after `after` if given.
  size_t n = items.size();
  auto at = [&](size_t k) -> const input_item& { return items[p.ascending ? k : n - 1 - k]; };
  size_t start = 0;
  if (!p.after.empty()) {
    size_t k = 0;
    while (k < n && at(k).id != p.after) ++k;
    if (k == n) {
      return invalid_request(
          "Invalid 'after': no input item with id '" + p.after + "' in this response.", "after",
          "invalid_value");
    }
    start = k + 1;
  }
  size_t end = std::min(n, start + p.limit);
  json::writer w(out);
  w.begin_object();
  w.string_member("object", "list");
  w.key("data");
  w.begin_array();
  for (size_t k = start; k < end; ++k) write_input_item(w, at(k));
  w.end_array();
  if (start < end) {
    w.string_member("first_id", at(start).id);
    w.string_member("last_id", at(end - 1).id);
  } else {
    w.null_member("first_id");
    w.null_member("last_id");
  }
  w.boolean_member("has_more", end < n);
  w.end_object();
  return std::nullopt;
}

void write_response_deleted(byte_buffer& out, std::string_view id) {
  json::writer w(out);
  w.begin_object();
  w.string_member("id", id);
  w.string_member("object", "response");
  w.boolean_member("deleted", true);
  w.end_object();
}

api_error response_not_found(std::string_view id) {
  std::string m = "Response with id '";
  m.append(id);
  m += "' not found.";
  api_error e = invalid_request(std::move(m));
  e.status = 404;
  return e;
}

}  // namespace rc::openai
