#include "load/response_reader.h"

#include <algorithm>
#include <cstring>

namespace rc::load {
namespace {

constexpr uint64_t chunk_size_max = uint64_t{1} << 56;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Calls fn(name, value) for every field line of a head (the status line skipped).
template <class Fn>
void for_each_field(std::string_view head, Fn&& fn) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    size_t start = pos + 2;
    size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos || end == start) return;
    std::string_view line = head.substr(start, end - start);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos)
      if (!fn(trim(line.substr(0, colon)), trim(line.substr(colon + 1)))) return;
    pos = end;
  }
}

}  // namespace

std::string_view describe(response_error e) {
  switch (e) {
    case response_error::none:
      return "none";
    case response_error::head_too_large:
      return "response head too large";
    case response_error::bad_status_line:
      return "malformed status line";
    case response_error::bad_content_length:
      return "malformed Content-Length";
    case response_error::bad_chunk:
      return "malformed chunked framing";
    case response_error::upgraded:
      return "HTTP read after a 101 upgrade";
  }
  return "?";
}

response_reader::step response_reader::fail(response_error e) {
  state_ = state::failed;
  if (error_ == response_error::none) error_ = e;
  return step::error;
}

std::string_view response_reader::header(std::string_view name) const {
  std::string_view found;
  for_each_field(head_, [&](std::string_view n, std::string_view v) {
    if (!iequals(n, name)) return true;
    found = v;
    return false;
  });
  return found;
}

response_error response_reader::parse_head(std::string_view head) {
  head_ = head;
  // "HTTP/1.x SSS" at least.
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ')
    return response_error::bad_status_line;
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return response_error::bad_status_line;
    status = status * 10 + (head[i] - '0');
  }
  if (head.size() > 12 && head[12] != ' ' && head[12] != '\r')
    return response_error::bad_status_line;
  status_ = status;
  bool has_length = false, chunked = false, length_ok = true;
  uint64_t length = 0;
  for_each_field(head, [&](std::string_view n, std::string_view v) {
    if (n.size() == 14 && iequals(n, "content-length")) {
      has_length = true;
      length = 0;
      length_ok = !v.empty() && v.size() <= 18;
      for (char c : v) {
        if (c < '0' || c > '9') length_ok = false;
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
    } else if (n.size() == 17 && iequals(n, "transfer-encoding")) {
      chunked = icontains(v, "chunked");
    }
    return true;
  });
  if (status == 101) {
    state_ = state::upgraded;
    framing_ = framing::none;
  } else if ((status >= 100 && status < 200) || status == 204 || status == 304) {
    framing_ = framing::none;
    state_ = state::message_end;
  } else if (chunked) {
    framing_ = framing::chunked;
    state_ = state::chunk_size;
    remaining_ = 0;
    size_digits_ = 0;
  } else if (has_length) {
    if (!length_ok) return response_error::bad_content_length;
    framing_ = framing::length;
    remaining_ = length;
    state_ = length == 0 ? state::message_end : state::length_body;
  } else {
    framing_ = framing::until_close;
    state_ = state::until_close;
  }
  return response_error::none;
}

response_reader::step response_reader::read_head(std::string_view& in) {
  size_t end;
  if (head_buf_.empty()) {
    end = in.find("\r\n\r\n");
    if (end != std::string_view::npos) {
      std::string_view head = in.substr(0, end + 4);
      in.remove_prefix(end + 4);
      if (response_error e = parse_head(head); e != response_error::none) return fail(e);
      return step::head;
    }
    if (in.size() > head_bytes_max_) return fail(response_error::head_too_large);
    head_buf_.append(in);
    in = {};
    return step::need_more;
  }
  // The head started in an earlier read: look for its end across the seam.
  size_t old = head_buf_.size();
  head_buf_.append(in);
  end = head_buf_.view().find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (end == std::string_view::npos) {
    in = {};
    if (head_buf_.size() > head_bytes_max_) return fail(response_error::head_too_large);
    return step::need_more;
  }
  size_t head_len = end + 4;
  in.remove_prefix(head_len - old);
  head_buf_.resize(head_len);
  head_owned_ = true;
  if (response_error e = parse_head(head_buf_.view()); e != response_error::none) return fail(e);
  return step::head;
}

// Chunk sizes, the CRLFs around chunk data, and trailers: a few bytes per chunk, read one by one.
response_reader::step response_reader::read_chunk_framing(std::string_view& in) {
  while (!in.empty()) {
    char c = in.front();
    switch (state_) {
      case state::chunk_size: {
        int v = hex_value(c);
        if (v >= 0) {
          if (remaining_ >= chunk_size_max) return fail(response_error::bad_chunk);
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++size_digits_;
        } else if (size_digits_ == 0) {
          return fail(response_error::bad_chunk);
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = state::chunk_ext;
        } else if (c == '\r') {
          state_ = state::chunk_size_lf;
        } else {
          return fail(response_error::bad_chunk);
        }
        break;
      }
      case state::chunk_ext:
        if (c == '\r') state_ = state::chunk_size_lf;
        break;
      case state::chunk_size_lf:
        if (c != '\n') return fail(response_error::bad_chunk);
        size_digits_ = 0;
        state_ = remaining_ == 0 ? state::trailer_line_start : state::chunk_data;
        in.remove_prefix(1);
        return step::need_more;  // the caller continues with the data or the trailers
      case state::chunk_data_cr:
        if (c != '\r') return fail(response_error::bad_chunk);
        state_ = state::chunk_data_lf;
        break;
      case state::chunk_data_lf:
        if (c != '\n') return fail(response_error::bad_chunk);
        state_ = state::chunk_size;
        remaining_ = 0;
        break;
      case state::trailer_line_start:
        state_ = c == '\r' ? state::final_lf : state::trailer_line;
        break;
      case state::trailer_line:
        if (c == '\n') state_ = state::trailer_line_start;
        break;
      case state::final_lf:
        if (c != '\n') return fail(response_error::bad_chunk);
        in.remove_prefix(1);
        state_ = state::head;
        return step::done;
      default:
        return fail(response_error::bad_chunk);
    }
    in.remove_prefix(1);
  }
  return step::need_more;
}

response_reader::step response_reader::next(std::string_view& in, std::string_view& body) {
  if (head_owned_) {
    // The caller is done with the last head (see head()).
    head_buf_.clear();
    head_ = {};
    head_owned_ = false;
  }
  for (;;) {
    switch (state_) {
      case state::head:
        if (in.empty()) return step::need_more;
        return read_head(in);
      case state::message_end:
        state_ = state::head;
        return step::done;
      case state::length_body:
      case state::chunk_data: {
        if (in.empty()) return step::need_more;
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
        body = in.substr(0, n);
        in.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0)
          state_ = state_ == state::length_body ? state::message_end : state::chunk_data_cr;
        return step::body;
      }
      case state::until_close:
        if (in.empty()) return step::need_more;
        body = in;
        in = {};
        return step::body;
      case state::upgraded:
        return fail(response_error::upgraded);
      case state::failed:
        return step::error;
      default: {
        if (in.empty()) return step::need_more;
        step s = read_chunk_framing(in);
        if (s != step::need_more) return s;
        break;  // a chunk's data or the trailers follow: loop
      }
    }
  }
}

}  // namespace rc::load
