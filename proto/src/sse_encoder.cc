#include <cstring>

#include "base/assert.h"
#include "line_scan.h"
#include "proto/sse.h"

namespace rc::sse {
namespace {

constexpr std::string_view id_prefix = "id: ";
constexpr std::string_view event_prefix = "event: ";
constexpr std::string_view retry_prefix = "retry: ";
constexpr std::string_view data_prefix = "data: ";

size_t decimal_digits(uint32_t v) {
  size_t n = 1;
  while (v >= 10) v /= 10, ++n;
  return n;
}

char* put(char* dst, std::string_view s) {
  std::memcpy(dst, s.data(), s.size());
  return dst + s.size();
}

char* put_decimal(char* dst, uint32_t v, size_t digits) {
  for (size_t i = digits; i-- > 0; v /= 10) dst[i] = static_cast<char>('0' + v % 10);
  return dst + digits;
}

// Length of the line end at data[pos] (a CR, LF or CRLF found by find_line_break).
size_t line_end_bytes(std::string_view data, size_t pos) {
  return data[pos] == '\r' && pos + 1 < data.size() && data[pos + 1] == '\n' ? 2 : 1;
}

}  // namespace

bool valid_field(std::string_view s) {
  if (detail::find_line_break(s.data(), s.size()) != s.size()) return false;
  return std::memchr(s.data(), '\0', s.size()) == nullptr;
}

size_t encoded_size(const event& e) {
  size_t n = 1;  // the blank line that ends the event
  if (e.id) n += id_prefix.size() + e.id->size() + 1;
  if (!e.type.empty()) n += event_prefix.size() + e.type.size() + 1;
  if (e.retry_ms) n += retry_prefix.size() + decimal_digits(*e.retry_ms) + 1;
  // Each line end in the data is replaced by "\ndata: ".
  size_t lines = 1;
  size_t line_end_total = 0;
  std::string_view d = e.data;
  for (size_t pos; (pos = detail::find_line_break(d.data(), d.size())) != d.size();) {
    size_t end = line_end_bytes(d, pos);
    ++lines, line_end_total += end;
    d.remove_prefix(pos + end);
  }
  return n + lines * (data_prefix.size() + 1) + e.data.size() - line_end_total;
}

char* encode(const event& e, char* dst) {
  if (e.id) {
    RC_ASSERT(valid_field(*e.id));
    dst = put(dst, id_prefix);
    dst = put(dst, *e.id);
    *dst++ = '\n';
  }
  if (!e.type.empty()) {
    RC_ASSERT(valid_field(e.type));
    dst = put(dst, event_prefix);
    dst = put(dst, e.type);
    *dst++ = '\n';
  }
  if (e.retry_ms) {
    dst = put(dst, retry_prefix);
    dst = put_decimal(dst, *e.retry_ms, decimal_digits(*e.retry_ms));
    *dst++ = '\n';
  }
  std::string_view d = e.data;
  for (;;) {
    size_t pos = detail::find_line_break(d.data(), d.size());
    dst = put(dst, data_prefix);
    dst = put(dst, d.substr(0, pos));
    *dst++ = '\n';
    if (pos == d.size()) break;
    d.remove_prefix(pos + line_end_bytes(d, pos));
  }
  *dst++ = '\n';
  return dst;
}

void write_event(byte_buffer& out, const event& e) {
  size_t n = encoded_size(e);
  char* end = encode(e, out.prepare(n));
  RC_ASSERT(end == out.data() + out.size() + n);
  out.commit(n);
}

void write_comment(byte_buffer& out, std::string_view text) {
  RC_ASSERT(valid_field(text));
  if (text.empty()) {
    out.append(":\n\n");
    return;
  }
  char* dst = out.prepare(text.size() + 4);
  dst = put(dst, ": ");
  dst = put(dst, text);
  put(dst, "\n\n");
  out.commit(text.size() + 4);
}

void write_retry(byte_buffer& out, uint32_t retry_ms) {
  size_t digits = decimal_digits(retry_ms);
  size_t n = retry_prefix.size() + digits + 2;
  char* dst = put(out.prepare(n), retry_prefix);
  dst = put_decimal(dst, retry_ms, digits);
  put(dst, "\n\n");
  out.commit(n);
}

}  // namespace rc::sse
