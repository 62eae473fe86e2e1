// OpenAI Responses API, the stored-response routes: GET /v1/responses/{id}/input_items (a page of
// the request's input items), DELETE /v1/responses/{id} ({"id","object":"response","deleted":true})
// and the 404 for an id that is unknown (or was created with store: false, or was deleted).
//
// Input items are written as the API lists them: messages as {"id","type":"message","role",
// "content":[{"type":"input_text"|"output_text","text"}],"status":"completed"} (a message's text
// parts were concatenated when parsed, so it has one part; assistant messages use output_text),
// function calls {"id","type":"function_call","call_id","name","arguments","status"} and their
// outputs {"id","type":"function_call_output","call_id","output","status"}, custom tool calls and
// outputs likewise; items of other types (reasoning, local shell calls, …) as the client sent
// them.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/openai_errors.h"
#include "proto/openai_responses.h"

namespace rc::openai {

// The list parameters of GET /v1/responses/{id}/input_items.
struct item_page_request {
  std::string after;       // an item id; empty: from the first item in `order`
  uint32_t limit = 20;     // 1 to 100
  bool ascending = false;  // order=asc; the default is desc (newest first)
};

inline constexpr uint32_t item_page_limit_max = 100;

// Parses limit/order/after values as sent (nullopt: absent). Errors name the parameter.
std::optional<api_error> parse_item_page_request(std::optional<std::string_view> after,
                                                 std::optional<std::string_view> limit,
                                                 std::optional<std::string_view> order,
                                                 item_page_request& out);

// {"object":"list","data":[…],"first_id","last_id","has_more"} for the page `p` of `items` (in
// request order); an `after` that is not one of the items is a 400 naming `after`.
std::optional<api_error> write_input_item_page(byte_buffer& out, std::span<const input_item> items,
                                               const item_page_request& p);

// Gives an item the client sent without an id the id ringcast assigned (also in the kept JSON
// of an `other` item). REQUIRES: item.id is empty.
void set_item_id(input_item& item, std::string id);

// {"id","object":"response","deleted":true}
void write_response_deleted(byte_buffer& out, std::string_view id);

// 404: "Response with id '…' not found."
api_error response_not_found(std::string_view id);

}  // namespace rc::openai
