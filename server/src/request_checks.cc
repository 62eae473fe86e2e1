// Checks of request parameters that several routes share and answer with a 400 before any work
// starts: the x-ringcast-timeout-ms header (chat completions, responses, broker messages); the
// messages of requests the HTTP parser refused.
#include <string>

#include "server/config.h"
#include "server/connection.h"
#include "server/errors.h"
#include "server/openai_api.h"
#include "server/query.h"

namespace rc::server {

bool check_timeout_header(connection& conn, const http1::request& req) {
  auto bad = bad_timeout_header(req);
  if (!bad) return true;
  std::string m =
      "Invalid 'x-ringcast-timeout-ms' header: expected a positive integer number of "
      "milliseconds, got '";
  m.append(*bad);
  m += "'.";
  respond_api_error(
      conn, openai::invalid_request(std::move(m), "x-ringcast-timeout-ms", "invalid_timeout"));
  return false;
}

std::string parse_error_message(http1::error e, const server_config& cfg) {
  std::string m(http1::message_of(e));
  auto limit = [&](uint64_t value, std::string_view unit, std::string_view flag) {
    m += " (the limit is " + std::to_string(value) + " " + std::string(unit) + "; raise " +
         std::string(flag) + ")";
  };
  switch (e) {
    case http1::error::body_too_large:
      limit(cfg.body_bytes_max, "bytes", "--body-bytes-max");
      break;
    case http1::error::uri_too_long:
      limit(cfg.request_line_bytes_max, "bytes", "--request-line-bytes-max");
      break;
    case http1::error::header_section_too_large:
      limit(cfg.header_bytes_max, "bytes", "--header-bytes-max");
      break;
    case http1::error::too_many_headers:
      limit(cfg.headers_max, "fields", "--headers-max");
      break;
    default:
      break;
  }
  return m;
}

}  // namespace rc::server
