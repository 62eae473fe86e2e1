// The OpenAI-style error envelope every HTTP error carries (API.md, Common):
//   {"error":{"message":"…","type":"invalid_request_error","param":null,"code":null}}
// All four keys are always present; an empty param or code is written as JSON null.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "base/byte_buffer.h"

namespace rc::server {

void write_error_body(byte_buffer& out, std::string_view message, std::string_view type,
                      std::string_view param, std::string_view code);

}  // namespace rc::server
