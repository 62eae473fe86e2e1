#include "proto/dns.h"

#include <algorithm>
#include <limits>

namespace rc::dns {
namespace {

constexpr size_t header_bytes = 12;
constexpr uint16_t class_in = 1;
constexpr uint16_t flag_qr = 0x8000;
constexpr uint16_t flag_aa = 0x0400;
constexpr uint16_t flag_tc = 0x0200;
constexpr uint16_t flag_rd = 0x0100;

uint16_t be16(std::string_view m, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[at]) << 8) |
                               static_cast<uint8_t>(m[at + 1]));
}

uint32_t be32(std::string_view m, size_t at) {
  return (uint32_t{be16(m, at)} << 16) | be16(m, at + 2);
}

void put16(byte_buffer& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// The question's name as parse_answer() renders names: lowercase, no trailing dot.
std::string normalized(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string s(name);
  for (char& c : s) c = lower(c);
  return s;
}

enum class rr_result : uint8_t { ok, cut /* runs off the end */, bad };

// Reads the name at `pos` into `out`, lowercase and dotted (a '.' or '\' inside a label is
// escaped with '\', so two different names never render alike). `next` is set to the byte after
// the name where it sits (after its first pointer, or after the root label). Pointers must point
// strictly before the labels that led to them, which rules out loops; the name may have at most
// name_bytes_max bytes on the wire.
rr_result read_name(std::string_view m, size_t pos, std::string& out, size_t& next) {
  out.clear();
  size_t wire_bytes = 1;  // the root label
  size_t run_start = pos;
  bool jumped = false;
  for (;;) {
    if (pos >= m.size()) return rr_result::cut;
    auto len = static_cast<uint8_t>(m[pos]);
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= m.size()) return rr_result::cut;
      size_t target = (size_t{len & 0x3fu} << 8) | static_cast<uint8_t>(m[pos + 1]);
      if (!jumped) next = pos + 2;
      jumped = true;
      if (target >= run_start) return rr_result::bad;
      pos = run_start = target;
      continue;
    }
    if (len & 0xc0) return rr_result::bad;  // 0x40 and 0x80 label types are obsolete or unassigned
    if (len == 0) {
      if (!jumped) next = pos + 1;
      return rr_result::ok;
    }
    wire_bytes += 1 + len;
    if (wire_bytes > name_bytes_max) return rr_result::bad;
    if (pos + 1 + len > m.size()) return rr_result::cut;
    if (!out.empty()) out.push_back('.');
    for (size_t i = pos + 1; i <= pos + len; ++i) {
      char c = lower(m[i]);
      if (c == '.' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    pos += 1 + len;
  }
}

struct record {
  std::string owner;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl_s = 0;
  size_t data_at = 0;  // rdata offset in the message
  uint16_t data_bytes = 0;
};

// Reads the resource record at `pos` (RFC 1035 §4.1.3) and moves `pos` past it.
rr_result read_record(std::string_view m, size_t& pos, record& r) {
  size_t next = 0;
  if (rr_result res = read_name(m, pos, r.owner, next); res != rr_result::ok) return res;
  if (next + 10 > m.size()) return rr_result::cut;
  r.type = be16(m, next);
  r.klass = be16(m, next + 2);
  uint32_t ttl = be32(m, next + 4);
  r.ttl_s = ttl > uint32_t{std::numeric_limits<int32_t>::max()} ? 0 : ttl;  // RFC 2181 §8
  r.data_bytes = be16(m, next + 8);
  r.data_at = next + 10;
  if (r.data_at + r.data_bytes > m.size()) return rr_result::cut;
  pos = r.data_at + r.data_bytes;
  return rr_result::ok;
}

// Follows the CNAME chain from `qname` and collects the addresses at its end.
parse_status follow_chain(std::string_view m, const std::vector<record>& rrs, std::string qname,
                          record_type type, answer& out) {
  uint32_t ttl = std::numeric_limits<uint32_t>::max();
  std::string current = std::move(qname);
  for (size_t links = 0;; ++links) {
    for (const record& r : rrs) {
      if (r.type != static_cast<uint16_t>(type) || r.owner != current) continue;
      address a;
      a.v6 = type == record_type::aaaa;
      std::copy_n(m.data() + r.data_at, r.data_bytes, a.bytes.data());
      out.addresses.push_back(a);
      ttl = std::min(ttl, r.ttl_s);
    }
    if (!out.addresses.empty()) break;
    auto cname = std::find_if(rrs.begin(), rrs.end(), [&](const record& r) {
      return r.type == static_cast<uint16_t>(record_type::cname) && r.owner == current;
    });
    if (cname == rrs.end()) break;
    if (links == chain_max) {
      out.error = "CNAME chain too long or looping";
      return parse_status::malformed;
    }
    size_t next = 0;
    if (read_name(m, cname->data_at, current, next) != rr_result::ok ||
        next > cname->data_at + cname->data_bytes) {
      out.error = "bad CNAME target";
      return parse_status::malformed;
    }
    ttl = std::min(ttl, cname->ttl_s);
  }
  out.canonical_name = std::move(current);
  out.ttl_s = ttl == std::numeric_limits<uint32_t>::max() ? 0 : ttl;
  return parse_status::ok;
}

// The authority section: an SOA gives the negative-caching TTL (RFC 2308 §5).
rr_result read_authority(std::string_view m, size_t& pos, uint16_t count, answer& out) {
  record r;
  std::string scratch;
  for (uint16_t i = 0; i < count; ++i) {
    rr_result res = read_record(m, pos, r);
    if (res != rr_result::ok) return res;
    if (r.type != static_cast<uint16_t>(record_type::soa) || r.klass != class_in) continue;
    size_t at = r.data_at, next = 0;
    size_t end = r.data_at + r.data_bytes;
    if (read_name(m, at, scratch, next) != rr_result::ok || next > end) return rr_result::bad;
    if (read_name(m, next, scratch, at) != rr_result::ok || at + 20 > end) return rr_result::bad;
    uint32_t minimum = be32(m, at + 16);
    if (!out.negative_ttl_s) out.negative_ttl_s = std::min(r.ttl_s, minimum);
  }
  return rr_result::ok;
}

}  // namespace

bool build_query(std::string_view name, record_type type, uint16_t id, bool edns,
                 byte_buffer& out) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() + 2 > name_bytes_max) return false;
  out.clear();
  put16(out, id);
  put16(out, flag_rd);
  put16(out, 1);  // QDCOUNT
  put16(out, 0);
  put16(out, 0);
  put16(out, edns ? 1 : 0);  // ARCOUNT: the OPT record
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > label_bytes_max) return false;
    if (!std::all_of(label.begin(), label.end(), host_byte)) return false;
    out.push_back(static_cast<char>(label.size()));
    out.append(label);
    start = dot + 1;
  }
  out.push_back('\0');
  put16(out, static_cast<uint16_t>(type));
  put16(out, class_in);
  if (edns) {
    out.push_back('\0');  // the root owns OPT
    put16(out, static_cast<uint16_t>(record_type::opt));
    put16(out, edns_udp_bytes);  // CLASS: the UDP payload we accept
    put16(out, 0);               // TTL: extended RCODE, version 0, no DO bit
    put16(out, 0);
    put16(out, 0);  // RDLENGTH
  }
  return true;
}

parse_status parse_answer(std::string_view m, std::string_view name, record_type type, uint16_t id,
                          answer& out) {
  out = answer{};
  if (m.size() < header_bytes || be16(m, 0) != id) return parse_status::not_ours;
  uint16_t flags = be16(m, 2);
  if (!(flags & flag_qr) || ((flags >> 11) & 0xf) != 0) return parse_status::not_ours;
  out.id = id;
  out.rcode = flags & 0xf;
  out.truncated = flags & flag_tc;
  out.authoritative = flags & flag_aa;
  uint16_t qd = be16(m, 4), an = be16(m, 6), ns = be16(m, 8);
  if (qd == 0) {
    // Servers that refuse or fail to parse a query may answer without echoing the question.
    bool error = out.rcode == static_cast<uint8_t>(rcode::formerr) ||
                 out.rcode == static_cast<uint8_t>(rcode::servfail) ||
                 out.rcode == static_cast<uint8_t>(rcode::notimp) ||
                 out.rcode == static_cast<uint8_t>(rcode::refused);
    return error ? parse_status::ok : parse_status::not_ours;
  }
  std::string qname;
  size_t pos = 0;
  if (qd != 1 || read_name(m, header_bytes, qname, pos) != rr_result::ok || pos + 4 > m.size())
    return parse_status::not_ours;
  if (qname != normalized(name) || be16(m, pos) != static_cast<uint16_t>(type) ||
      be16(m, pos + 2) != class_in)
    return parse_status::not_ours;
  pos += 4;
  std::vector<record> rrs;
  rr_result res = rr_result::ok;
  for (uint16_t i = 0; i < an && res == rr_result::ok; ++i) {
    record r;
    res = read_record(m, pos, r);
    if (res != rr_result::ok || r.klass != class_in) continue;
    bool addr = r.type == static_cast<uint16_t>(record_type::a) ||
                r.type == static_cast<uint16_t>(record_type::aaaa);
    if (addr && r.data_bytes != (r.type == static_cast<uint16_t>(record_type::a) ? 4 : 16)) {
      out.error = "address record of the wrong size";
      return parse_status::malformed;
    }
    rrs.push_back(std::move(r));
  }
  if (res == rr_result::ok) res = read_authority(m, pos, ns, out);
  if (res == rr_result::bad || (res == rr_result::cut && !out.truncated)) {
    out.error = res == rr_result::bad ? "bad name or record" : "record past the end of the message";
    return parse_status::malformed;
  }
  return follow_chain(m, rrs, qname, type, out);
}

std::string rcode_name(uint8_t code) {
  static constexpr std::string_view names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                               "NXDOMAIN", "NOTIMP",  "REFUSED"};
  if (code < std::size(names)) return std::string(names[code]);
  return "RCODE " + std::to_string(code);
}

}  // namespace rc::dns
