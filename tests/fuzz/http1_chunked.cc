// Fuzzes chunked_decoder alone: the input (after one byte choosing the limits and four choosing
// the split points) is a chunked body, decoded whole and in pieces; both must agree on the
// result, the decoded bytes and where the body ended, and never read past a piece.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
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

struct outcome {
  status st = status::incomplete;
  error err = error::none;
  size_t end = 0;  // offset in the stream where the body ended (complete only)
  std::string body;
  bool operator==(const outcome&) const = default;
};

outcome decode(const char* stream, const std::vector<size_t>& pieces, const limits& lim) {
  chunked_decoder dec(lim);
  rc::byte_buffer body;
  outcome o;
  size_t pos = 0;
  for (size_t n : pieces) {
    std::unique_ptr<char[]> copy(new char[n]);  // exact size: over-reads are ASan errors
    std::memcpy(copy.get(), stream + pos, n);
    result r = dec.feed(copy.get(), n, body);
    CHECK(r.consumed <= n);
    CHECK(dec.body_bytes() == body.size() && body.size() <= lim.body_bytes_max);
    if (r.status != status::incomplete) {
      o.st = r.status;
      o.err = r.error;
      CHECK((r.status == status::error) == (r.error != error::none));
      if (r.status == status::complete) {
        o.end = pos + r.consumed;
        // Feeding after the end changes nothing.
        result again = dec.feed(copy.get(), n, body);
        CHECK(again.status == status::complete && again.consumed == 0);
      }
      break;
    }
    CHECK(r.consumed == n);
    pos += n;
  }
  o.body.assign(body.view());
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  limits lim;
  if (data[0] & 1) lim = {64, 24, 2, 40};
  ++data;
  --size;
  std::vector<size_t> pieces = rc::fuzz::split_points(data, size);
  const char* stream = reinterpret_cast<const char*>(data);
  std::vector<size_t> whole;
  if (size > 0) whole.push_back(size);
  CHECK(decode(stream, whole, lim) == decode(stream, pieces, lim));
  return 0;
}
