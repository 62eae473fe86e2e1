#include <cstring>

#include "line_scan.h"
#include "proto/sse.h"

namespace rc::sse {
namespace {

constexpr char bom[3] = {'\xef', '\xbb', '\xbf'};

// §9.2.6 "retry": the value must be ASCII digits only; otherwise the field is ignored.
std::optional<uint64_t> parse_retry(std::string_view v) {
  if (v.empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    n = n > (UINT64_MAX - digit) / 10 ? UINT64_MAX : n * 10 + digit;
  }
  return n;
}

}  // namespace

decoder::decoder(decoder_limits limits) : limits_(limits) {}

void decoder::restart() {
  error_ = decode_error::none;
  bom_matched_ = 0;
  bom_done_ = false;
  skip_lf_ = false;
  dispatched_ = false;
  line_.clear();
  data_.clear();
  type_.clear();
  id_.clear();  // the buffers belong to a stream (§9.2.6); the ID string outlives it
  event_ = {};
}

decoder::step decoder::fail(decode_error e) {
  error_ = e;
  return step::error;
}

// The stream is UTF-8 decoded with one leading BOM stripped. The BOM may arrive split across
// chunks; if the bytes turn out not to be a BOM, the ones already taken are line content.
void decoder::skip_bom(std::string_view& in) {
  while (!in.empty() && bom_matched_ < 3 && in[0] == bom[bom_matched_]) {
    in.remove_prefix(1);
    ++bom_matched_;
  }
  if (bom_matched_ == 3) {
    bom_done_ = true;
  } else if (!in.empty()) {
    line_.append(bom, bom_matched_);  // line_ is empty: nothing came before
    bom_done_ = true;
  }
}

decoder::step decoder::next(std::string_view& in) {
  if (error_ != decode_error::none) return step::error;
  if (dispatched_) {
    data_.clear();
    type_.clear();
    dispatched_ = false;
  }
  while (!in.empty()) {
    if (!bom_done_) {
      skip_bom(in);
      if (!bom_done_) break;
    }
    if (skip_lf_) {
      skip_lf_ = false;
      if (in[0] == '\n') {
        in.remove_prefix(1);
        continue;
      }
    }
    size_t pos = detail::find_line_break(in.data(), in.size());
    if (line_.size() + pos > limits_.line_bytes_max) return fail(decode_error::line_too_long);
    if (pos == in.size()) {
      line_.append(in);
      in = {};
      break;
    }
    std::string_view line = in.substr(0, pos);
    if (!line_.empty()) {
      line_.append(line);
      line = line_.view();
    }
    bool cr = in[pos] == '\r';
    in.remove_prefix(pos + 1);
    if (cr) {
      if (in.empty()) {
        skip_lf_ = true;
      } else if (in[0] == '\n') {
        in.remove_prefix(1);
      }
    }
    bool dispatched = process_line(line);
    line_.clear();
    if (error_ != decode_error::none) return step::error;
    if (dispatched) return step::event;
  }
  return step::need_more;
}

bool decoder::process_line(std::string_view line) {
  if (line.empty()) return dispatch();
  if (line[0] == ':') return false;  // comment
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    process_field(line, {});
    return false;
  }
  std::string_view value = line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  process_field(line.substr(0, colon), value);
  return false;
}

void decoder::process_field(std::string_view field, std::string_view value) {
  if (field == "data") {
    if (data_.size() + value.size() + 1 > limits_.event_bytes_max) {
      error_ = decode_error::event_too_large;
      return;
    }
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  } else if (field == "retry") {
    if (auto ms = parse_retry(value)) retry_ms_ = ms;
  }
  // Any other field is ignored.
}

// §9.2.6 "dispatch the event". The last event ID string is updated even when no event results.
bool decoder::dispatch() {
  last_id_ = id_;
  if (data_.empty()) {
    type_.clear();
    return false;
  }
  event_.type = type_.empty() ? std::string_view("message") : std::string_view(type_);
  event_.data = std::string_view(data_.data(), data_.size() - 1);  // without the last LF
  event_.id = last_id_;
  dispatched_ = true;
  return true;
}

}  // namespace rc::sse
