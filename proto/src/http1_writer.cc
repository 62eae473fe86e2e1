// Response heads are assembled with memcpy and std::to_chars into space reserved once per piece;
// nothing here formats through iostreams or printf.
#include "proto/http1_writer.h"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "base/assert.h"

namespace rc::http1 {
namespace {

constexpr std::string_view crlf = "\r\n";

// Copies `s` to `p` and returns the byte after it.
char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* put_2_digits(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

// Header names and values come from the application, sometimes echoing client input (e.g.
// x-request-id); a CR or LF in them would split the response, so that is a programmer error.
// Eight bytes at a time, any byte below 0x0e (which CR, LF and NUL are) is looked for; only then
// are the bytes checked one by one. (w - 0x0e..0e) & ~w & 0x80..80 is non-zero iff some byte of
// w is below 0x0e.
bool safe_field_text(std::string_view s) {
  constexpr uint64_t ones = 0x0101010101010101ull;
  constexpr uint64_t highs = 0x8080808080808080ull;
  auto has_low_byte = [&s](size_t i) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    return ((w - ones * 0x0e) & ~w & highs) != 0;
  };
  const size_t n = s.size();
  bool suspect = false;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) suspect = suspect || has_low_byte(i);
    suspect = suspect || has_low_byte(n - 8);  // the last word overlaps the previous one
  } else {
    for (char c : s) suspect = suspect || static_cast<uint8_t>(c) < 0x0e;
  }
  if (!suspect) return true;
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void append_trusted(byte_buffer& out, std::string_view name, std::string_view value) {
  char* p = out.prepare(name.size() + value.size() + 4);
  p = put(p, name);
  p = put(p, ": ");
  p = put(p, value);
  p = put(p, crlf);
  out.commit(name.size() + value.size() + 4);
}

void append_field(byte_buffer& out, std::string_view name, std::string_view value) {
  RC_ASSERT(!name.empty() && safe_field_text(name) && safe_field_text(value));
  append_trusted(out, name, value);
}

void append_length_and_end(byte_buffer& out, uint64_t n) {
  constexpr std::string_view name = "Content-Length: ";
  char* const start = out.prepare(name.size() + 20 + 4);
  char* p = put(start, name);
  p = std::to_chars(p, p + 20, n).ptr;
  p = put(p, "\r\n\r\n");
  out.commit(static_cast<size_t>(p - start));
}

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

date_cache::date_cache() {
  std::memset(buf_, 0, sizeof buf_);
  refresh(std::time(nullptr));
}

// IMF-fixdate, RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT".
bool date_cache::refresh(std::time_t now_s) {
  if (now_s == second_) return false;
  std::tm tm{};
  if (gmtime_r(&now_s, &tm) == nullptr) return false;  // out of range: keep the last value
  second_ = now_s;
  static constexpr char days[] = "SunMonTueWedThuFriSat";
  static constexpr char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char* p = buf_;
  p = put(p, {days + 3 * tm.tm_wday, 3});
  p = put(p, ", ");
  p = put_2_digits(p, tm.tm_mday);
  *p++ = ' ';
  p = put(p, {months + 3 * tm.tm_mon, 3});
  *p++ = ' ';
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) year = 9999;  // IMF-fixdate has four year digits
  p = put_2_digits(p, year / 100);
  p = put_2_digits(p, year % 100);
  *p++ = ' ';
  p = put_2_digits(p, tm.tm_hour);
  *p++ = ':';
  p = put_2_digits(p, tm.tm_min);
  *p++ = ':';
  p = put_2_digits(p, tm.tm_sec);
  put(p, " GMT");
  return true;
}

void response_writer::start(int status) {
  RC_ASSERT(status >= 100 && status <= 999);
  std::string_view reason = reason_phrase(status);
  std::string_view date = date_.value();
  const size_t n = 9 + 3 + 1 + reason.size() + 2 + 6 + date.size() + 2;
  char* p = out_.prepare(n);
  p = put(p, "HTTP/1.1 ");
  p[0] = static_cast<char>('0' + status / 100);
  p = put_2_digits(p + 1, status % 100);
  *p++ = ' ';
  p = put(p, reason);
  p = put(p, "\r\nDate: ");
  p = put(p, date);
  put(p, crlf);
  out_.commit(n);
}

void response_writer::header_trusted(std::string_view name, std::string_view value) {
  append_trusted(out_, name, value);
}

void response_writer::header(std::string_view name, std::string_view value) {
  append_field(out_, name, value);
}

void response_writer::header(std::string_view name, uint64_t value) {
  char digits[20];
  char* e = std::to_chars(digits, digits + sizeof digits, value).ptr;
  RC_ASSERT(!name.empty() && safe_field_text(name));
  append_trusted(out_, name, {digits, static_cast<size_t>(e - digits)});
}

void response_writer::connection(connection_header c) {
  switch (c) {
    case connection_header::none:
      return;
    case connection_header::keep_alive:
      out_.append("Connection: keep-alive\r\n");
      return;
    case connection_header::close:
      out_.append("Connection: close\r\n");
      return;
    case connection_header::upgrade:
      out_.append("Connection: Upgrade\r\n");
      return;
  }
}

void response_writer::end_with_body(std::string_view body) {
  append_length_and_end(out_, body.size());
  out_.append(body);
}

void response_writer::end_with_length(uint64_t n) {
  append_length_and_end(out_, n);
}

void response_writer::end_chunked_head() {
  out_.append("Transfer-Encoding: chunked\r\n\r\n");
}

void response_writer::end_head_no_body() {
  out_.append(crlf);
}

void write_chunk_header(byte_buffer& out, uint64_t n) {
  RC_ASSERT(n > 0);  // a zero-size chunk would end the body
  char* const start = out.prepare(16 + 2);
  char* p = std::to_chars(start, start + 16, n, 16).ptr;
  p = put(p, crlf);
  out.commit(static_cast<size_t>(p - start));
}

void write_chunk(byte_buffer& out, std::string_view data) {
  if (data.empty()) return;
  write_chunk_header(out, data.size());
  char* p = out.prepare(data.size() + 2);
  p = put(p, data);
  put(p, crlf);
  out.commit(data.size() + 2);
}

void write_last_chunk(byte_buffer& out) {
  out.append("0\r\n\r\n");
}

}  // namespace rc::http1
