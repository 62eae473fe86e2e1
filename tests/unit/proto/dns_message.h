// dns_message: hand-assembled DNS messages for tests (the codec's unit tests and the fake DNS
// server of the resolver's tests). It writes bytes exactly as told, including broken ones, and
// shares no code with proto/dns.h, so the two cannot agree on a mistake. Unit tests only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rc::test {

struct dns_message {
  std::string bytes;

  dns_message& u8(unsigned v) {
    bytes.push_back(static_cast<char>(v & 0xff));
    return *this;
  }
  dns_message& u16(unsigned v) { return u8(v >> 8).u8(v); }
  dns_message& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  dns_message& raw(std::string_view s) {
    bytes.append(s);
    return *this;
  }

  // Header: id, flags (0x8180 = response, RD, RA, NOERROR) and the section counts.
  dns_message& header(uint16_t id, uint16_t flags, unsigned qd, unsigned an, unsigned ns = 0,
                      unsigned ar = 0) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  // Labels of a dotted name, uncompressed, with the root label unless `terminate` is false
  // (for a name that continues with a pointer).
  dns_message& name(std::string_view dotted, bool terminate = true) {
    size_t start = 0;
    while (start < dotted.size()) {
      size_t dot = dotted.find('.', start);
      if (dot == std::string_view::npos) dot = dotted.size();
      u8(static_cast<unsigned>(dot - start)).raw(dotted.substr(start, dot - start));
      start = dot + 1;
    }
    return terminate ? u8(0) : *this;
  }
  dns_message& pointer(unsigned offset) { return u16(0xc000 | offset); }
  dns_message& question(std::string_view qname, unsigned type) {
    return name(qname).u16(type).u16(1);
  }
  // A record's fixed part after its owner name: type, class IN, TTL, RDLENGTH.
  dns_message& rr_fixed(unsigned type, uint32_t ttl, unsigned rdlength) {
    return u16(type).u16(1).u32(ttl).u16(rdlength);
  }
  dns_message& a(std::string_view owner, uint32_t ttl, uint8_t a0, uint8_t a1, uint8_t a2,
                 uint8_t a3) {
    return name(owner).rr_fixed(1, ttl, 4).u8(a0).u8(a1).u8(a2).u8(a3);
  }
  // AAAA for 2001:db8::<last>.
  dns_message& aaaa(std::string_view owner, uint32_t ttl, uint8_t last) {
    name(owner).rr_fixed(28, ttl, 16).u16(0x2001).u16(0x0db8);
    for (int i = 0; i < 11; ++i) u8(0);
    return u8(last);
  }
  dns_message& cname(std::string_view owner, uint32_t ttl, std::string_view target) {
    name(owner).rr_fixed(5, ttl, static_cast<unsigned>(target.size() + 2));
    return name(target);
  }
  // SOA "ns.<zone> host.<zone>" with the given MINIMUM.
  dns_message& soa(std::string_view zone, uint32_t ttl, uint32_t minimum) {
    std::string ns = "ns." + std::string(zone), host = "host." + std::string(zone);
    name(zone).rr_fixed(6, ttl, static_cast<unsigned>(ns.size() + 2 + host.size() + 2 + 20));
    return name(ns).name(host).u32(1).u32(2).u32(3).u32(4).u32(minimum);
  }
};

// The id, name and type of a query (the fake server's view; no compression in queries).
struct dns_query_view {
  uint16_t id = 0;
  std::string name;
  unsigned type = 0;
  bool edns = false;
};

inline bool read_query(std::string_view q, dns_query_view& out) {
  if (q.size() < 17) return false;
  auto byte = [&](size_t i) { return static_cast<unsigned>(static_cast<uint8_t>(q[i])); };
  out.id = static_cast<uint16_t>(byte(0) << 8 | byte(1));
  size_t pos = 12;
  out.name.clear();
  while (pos < q.size() && byte(pos) != 0) {
    size_t len = byte(pos);
    if (pos + 1 + len >= q.size()) return false;
    if (!out.name.empty()) out.name.push_back('.');
    out.name.append(q.substr(pos + 1, len));
    pos += 1 + len;
  }
  if (pos + 5 > q.size()) return false;
  out.type = byte(pos + 1) << 8 | byte(pos + 2);
  out.edns = (byte(10) << 8 | byte(11)) == 1;
  return true;
}

}  // namespace rc::test
