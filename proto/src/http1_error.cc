// The status, client-facing message and metrics name of each parse error, in one table so that
// adding a code without its row fails the static_assert below.
#include <array>
#include <string_view>

#include "base/assert.h"
#include "proto/http1_parser.h"

namespace rc::http1 {
namespace {

struct error_info {
  int status;
  std::string_view name;
  std::string_view message;
};

constexpr std::array error_table = {
    error_info{200, "none", "no error"},
    error_info{400, "bad_request_line", "malformed request line"},
    error_info{400, "bad_method", "request method is not a valid token"},
    error_info{400, "bad_target", "request target has invalid characters or form"},
    error_info{400, "bad_version", "malformed HTTP version"},
    error_info{505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported"},
    error_info{414, "uri_too_long", "request line is too long"},
    error_info{431, "header_section_too_large", "request header section is too large"},
    error_info{431, "too_many_headers", "too many header fields"},
    error_info{400, "bad_header_name", "malformed header field name"},
    error_info{400, "space_before_colon",
               "whitespace between a header field name and the colon is not allowed"},
    error_info{400, "obs_fold", "header line folding is not allowed"},
    error_info{400, "bad_header_value", "header field value contains a control character"},
    error_info{400, "bare_cr", "CR must be followed by LF"},
    error_info{400, "missing_host", "HTTP/1.1 request without a Host header"},
    error_info{400, "duplicate_host", "more than one Host header"},
    error_info{400, "bad_content_length", "malformed Content-Length"},
    error_info{400, "conflicting_content_length", "conflicting Content-Length values"},
    error_info{400, "content_length_with_transfer_encoding",
               "Content-Length and Transfer-Encoding must not both be present"},
    error_info{501, "unsupported_transfer_coding", "only the chunked transfer coding is supported"},
    error_info{400, "bad_transfer_encoding",
               "Transfer-Encoding must end with a single chunked coding"},
    error_info{400, "transfer_encoding_in_http_1_0",
               "Transfer-Encoding is not allowed in HTTP/1.0 requests"},
    error_info{400, "bad_host", "Host header has an invalid value"},
    error_info{400, "bad_chunk", "malformed chunked body"},
    error_info{413, "body_too_large", "request body is too large"},
};
static_assert(error_table.size() == static_cast<size_t>(error::body_too_large) + 1,
              "every http1::error needs a row in error_table");

const error_info& info(error e) {
  auto i = static_cast<size_t>(e);
  RC_ASSERT(i < error_table.size());
  return error_table[i];
}

}  // namespace

int status_of(error e) {
  return info(e).status;
}
std::string_view message_of(error e) {
  return info(e).message;
}
std::string_view name_of(error e) {
  return info(e).name;
}

}  // namespace rc::http1
