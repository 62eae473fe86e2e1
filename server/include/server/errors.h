// The OpenAI-style error envelope every HTTP error carries (API.md, Common):
//   {"error":{"message":"…","type":"invalid_request_error","param":null,"code":null}}
// All four keys are always present; an empty param or code is written as JSON null.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include <string>

#include "base/byte_buffer.h"
#include "proto/http1_parser.h"

namespace rc::server {

void write_error_body(byte_buffer& out, std::string_view message, std::string_view type,
                      std::string_view param, std::string_view code);

struct server_config;
// The message of a 400/413/414/431/501/505 for a request the parser refused; the ones caused by a
// size limit say the limit and the flag that raises it (request_checks.cc).
std::string parse_error_message(http1::error e, const server_config& cfg);

}  // namespace rc::server
