// DNS messages (RFC 1035 §4, RFC 3596 for AAAA): the stub resolver's half of the wire format.
// build_query() writes one recursive query (RD set) for an A or AAAA record; parse_answer()
// checks that a datagram answers that query and extracts the addresses.
//
// parse_answer() trusts nothing in the datagram. It must be a response (QR set, standard query
// opcode) with the expected id and exactly the question asked (name compared case-insensitively,
// RFC 4343); otherwise it is not_ours and the resolver keeps waiting, as a spoofed or stale
// datagram deserves. Names are read with compression pointers (§4.1.4) that must point strictly
// backwards, so following them always terminates, and at most name_bytes_max bytes long. Every
// record must fit in the message and an A or AAAA record's data must be exactly 4 or 16 bytes;
// anything else is malformed. When the server set TC (truncated), the sections may stop
// anywhere: parsing keeps the complete records before the cut and reports truncated, and the
// caller decides whether what it has is enough (we do not retry over TCP).
//
// The answer section may hold a CNAME chain in any order (RFC 1034 §3.6.2): it is followed from
// the question's name, at most chain_max links (loops end there), and only addresses owned by
// the chain's last name count. ttl_s is the smallest TTL along the way. A negative answer
// (NXDOMAIN, or NOERROR without addresses) carries the negative-caching TTL of RFC 2308 §5 when
// the authority section holds an SOA: min(SOA TTL, SOA MINIMUM).
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"

namespace rc::dns {

inline constexpr size_t name_bytes_max = 255;  // a name on the wire, RFC 1035 §2.3.4
inline constexpr size_t label_bytes_max = 63;
inline constexpr size_t chain_max = 16;       // CNAME links followed
inline constexpr size_t udp_bytes_max = 512;  // a reply without EDNS (RFC 1035 §4.2.1)
// The UDP payload we advertise with EDNS (DNS flag day 2020: no IP fragmentation).
inline constexpr uint16_t edns_udp_bytes = 1232;

enum class record_type : uint16_t { a = 1, cname = 5, soa = 6, aaaa = 28, opt = 41 };

// RCODE (RFC 1035 §4.1.1); values above refused are kept as the raw number.
enum class rcode : uint8_t {
  noerror = 0,
  formerr = 1,
  servfail = 2,
  nxdomain = 3,
  notimp = 4,
  refused = 5
};

enum class parse_status : uint8_t {
  ok,         // the answer to our question (see rcode and truncated for what it says)
  not_ours,   // not a response, another id or another question: ignore it and keep waiting
  malformed,  // ours by id and question, but broken: the server is faulty
};

struct address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // 4 bytes used for IPv4
  bool operator==(const address&) const = default;
};

struct answer {
  uint16_t id = 0;
  uint8_t rcode = 0;       // an rcode value, or another number the server sent
  bool truncated = false;  // TC: the server had more than fitted
  bool authoritative = false;
  std::vector<address> addresses;  // of the queried type, owned by the end of the CNAME chain
  std::string canonical_name;      // the end of the chain, lowercase, no trailing dot
  uint32_t ttl_s = 0;              // min TTL over the chain and the addresses (when any)
  std::optional<uint32_t> negative_ttl_s;  // from an SOA in the authority section
  std::string_view error;                  // for malformed: which check failed (a static string)
};

// Writes "name" as a query of `type` with `id` into `out` (replacing its contents). A trailing
// dot is allowed. With `edns`, an OPT record advertises edns_udp_bytes (RFC 6891). Returns false
// if the name cannot be a host name on the wire: empty, an empty label, a label over 63 bytes,
// over 255 bytes in all, or a byte other than letters, digits, '-' and '_'.
bool build_query(std::string_view name, record_type type, uint16_t id, bool edns, byte_buffer& out);

// Parses `msg` as the answer to the query build_query(name, type, id, …) wrote.
parse_status parse_answer(std::string_view msg, std::string_view name, record_type type,
                          uint16_t id, answer& out);

// "NXDOMAIN", "SERVFAIL", … or "RCODE 9".
std::string rcode_name(uint8_t rcode);

}  // namespace rc::dns
