// Private pieces shared by the Responses request parser, object writer and event writer.
#pragma once

#include <string_view>

#include "openai_validate.h"
#include "proto/json_writer.h"
#include "proto/openai_responses.h"

namespace rc::openai::detail {

// Request parsing (openai_responses_input.cc, openai_responses_tools.cc).
// `input`: a string or an array of items; appends to out.input.
maybe_error read_input(const value& v, responses_request& out);
// One element of `tools`: a function tool goes to st.tools; every tool gets its st.tool_entries
// entry (see response_settings).
maybe_error read_responses_tool_entry(const value& v, const path& p, response_settings& st);
// tool_choice: a string, a function ({"type":"function","name"}), or another kind kept raw.
maybe_error read_responses_tool_choice(const value& v, const path& p, tool_choice_spec& out);

// {"type":"output_text","text":…,"annotations":[]}
void write_text_part(json::writer& w, std::string_view text);
// A message or function_call output item. A message that has just been added (in progress,
// no text yet) has no content part; otherwise it has exactly one output_text part.
void write_output_item(json::writer& w, const output_item& item);

}  // namespace rc::openai::detail
