// Fuzz target: the DNS answer parser. Input: byte 0 picks the question (bit 0: AAAA, bits 1-2:
// one of four names), bytes 1-2 the id, the rest is the datagram. Invariants: no crash or
// over-read; an answer's addresses are of the type asked; parsing is deterministic. And the
// query builder's output, turned into an empty response, parses as an answer to itself.
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/dns.h"

namespace {

using rc::dns::answer;
using rc::dns::parse_status;
using rc::dns::record_type;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::string_view names[] = {"a.test", "api.example.com", "x", "Mixed.Case.Test."};

// Builds a query for `name` and answers it with an empty NOERROR response.
void check_query_round_trip(std::string_view name, record_type type, uint16_t id) {
  rc::byte_buffer q;
  if (!rc::dns::build_query(name, type, id, (id & 1) != 0, q)) return;
  std::string r(q.view());
  r[2] = static_cast<char>(r[2] | 0x80);  // QR
  answer a;
  check(rc::dns::parse_answer(r, name, type, id, a) == parse_status::ok);
  check(a.addresses.empty() && a.rcode == 0 && !a.truncated);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  record_type type = (data[0] & 1) ? record_type::aaaa : record_type::a;
  std::string_view name = names[(data[0] >> 1) & 3];
  auto id = static_cast<uint16_t>(data[1] << 8 | data[2]);
  std::string_view msg(reinterpret_cast<const char*>(data) + 3, size - 3);
  answer a, again;
  parse_status s = rc::dns::parse_answer(msg, name, type, id, a);
  check(rc::dns::parse_answer(msg, name, type, id, again) == s);
  if (s == parse_status::ok) {
    check(a.addresses == again.addresses && a.ttl_s == again.ttl_s);
    for (const auto& addr : a.addresses) check(addr.v6 == (type == record_type::aaaa));
    check(a.canonical_name.size() <= 4 * rc::dns::name_bytes_max);
  } else if (s == parse_status::malformed) {
    check(!a.error.empty());
  }
  // The payload as a name: a query built from it answers to itself.
  if (msg.size() <= 300) check_query_round_trip(msg, type, id);
  return 0;
}
