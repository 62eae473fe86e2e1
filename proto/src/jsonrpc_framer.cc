// The JSON-RPC framer (jsonrpc.h): lines and LSP Content-Length framing over a byte stream.
#include <cstring>
#include <string>
#include <string_view>

#include "proto/jsonrpc.h"

namespace rc::jsonrpc {

namespace {

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

framer::framer(framing f, size_t max_message_bytes) : framing_(f), max_bytes_(max_message_bytes) {}

void framer::feed(std::string_view bytes) {
  if (failed_ != status::need_more) return;  // the stream is abandoned; keep nothing
  // Drop what was consumed, so the buffer holds one partial message at most (plus this chunk).
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

framer::status framer::fail(status s) {
  failed_ = s;
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = scanned_ = 0;
  return s;
}

framer::status framer::next(std::string_view& message) {
  if (failed_ != status::need_more) return failed_;
  return framing_ == framing::lines ? next_line(message) : next_lsp(message);
}

framer::status framer::next_line(std::string_view& message) {
  for (;;) {
    size_t avail = buf_.size() - pos_;
    const char* base = buf_.data() + pos_;
    const void* nl =
        scanned_ < avail ? std::memchr(base + scanned_, '\n', avail - scanned_) : nullptr;
    if (nl == nullptr) {
      scanned_ = avail;
      // A partial line already longer than any message (a '\r' may still be dropped).
      bool maybe_cr = avail == max_bytes_ + 1 && buf_.back() == '\r';
      if (avail > max_bytes_ && !maybe_cr) return fail(status::too_large);
      return status::need_more;
    }
    size_t len = static_cast<size_t>(static_cast<const char*>(nl) - base);
    std::string_view line(base, len);
    pos_ += len + 1;
    scanned_ = 0;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_bytes_) return fail(status::too_large);
    if (blank(line)) continue;
    message = line;
    return status::message;
  }
}

framer::status framer::next_lsp(std::string_view& message) {
  for (;;) {
    if (in_body_) {
      if (buf_.size() - pos_ < body_bytes_) return status::need_more;
      message = std::string_view(buf_.data() + pos_, body_bytes_);
      pos_ += body_bytes_;
      in_body_ = false;
      return status::message;
    }
    // Blank lines between messages are tolerated (some servers end a body with a newline).
    while (scanned_ == 0 && pos_ < buf_.size() && (buf_[pos_] == '\r' || buf_[pos_] == '\n')) {
      ++pos_;
    }
    // Find the empty line that ends the header block, one line at a time.
    size_t avail = buf_.size() - pos_;
    const char* base = buf_.data() + pos_;
    size_t end = std::string_view::npos;  // offset after the empty line
    while (scanned_ < avail) {
      const void* nl = std::memchr(base + scanned_, '\n', avail - scanned_);
      if (nl == nullptr) break;
      size_t line_end = static_cast<size_t>(static_cast<const char*>(nl) - base);
      std::string_view line(base + scanned_, line_end - scanned_);
      scanned_ = line_end + 1;
      if (line.empty() || line == "\r") {
        end = scanned_;
        break;
      }
    }
    if (end == std::string_view::npos) {
      if (avail > header_bytes_max) return fail(status::bad_header);
      return status::need_more;
    }
    if (end > header_bytes_max) return fail(status::bad_header);
    if (!parse_headers(end)) return failed_;
  }
}

// Reads the header block [pos_, pos_ + end) and moves into the body; false when it failed.
bool framer::parse_headers(size_t end) {
  std::string_view block(buf_.data() + pos_, end);
  bool have_length = false;
  uint64_t length = 0;
  while (!block.empty()) {
    size_t nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || trim(line.substr(0, colon)).empty()) {
      fail(status::bad_header);
      return false;
    }
    if (!iequals(trim(line.substr(0, colon)), "content-length")) continue;
    std::string_view v = trim(line.substr(colon + 1));
    if (have_length || v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) {
      fail(status::bad_header);  // duplicated, empty, signed, not a number
      return false;
    }
    // 19 digits cannot overflow 64 bits; more are beyond any limit anyway.
    size_t digits = v.find_first_not_of('0') == std::string_view::npos
                        ? 0
                        : v.size() - v.find_first_not_of('0');
    if (digits > 19) {
      fail(status::too_large);
      return false;
    }
    for (char c : v) length = length * 10 + static_cast<uint64_t>(c - '0');
    have_length = true;
  }
  if (!have_length || length > max_bytes_) {
    fail(have_length ? status::too_large : status::bad_header);
    return false;
  }
  pos_ += end;
  scanned_ = 0;
  body_bytes_ = static_cast<size_t>(length);
  in_body_ = true;
  return true;
}

void frame(framing f, std::string_view json, std::string& out) {
  if (f == framing::content_length) {
    out += "Content-Length: ";
    out += std::to_string(json.size());
    out += "\r\n\r\n";
    out += json;
  } else {
    out += json;
    out += '\n';
  }
}

}  // namespace rc::jsonrpc
