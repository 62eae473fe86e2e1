#include "proto/dns.h"

#include <gtest/gtest.h>

#include <string>

#include "dns_message.h"
#include "guarded_input.h"

namespace rc::dns {
namespace {

using namespace std::literals;
using test::dns_message;

constexpr uint16_t ok_flags = 0x8180;  // response, RD, RA, NOERROR

std::string query(std::string_view name, record_type type, uint16_t id, bool edns = false) {
  byte_buffer b;
  EXPECT_TRUE(build_query(name, type, id, edns, b));
  return std::string(b.view());
}

// The start of an answer to `name`/`type`: header and question.
dns_message reply(uint16_t id, std::string_view name, unsigned type, unsigned an,
                  uint16_t flags = ok_flags, unsigned ns = 0) {
  dns_message m;
  m.header(id, flags, 1, an, ns).question(name, type);
  return m;
}

parse_status parse(const dns_message& m, std::string_view name, record_type type, uint16_t id,
                   answer& out) {
  static test::guarded_input guard;
  return parse_answer(guard.place(m.bytes), name, type, id, out);
}

TEST(DnsQuery, ByteExact) {
  EXPECT_EQ(query("Example.com", record_type::a, 0x1234),
            "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
            "\x07"
            "Example\x03"
            "com\x00\x00\x01\x00\x01"sv);
  EXPECT_EQ(query("example.com.", record_type::aaaa, 7),
            query("example.com", record_type::aaaa, 7));
  EXPECT_EQ(query("a", record_type::a, 1, true),
            "\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x01"
            "a\x00\x00\x01\x00\x01"
            "\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"sv);
}

TEST(DnsQuery, RefusesNamesThatCannotBeHostNames) {
  byte_buffer b;
  EXPECT_FALSE(build_query("", record_type::a, 1, false, b));
  EXPECT_FALSE(build_query(".", record_type::a, 1, false, b));
  EXPECT_FALSE(build_query("a..b", record_type::a, 1, false, b));
  EXPECT_FALSE(build_query(".a", record_type::a, 1, false, b));
  EXPECT_FALSE(build_query("a b", record_type::a, 1, false, b));
  EXPECT_FALSE(build_query("a\0b"sv, record_type::a, 1, false, b));
  EXPECT_FALSE(build_query(std::string(64, 'x') + ".com", record_type::a, 1, false, b));
  EXPECT_TRUE(build_query(std::string(63, 'x') + ".com", record_type::a, 1, false, b));
  std::string long_name;
  while (long_name.size() < 260) long_name += "abcdefghi.";
  EXPECT_FALSE(build_query(long_name, record_type::a, 1, false, b));
  EXPECT_TRUE(build_query("my_host-1.Example.COM", record_type::a, 1, false, b));
}

TEST(DnsAnswer, AddressesWithCompressedOwner) {
  dns_message m = reply(9, "api.example.com", 1, 2);
  m.pointer(12).rr_fixed(1, 300, 4).u8(10).u8(0).u8(0).u8(1);
  m.pointer(12).rr_fixed(1, 60, 4).u8(10).u8(0).u8(0).u8(2);
  answer a;
  ASSERT_EQ(parse(m, "API.example.com.", record_type::a, 9, a), parse_status::ok);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_FALSE(a.truncated);
  ASSERT_EQ(a.addresses.size(), 2u);
  EXPECT_FALSE(a.addresses[0].v6);
  EXPECT_EQ(a.addresses[1].bytes[3], 2);
  EXPECT_EQ(a.ttl_s, 60u);
  EXPECT_EQ(a.canonical_name, "api.example.com");
}

TEST(DnsAnswer, Aaaa) {
  dns_message m = reply(3, "v6.test", 28, 1);
  m.aaaa("v6.test", 30, 0x42);
  answer a;
  ASSERT_EQ(parse(m, "v6.test", record_type::aaaa, 3, a), parse_status::ok);
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_TRUE(a.addresses[0].v6);
  EXPECT_EQ(a.addresses[0].bytes[0], 0x20);
  EXPECT_EQ(a.addresses[0].bytes[15], 0x42);
}

TEST(DnsAnswer, SomebodyElsesDatagramIsNotOurs) {
  answer a;
  dns_message good = reply(5, "x.test", 1, 1);
  good.a("x.test", 1, 1, 2, 3, 4);
  EXPECT_EQ(parse(good, "x.test", record_type::a, 6, a), parse_status::not_ours);     // id
  EXPECT_EQ(parse(good, "y.test", record_type::a, 5, a), parse_status::not_ours);     // name
  EXPECT_EQ(parse(good, "x.test", record_type::aaaa, 5, a), parse_status::not_ours);  // type
  dns_message q;
  q.raw(query("x.test", record_type::a, 5));
  EXPECT_EQ(parse(q, "x.test", record_type::a, 5, a), parse_status::not_ours);  // a query
  dns_message two;
  two.header(5, ok_flags, 2, 0).question("x.test", 1).question("x.test", 1);
  EXPECT_EQ(parse(two, "x.test", record_type::a, 5, a), parse_status::not_ours);
  dns_message noerror_empty;
  noerror_empty.header(5, ok_flags, 0, 0);
  EXPECT_EQ(parse(noerror_empty, "x.test", record_type::a, 5, a), parse_status::not_ours);
  dns_message tiny;
  tiny.u16(5);
  EXPECT_EQ(parse(tiny, "x.test", record_type::a, 5, a), parse_status::not_ours);
}

TEST(DnsAnswer, CnameChainInAnyOrder) {
  dns_message m = reply(1, "a.test", 1, 4);
  m.a("c.test", 100, 192, 0, 2, 7);
  m.a("other.test", 100, 192, 0, 2, 99);  // not on the chain
  m.cname("b.test", 50, "c.test");
  m.cname("a.test", 200, "b.test");
  answer a;
  ASSERT_EQ(parse(m, "a.test", record_type::a, 1, a), parse_status::ok);
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_EQ(a.addresses[0].bytes[3], 7);
  EXPECT_EQ(a.canonical_name, "c.test");
  EXPECT_EQ(a.ttl_s, 50u);
}

TEST(DnsAnswer, CnameLoopIsMalformed) {
  dns_message m = reply(1, "a.test", 1, 2);
  m.cname("a.test", 10, "b.test");
  m.cname("b.test", 10, "a.test");
  answer a;
  EXPECT_EQ(parse(m, "a.test", record_type::a, 1, a), parse_status::malformed);
  EXPECT_FALSE(a.error.empty());
}

TEST(DnsAnswer, NxdomainCarriesTheNegativeTtl) {
  dns_message m = reply(4, "gone.test", 1, 0, 0x8183, 1);
  m.soa("test", 600, 30);
  answer a;
  ASSERT_EQ(parse(m, "gone.test", record_type::a, 4, a), parse_status::ok);
  EXPECT_EQ(a.rcode, static_cast<uint8_t>(rcode::nxdomain));
  EXPECT_TRUE(a.addresses.empty());
  ASSERT_TRUE(a.negative_ttl_s);
  EXPECT_EQ(*a.negative_ttl_s, 30u);
  EXPECT_EQ(rcode_name(a.rcode), "NXDOMAIN");
  EXPECT_EQ(rcode_name(11), "RCODE 11");
}

TEST(DnsAnswer, ErrorWithoutQuestionIsAccepted) {
  dns_message m;
  m.header(4, 0x8182, 0, 0);  // SERVFAIL
  answer a;
  ASSERT_EQ(parse(m, "x.test", record_type::a, 4, a), parse_status::ok);
  EXPECT_EQ(a.rcode, static_cast<uint8_t>(rcode::servfail));
}

TEST(DnsAnswer, TruncatedKeepsCompleteRecords) {
  dns_message m = reply(2, "t.test", 1, 3, 0x8380);  // TC set
  m.a("t.test", 10, 1, 1, 1, 1);
  m.name("t.test").u16(1);  // the second record is cut after its type
  answer a;
  ASSERT_EQ(parse(m, "t.test", record_type::a, 2, a), parse_status::ok);
  EXPECT_TRUE(a.truncated);
  EXPECT_EQ(a.addresses.size(), 1u);

  dns_message not_flagged = reply(2, "t.test", 1, 3);
  not_flagged.a("t.test", 10, 1, 1, 1, 1).name("t.test").u16(1);
  EXPECT_EQ(parse(not_flagged, "t.test", record_type::a, 2, a), parse_status::malformed);
}

TEST(DnsAnswer, PointerLoopsAndForwardPointersAreRefused) {
  answer a;
  dns_message self = reply(1, "p.test", 1, 1);
  size_t here = self.bytes.size();
  self.pointer(static_cast<unsigned>(here)).rr_fixed(1, 1, 4).u32(0);
  EXPECT_EQ(parse(self, "p.test", record_type::a, 1, a), parse_status::malformed);

  dns_message forward = reply(1, "p.test", 1, 1);
  here = forward.bytes.size();
  forward.pointer(static_cast<unsigned>(here + 2)).u8(0).rr_fixed(1, 1, 4).u32(0);
  EXPECT_EQ(parse(forward, "p.test", record_type::a, 1, a), parse_status::malformed);

  // A question name that points at itself cannot be our question.
  dns_message q;
  q.header(1, ok_flags, 1, 0).pointer(12).u16(1).u16(1);
  EXPECT_EQ(parse(q, "p.test", record_type::a, 1, a), parse_status::not_ours);
}

TEST(DnsAnswer, OverlongNameThroughPointersIsRefused) {
  // Each name adds 60 bytes and points back at the previous one: the last is over 255 bytes.
  dns_message m = reply(1, "p.test", 1, 1);
  std::string label(59, 'x');
  size_t prev = 12;
  for (int i = 0; i < 5; ++i) {
    size_t at = m.bytes.size();
    m.u8(59).raw(label).pointer(static_cast<unsigned>(prev));
    prev = at;
  }
  dns_message tail = m;
  tail.pointer(static_cast<unsigned>(prev)).rr_fixed(1, 1, 4).u32(0);
  answer a;
  EXPECT_EQ(parse(tail, "p.test", record_type::a, 1, a), parse_status::malformed);
}

TEST(DnsAnswer, AddressOfTheWrongSizeIsMalformed) {
  dns_message m = reply(1, "w.test", 1, 1);
  m.name("w.test").rr_fixed(1, 1, 5).u32(0).u8(0);
  answer a;
  EXPECT_EQ(parse(m, "w.test", record_type::a, 1, a), parse_status::malformed);
}

TEST(DnsAnswer, HugeTtlCountsAsZero) {
  dns_message m = reply(1, "h.test", 1, 1);
  m.a("h.test", 0x80000000u, 1, 2, 3, 4);
  answer a;
  ASSERT_EQ(parse(m, "h.test", record_type::a, 1, a), parse_status::ok);
  EXPECT_EQ(a.ttl_s, 0u);
}

TEST(DnsAnswer, EveryPrefixIsSafe) {
  dns_message m = reply(8, "a.test", 1, 2, ok_flags, 1);
  m.cname("a.test", 10, "b.test");
  m.pointer(static_cast<unsigned>(m.bytes.size() - 8)).rr_fixed(1, 5, 4).u32(0x01020304);
  m.soa("test", 5, 5);
  answer full;
  ASSERT_EQ(parse(m, "a.test", record_type::a, 8, full), parse_status::ok);
  ASSERT_EQ(full.addresses.size(), 1u);
  for (size_t n = 0; n < m.bytes.size(); ++n) {
    dns_message cut;
    cut.bytes = m.bytes.substr(0, n);
    answer a;
    parse_status s = parse(cut, "a.test", record_type::a, 8, a);
    EXPECT_NE(s, parse_status::ok) << n;  // the counts promise more than there is
  }
}

}  // namespace
}  // namespace rc::dns
