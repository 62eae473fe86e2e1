// The fields that decide framing and connection handling for parse_head (RFC 9110 §7.2, §7.6.1,
// §8.6, §10.1.1; RFC 9112 §6), gathered while the fields are parsed and judged together when the
// head is complete.
//
// Private to proto/src. Thread-safety: pure functions over the caller's data.
#pragma once

#include <cstdint>
#include <string_view>

#include "http1_chars.h"
#include "proto/http1_parser.h"

namespace rc::http1 {

struct field_facts {
  uint32_t host_count = 0;
  bool content_length_seen = false;
  bool transfer_encoding_seen = false;
  bool te_malformed = false;     // an empty or non-token coding, or chunked with parameters
  bool te_other = false;         // a well-formed coding other than chunked
  bool te_chunked_last = false;  // the last coding seen so far is chunked
  uint32_t te_chunked_count = 0;
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  bool upgrade_field = false;
  bool expect_continue = false;
};

// A cheap inline filter for apply_field: false for every field it would ignore, which is most.
inline bool field_may_matter(std::string_view name) {
  char first = static_cast<char>(name[0] | 0x20);
  switch (name.size()) {
    case 4:
      return first == 'h';  // host
    case 6:
      return first == 'e';  // expect
    case 7:
      return first == 'u';  // upgrade
    case 10:
      return first == 'c';  // connection
    case 14:
      return first == 'c';  // content-length
    case 17:
      return first == 't';  // transfer-encoding
    default:
      return false;
  }
}

// Records what field `h` says; returns an error that this one field already proves.
error apply_field(const header& h, field_facts& facts, request& out);

// Judges the fields together and fills in the request's framing and connection members.
error finish_fields(const field_facts& facts, const limits& lim, request& out);

bool equals_ignore_case(std::string_view a, std::string_view b);

// The value of the first of `count` fields named `name` (case-insensitive), or empty: request and
// response heads alike.
std::string_view find_field(const header* headers, uint32_t count, std::string_view name);
// Whether a list-valued field named `name` holds `token` (case-insensitive), in any of its lines.
bool fields_have_token(const header* headers, uint32_t count, std::string_view name,
                       std::string_view token);

// Calls fn(element) for each comma-separated element of a list-valued field, trimmed of OWS and
// including empty ones, until fn returns false.
template <typename Fn>
void for_each_element(std::string_view v, Fn&& fn) {
  for (;;) {
    size_t comma = v.find(',');
    if (!fn(chars::trim_ows(v.substr(0, comma)))) return;
    if (comma == std::string_view::npos) return;
    v.remove_prefix(comma + 1);
  }
}

}  // namespace rc::http1
