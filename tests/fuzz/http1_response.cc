// Fuzzes the response side of HTTP/1.1 (proto/http1_response.h): the input (after one byte
// choosing the limits and the method and four choosing the split points) is a response stream:
// head, then body. It is parsed and decoded whole and in pieces as a client would (the head
// re-parsed from a growing buffer, the body fed as it arrives); both must agree on the outcome,
// the decoded body and where the body ended, and never read past a piece.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proto/http1_response.h"
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

struct outcome {
  std::string summary;  // head facts or the error
  std::string body;
  size_t end = 0;  // offset where the body ended, 0 if it did not
  bool operator==(const outcome&) const = default;
};

std::string describe(const response& r) {
  return std::to_string(r.status) + " " + std::to_string(static_cast<int>(r.body)) + " " +
         std::to_string(r.content_length) + " " + std::to_string(r.keep_alive) + " " +
         std::to_string(r.header_count);
}

outcome run(const char* stream, const std::vector<size_t>& pieces, const response_limits& lim,
            request_method_kind method) {
  outcome o;
  std::string head_buf;
  response head;
  std::unique_ptr<body_decoder> dec;
  rc::byte_buffer body;
  size_t pos = 0;
  for (size_t n : pieces) {
    std::unique_ptr<char[]> copy(new char[n]);  // exact size: over-reads are ASan errors
    std::memcpy(copy.get(), stream + pos, n);
    const char* p = copy.get();
    size_t len = n;
    if (!dec) {
      head_buf.append(p, len);
      std::unique_ptr<char[]> h(new char[head_buf.size()]);
      std::memcpy(h.get(), head_buf.data(), head_buf.size());
      response_result r = parse_response_head(h.get(), head_buf.size(), lim, method, head);
      if (r.status == status::error) {
        o.summary = "error " + std::string(name_of(r.error));
        return o;
      }
      if (r.status == status::incomplete) {
        CHECK(head_buf.size() < lim.header_bytes_max);
        pos += n;
        continue;
      }
      CHECK(r.consumed == head.head_bytes && r.consumed <= head_buf.size());
      o.summary = describe(head);
      size_t from_piece = n - (head_buf.size() - r.consumed);
      p += from_piece;
      len -= from_piece;
      pos += from_piece;
      dec = std::make_unique<body_decoder>(head, lim);
    }
    response_result r = dec->feed(p, len, body);
    CHECK(r.consumed <= len && dec->body_bytes() <= lim.body_bytes_max);
    if (r.status == status::error) {
      o.summary += " body error " + std::string(name_of(r.error));
      break;
    }
    if (r.status == status::complete) {
      o.end = pos + r.consumed;
      CHECK(dec->done() && dec->finish_at_eof());
      break;
    }
    CHECK(r.consumed == len);
    pos += len;
  }
  o.body.assign(body.view());
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  response_limits lim;
  if (data[0] & 1) {
    lim.header_bytes_max = 64;
    lim.headers_max = 2;
    lim.body_bytes_max = 40;
  }
  request_method_kind method = data[0] & 2 ? request_method_kind::head : request_method_kind::other;
  ++data;
  --size;
  std::vector<size_t> pieces = rc::fuzz::split_points(data, size);
  const char* stream = reinterpret_cast<const char*>(data);
  std::vector<size_t> whole;
  if (size > 0) whole.push_back(size);
  CHECK(run(stream, whole, lim, method) == run(stream, pieces, lim, method));
  return 0;
}
