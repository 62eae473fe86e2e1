#include "proto/url.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::url {
namespace {

endpoint ok(std::string_view text) {
  std::string error;
  auto e = parse(text, error);
  EXPECT_TRUE(e.has_value()) << text << ": " << error;
  EXPECT_TRUE(error.empty());
  return e.value_or(endpoint{});
}

std::string bad(std::string_view text) {
  std::string error;
  auto e = parse(text, error);
  EXPECT_FALSE(e.has_value()) << text;
  EXPECT_FALSE(error.empty()) << text;
  return error;
}

TEST(Url, SchemesAndDefaultPorts) {
  endpoint e = ok("http://example.com");
  EXPECT_EQ(e.kind, scheme::http);
  EXPECT_EQ(e.port, 80);
  EXPECT_FALSE(e.tls());
  EXPECT_FALSE(e.websocket());
  e = ok("https://example.com");
  EXPECT_EQ(e.kind, scheme::https);
  EXPECT_EQ(e.port, 443);
  EXPECT_TRUE(e.tls());
  e = ok("ws://example.com");
  EXPECT_EQ(e.port, 80);
  EXPECT_TRUE(e.websocket());
  EXPECT_FALSE(e.tls());
  e = ok("wss://example.com");
  EXPECT_EQ(e.port, 443);
  EXPECT_TRUE(e.websocket());
  EXPECT_TRUE(e.tls());
  EXPECT_EQ(ok("HTTPS://example.com").kind, scheme::https);  // schemes are case-insensitive
}

TEST(Url, HostPortAndBasePath) {
  endpoint e = ok("http://10.0.0.5:8000/v1");
  EXPECT_EQ(e.host, "10.0.0.5");
  EXPECT_TRUE(e.host_is_literal);
  EXPECT_EQ(e.port, 8000);
  EXPECT_EQ(e.base_path, "/v1");
  e = ok("https://API.Example.com/v1/");
  EXPECT_EQ(e.host, "api.example.com");
  EXPECT_FALSE(e.host_is_literal);
  EXPECT_EQ(e.base_path, "/v1");  // never ends with '/'
  EXPECT_EQ(ok("http://h/").base_path, "");
  EXPECT_EQ(ok("http://h//").base_path, "");
  EXPECT_EQ(ok("http://h").base_path, "");
  EXPECT_EQ(ok("http://h:1/a/b%2Fc/").base_path, "/a/b%2Fc");
  EXPECT_EQ(ok("http://my_service-1.local:65535").port, 65535);
  EXPECT_EQ(ok("http://localhost:8080/v1").host, "localhost");
}

TEST(Url, Ipv6Literals) {
  endpoint e = ok("http://[::1]:8000/v1");
  EXPECT_EQ(e.host, "::1");
  EXPECT_TRUE(e.host_is_literal);
  EXPECT_EQ(e.port, 8000);
  EXPECT_EQ(e.base_path, "/v1");
  e = ok("wss://[2001:DB8::5]");
  EXPECT_EQ(e.host, "2001:db8::5");
  EXPECT_EQ(e.port, 443);
}

TEST(Url, RefusesWithAReason) {
  EXPECT_EQ(bad(""), "empty URL");
  EXPECT_EQ(bad("example.com:80"), "missing scheme (expected http://, https://, ws:// or wss://)");
  EXPECT_EQ(bad("ftp://example.com"),
            "unsupported scheme \"ftp\" (expected http, https, ws or wss)");
  EXPECT_EQ(bad("http://"), "missing host");
  EXPECT_EQ(bad("http:///v1"), "missing host");
  EXPECT_EQ(bad("http://:80/v1"), "missing host");
  EXPECT_EQ(bad("http://h:0"), "port out of range (1-65535)");
  EXPECT_EQ(bad("http://h:65536"), "port out of range (1-65535)");
  EXPECT_EQ(bad("http://h:99999999999999999999"), "port out of range (1-65535)");
  EXPECT_EQ(bad("http://h:"), "empty port");
  EXPECT_EQ(bad("http://h:8x"), "bad port \"8x\"");
  EXPECT_EQ(bad("http://h:-1"), "bad port \"-1\"");
  EXPECT_EQ(bad("http://user:secret@h/v1"),
            "user info is not allowed in an upstream URL (put the key in api_key_env)");
  EXPECT_EQ(bad("http://h/v1?key=1"), "queries ('?') are not allowed in an upstream URL");
  EXPECT_EQ(bad("http://h/v1#x"), "fragments ('#') are not allowed in an upstream URL");
  EXPECT_EQ(bad("http://h /v1"),
            "URL contains a space, a control character or a non-ASCII byte");
  EXPECT_EQ(bad(" http://h"), "URL contains a space, a control character or a non-ASCII byte");
  EXPECT_EQ(bad("http://h\xc3\xa9"),
            "URL contains a space, a control character or a non-ASCII byte");
  EXPECT_EQ(bad("http://[::1"), "unterminated '[' in host");
  EXPECT_EQ(bad("http://[::1]x"), "unexpected text after ']' in host");
  EXPECT_EQ(bad("http://[::g]"), "bad IPv6 address \"::g\"");
  EXPECT_EQ(bad("http://[fe80::1%25eth0]"), "IPv6 zone ids are not supported");
  EXPECT_EQ(bad("http://[]"), "bad IPv6 address \"\"");
  EXPECT_EQ(bad("http://1.2.3"), "bad IPv4 address \"1.2.3\"");
  EXPECT_EQ(bad("http://1.2.3.256"), "bad IPv4 address \"1.2.3.256\"");
  EXPECT_EQ(bad("http://a..b"), "empty label in host \"a..b\"");
  EXPECT_EQ(bad("http://a.b."), "empty label in host \"a.b.\"");
  EXPECT_EQ(bad("http://a!b"), "invalid character in host \"a!b\"");
  EXPECT_EQ(bad("http://" + std::string(64, 'a')), "host label longer than 63 bytes");
  std::string long_host;
  for (int i = 0; i < 51; ++i) long_host += "abcd.";
  long_host += "ab";
  EXPECT_EQ(bad("http://" + long_host), "host name longer than 253 bytes");
  EXPECT_EQ(bad("http://h/a%2"), "bad percent-encoding in path");
  EXPECT_EQ(bad("http://h/a%zz"), "bad percent-encoding in path");
  EXPECT_EQ(bad("http://h/a\"b"), "invalid character in path \"/a?b\"");
  EXPECT_EQ(bad("http://h/" + std::string(2048, 'a')), "URL longer than 2048 bytes");
}

TEST(Url, ToStringWritesThePortOnlyWhenNotDefault) {
  EXPECT_EQ(to_string(ok("http://example.com:80/v1/")), "http://example.com/v1");
  EXPECT_EQ(to_string(ok("https://example.com:8443")), "https://example.com:8443");
  EXPECT_EQ(to_string(ok("ws://[::1]:80/x")), "ws://[::1]/x");
  EXPECT_EQ(to_string(ok("WSS://[::1]:9000/x")), "wss://[::1]:9000/x");
  EXPECT_EQ(to_string(ok("http://127.0.0.1:8000/v1")), "http://127.0.0.1:8000/v1");
}

TEST(Url, ToStringRoundTrips) {
  for (std::string_view text : {"http://a", "https://b.c:1/d/e", "ws://[::1]:2/", "wss://1.2.3.4/v1",
                                "http://x_y-z:443/%41"}) {
    endpoint e = ok(text);
    endpoint again = ok(to_string(e));
    EXPECT_EQ(again.kind, e.kind);
    EXPECT_EQ(again.host, e.host);
    EXPECT_EQ(again.port, e.port);
    EXPECT_EQ(again.base_path, e.base_path);
    EXPECT_EQ(again.host_is_literal, e.host_is_literal);
  }
}

}  // namespace
}  // namespace rc::url
