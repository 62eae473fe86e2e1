// Private pieces shared by the Responses object writer and the event writer.
#pragma once

#include <string_view>

#include "proto/json_writer.h"
#include "proto/openai_responses.h"

namespace rc::openai::detail {

// {"type":"output_text","text":…,"annotations":[]}
void write_text_part(json::writer& w, std::string_view text);
// A message or function_call output item. A message that has just been added (in progress,
// no text yet) has no content part; otherwise it has exactly one output_text part.
void write_output_item(json::writer& w, const output_item& item);

}  // namespace rc::openai::detail
