// Fuzzes parse_head and chunked_decoder as a server connection uses them: the input is a stream
// of pipelined requests (heads, then bodies by Content-Length or chunked), parsed once whole and
// once as it arrives in fuzzer-chosen pieces. Both must produce the same requests, bodies and
// final error, and every result must satisfy the parser's contract.
//
// Input: one byte choosing the limits, four bytes choosing the split points, then the stream.
// Each parse is handed an exact-size heap copy of the unconsumed bytes, so ASan catches a read
// even one byte past the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http1_parser.h"
#include "split_points.h"

namespace {

using namespace rc::http1;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

limits pick_limits(uint8_t b) {
  limits lim;
  switch (b & 3) {
    case 1:
      lim = {64, 160, 4, 100};
      break;
    case 2:
      lim = {12, 24, 1, 3};
      break;
    default:
      break;
  }
  return lim;
}

bool inside(std::string_view v, const char* data, size_t n) {
  return v.empty() || (v.data() >= data && v.data() + v.size() <= data + n);
}

void check_complete(const request& r, const result& res, const char* data, size_t len,
                    const limits& lim) {
  size_t n = res.consumed;
  CHECK(n > 0 && n <= len && n <= lim.header_bytes_max);
  CHECK(r.head_bytes > 0 && r.head_bytes <= n);
  // A complete head ends with an empty line.
  CHECK(data[n - 1] == '\n');
  CHECK(n >= 2 && (data[n - 2] == '\n' || (n >= 3 && data[n - 2] == '\r' && data[n - 3] == '\n')));
  CHECK(r.header_count <= lim.headers_max);
  for (std::string_view v : {r.method_name, r.target, r.path, r.query, r.authority, r.host}) {
    CHECK(inside(v, data, n));
  }
  CHECK(!r.method_name.empty() && !r.target.empty());
  for (uint32_t i = 0; i < r.header_count; ++i) {
    CHECK(!r.headers[i].name.empty());
    CHECK(inside(r.headers[i].name, data, n) && inside(r.headers[i].value, data, n));
  }
  if (r.body == body_kind::content_length) CHECK(r.content_length <= lim.body_bytes_max);
  CHECK(r.version == version::http_1_0 || !r.host.empty() || r.find("host").data() != nullptr);
}

std::string summarize(const request& r) {
  std::string s;
  for (std::string_view v : {r.method_name, r.target, r.path, r.query, r.authority, r.host}) {
    s.append(v).push_back('|');
  }
  for (uint32_t i = 0; i < r.header_count; ++i) {
    s.append(r.headers[i].name).push_back(':');
    s.append(r.headers[i].value).push_back('|');
  }
  s += std::to_string(static_cast<int>(r.method)) + std::to_string(static_cast<int>(r.version)) +
       std::to_string(static_cast<int>(r.form)) + std::to_string(static_cast<int>(r.body)) + "/" +
       std::to_string(r.content_length) + (r.keep_alive ? "k" : "") +
       (r.expect_continue ? "e" : "") + (r.upgrade ? "u" : "") + "/" + std::to_string(r.head_bytes);
  return s;
}

// A server connection's view of the stream: buffer what arrived, parse heads and bodies.
class connection {
 public:
  explicit connection(const limits& lim) : lim_(lim), decoder_(lim) {}

  void receive(const char* p, size_t n) {
    if (failed_) return;
    buf_.append(p, n);
    while (!failed_ && pos_ < buf_.size() && step()) {
    }
  }

  std::vector<std::string> finish() {
    if (!failed_) log_.push_back("end in state " + std::to_string(static_cast<int>(state_)));
    return log_;
  }

 private:
  enum class state { head, length_body, chunked_body };

  // Returns whether progress was made and more may follow.
  bool step() {
    size_t avail = buf_.size() - pos_;
    std::unique_ptr<char[]> copy(new char[avail]);  // exact size: over-reads are ASan errors
    std::memcpy(copy.get(), buf_.data() + pos_, avail);
    if (state_ == state::head) return head(copy.get(), avail);
    if (state_ == state::length_body) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left_, avail));
      body_.append(copy.get(), n);
      pos_ += n;
      left_ -= n;
      if (left_ == 0) end_body();
      return true;
    }
    result r = decoder_.feed(copy.get(), avail, chunked_);
    CHECK(r.consumed <= avail);
    CHECK(decoder_.body_bytes() <= lim_.body_bytes_max && chunked_.size() == decoder_.body_bytes());
    if (r.status == status::error) return fail(r.error);
    CHECK(r.status == status::complete || r.consumed == avail);
    pos_ += r.consumed;
    if (r.status == status::complete) {
      body_.assign(chunked_.view());
      end_body();
    }
    return r.status == status::complete;
  }

  bool head(const char* data, size_t avail) {
    request req;
    result r = parse_head(data, avail, lim_, req, hint_);
    CHECK(r.consumed <= avail);
    if (r.status == status::error) return fail(r.error);
    if (r.status == status::incomplete) {
      CHECK(r.error == error::none && r.consumed >= hint_);
      // The hint is only an optimisation: a parse without it must agree.
      request again;
      CHECK(parse_head(data, avail, lim_, again, 0).status == status::incomplete);
      hint_ = r.consumed;
      return false;
    }
    check_complete(req, r, data, avail, lim_);
    log_.push_back(summarize(req));
    if (hint_ > 0) {
      request again;
      result r0 = parse_head(data, avail, lim_, again, 0);
      CHECK(r0.status == status::complete && r0.consumed == r.consumed);
      CHECK(summarize(again) == log_.back());
    }
    pos_ += r.consumed;
    hint_ = 0;
    if (req.body == body_kind::content_length && req.content_length > 0) {
      state_ = state::length_body;
      left_ = req.content_length;
    } else if (req.body == body_kind::chunked) {
      state_ = state::chunked_body;
      decoder_.reset();
      chunked_.clear();
    }
    return true;
  }

  void end_body() {
    log_.push_back("body " + body_);
    body_.clear();
    state_ = state::head;
  }

  bool fail(error e) {
    CHECK(e != error::none);
    int s = status_of(e);
    CHECK(s >= 400 && s <= 505 && !message_of(e).empty());
    log_.push_back("error " + std::string(name_of(e)));
    failed_ = true;
    return false;
  }

  limits lim_;
  chunked_decoder decoder_;
  std::string buf_;
  size_t pos_ = 0;
  size_t hint_ = 0;
  state state_ = state::head;
  uint64_t left_ = 0;
  std::string body_;
  rc::byte_buffer chunked_;
  bool failed_ = false;
  std::vector<std::string> log_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  limits lim = pick_limits(data[0]);
  ++data;
  --size;
  std::vector<size_t> pieces = rc::fuzz::split_points(data, size);
  const char* stream = reinterpret_cast<const char*>(data);

  connection whole(lim);
  whole.receive(stream, size);
  connection split(lim);
  size_t pos = 0;
  for (size_t p : pieces) {
    split.receive(stream + pos, p);
    pos += p;
  }
  CHECK(pos == size);
  std::vector<std::string> a = whole.finish(), b = split.finish();
  if (a != b) {
    for (const auto& e : a) std::fprintf(stderr, "whole: %s\n", e.c_str());
    for (const auto& e : b) std::fprintf(stderr, "split: %s\n", e.c_str());
  }
  CHECK(a == b);
  return 0;
}
