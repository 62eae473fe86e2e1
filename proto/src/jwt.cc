// JWT structure and claims: base64url, the header, the claims. Signatures: jwt_verify.cc.
#include <array>
#include <cmath>

#include "proto/base64.h"
#include "proto/jwt.h"
#include "proto/topic_pattern.h"

namespace rc::jwt {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr auto decode_table = base64::make_decode_table(alphabet);

result refuse(status s, std::string message) {
  result r;
  r.status = s;
  r.message = std::move(message);
  return r;
}

// A NumericDate claim: a JSON number of seconds, in a range where int64 arithmetic is safe.
bool numeric_date(const json::value& v, int64_t& out) {
  if (!v.is_number()) return false;
  double d = v.get_double();
  if (!std::isfinite(d) || d < -1e15 || d > 1e15) return false;
  out = static_cast<int64_t>(std::floor(d));
  return true;
}

std::string add_topic(claims& c, const json::value& v, std::string_view claim) {
  if (!v.is_string()) return "claim '" + std::string(claim) + "' must hold strings";
  std::string_view pattern = v.get_string();
  if (std::string_view why = topic_pattern::check(pattern); !why.empty()) {
    return "claim '" + std::string(claim) + "': " + std::string(why);
  }
  if (c.topics.size() >= topics_max) {
    return "the token grants more than " + std::to_string(topics_max) + " topics";
  }
  c.topics.emplace_back(pattern);
  return {};
}

}  // namespace

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int8_t v = decode_table[static_cast<unsigned char>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits (2 or 4) must be zero, so each byte string has one encoding.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  return out;
}

bool looks_like_token(std::string_view s) {
  size_t a = s.find('.');
  if (a == 0 || a == std::string_view::npos) return false;
  size_t b = s.find('.', a + 1);
  if (b == a + 1 || b == std::string_view::npos || b + 1 == s.size()) return false;
  return s.find('.', b + 1) == std::string_view::npos;
}

result parse_claims(json::parser& parser, std::string_view text, int64_t now_s) {
  json::parse_result p = parser.parse(text);
  if (!p.ok() || !p.root.is_object()) {
    return refuse(status::bad_claims, "the token's claims are not a JSON object");
  }
  result r;
  claims& c = r.claims;
  json::value exp = p.root.find("exp");
  if (!exp) return refuse(status::bad_claims, "the token has no 'exp' claim (it must expire)");
  if (!numeric_date(exp, c.exp)) {
    return refuse(status::bad_claims, "claim 'exp' must be a number of seconds");
  }
  for (const char* name : {"nbf", "iat"}) {
    json::value v = p.root.find(name);
    if (!v) continue;
    int64_t t = 0;
    if (!numeric_date(v, t)) {
      return refuse(status::bad_claims, "claim '" + std::string(name) + "' must be a number");
    }
    (name[0] == 'n' ? c.nbf : c.iat) = t;
  }
  if (json::value sub = p.root.find("sub")) {
    if (!sub.is_string()) return refuse(status::bad_claims, "claim 'sub' must be a string");
    c.sub = std::string(sub.get_string());
  }
  if (json::value channels = p.root.find("channels")) {
    if (!channels.is_array()) {
      return refuse(status::bad_claims, "claim 'channels' must be an array of topic patterns");
    }
    for (json::value v : channels.elements()) {
      if (std::string err = add_topic(c, v, "channels"); !err.empty()) {
        return refuse(status::bad_claims, std::move(err));
      }
    }
  }
  if (json::value channel = p.root.find("channel")) {
    if (std::string err = add_topic(c, channel, "channel"); !err.empty()) {
      return refuse(status::bad_claims, std::move(err));
    }
  }
  if (c.topics.empty()) {
    return refuse(status::bad_claims, "the token grants no topics (claims 'channels', 'channel')");
  }
  if (now_s > c.exp + leeway_s) return refuse(status::expired, "the token has expired");
  if (c.nbf && now_s + leeway_s < *c.nbf) {
    return refuse(status::not_yet_valid, "the token is not valid yet (nbf)");
  }
  return r;
}

}  // namespace rc::jwt
