// Fuzz target: bytes -> subscription tokens (proto/jwt.h) and topic patterns (topic_pattern.h).
//
// The first byte picks what the rest is:
//   0: a token, verified against an HS256 secret and an ES256 key made at start-up;
//   1: a claims document (parse_claims, as after a good signature);
//   2: "header\nclaims" JSON, signed here with the HS256 secret and then verified, so the fuzzer
//      reaches the claims through the whole verification path;
//   3: "pattern\ntopic" for topic_pattern::check and matches.
// Invariants, beyond "no crash, no leak, no UB":
// * base64url is canonical: whatever decodes re-encodes to the same text;
// * an accepted token's claims have an exp, 1..topics_max topics, each a valid pattern; exp and
//   nbf hold at the verification time (with the leeway);
// * a token this target signed itself never fails its signature check (unless its header asks
//   for ES256), and verifies exactly when its claims parse;
// * a pattern without wildcards matches only the identical topic.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/json_reader.h"
#include "proto/jwt.h"
#include "proto/topic_pattern.h"

namespace {

using namespace rc;

constexpr int64_t now = 1'800'000'000;
const std::string secret = "fuzz-secret-fuzz-secret-fuzz-secret-32";

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

const jwt::verifier& verifier() {
  static jwt::verifier v = [] {
    jwt::verifier out;
    check(out.set_hs256_secret(secret).empty(), "secret");
    EVP_PKEY* key = EVP_EC_gen("P-256");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    check(out.set_es256_public_key_pem(std::string_view(data, static_cast<size_t>(n))).empty(),
          "es256 key");
    BIO_free(bio);
    EVP_PKEY_free(key);
    return out;
  }();
  return v;
}

void check_accepted(const jwt::result& r) {
  if (!r.ok()) {
    check(!r.message.empty(), "a refusal says why");
    return;
  }
  const jwt::claims& c = r.claims;
  check(!c.topics.empty() && c.topics.size() <= jwt::topics_max, "topic count");
  for (const auto& t : c.topics) check(topic_pattern::check(t).empty(), "valid patterns");
  check(now <= c.exp + jwt::leeway_s, "not expired");
  check(!c.nbf || now + jwt::leeway_s >= *c.nbf, "already valid");
}

void check_base64url(std::string_view text) {
  std::string decoded;
  if (jwt::base64url_decode(text, decoded)) {
    check(jwt::base64url_encode(decoded) == text, "base64url round trip");
  }
}

std::string hs256_signature(std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

void self_signed(json::parser& parser, std::string_view rest) {
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return;
  std::string_view header = rest.substr(0, nl), claims = rest.substr(nl + 1);
  std::string input = jwt::base64url_encode(header) + "." + jwt::base64url_encode(claims);
  std::string token = input + "." + jwt::base64url_encode(hs256_signature(input));
  jwt::result r = verifier().verify(parser, token, now);
  check_accepted(r);
  if (r.status == jwt::status::bad_signature) {
    json::parse_result h = parser.parse(header);
    json::value alg = h.ok() && h.root.is_object() ? h.root.find("alg") : json::value();
    check(alg && alg.is_string() && alg.get_string() == "ES256", "own HS256 signature verifies");
  }
  if (r.ok()) {
    jwt::result direct = jwt::parse_claims(parser, claims, now);
    check(direct.ok() && direct.claims.topics == r.claims.topics, "same claims");
  }
}

void patterns(std::string_view rest) {
  size_t nl = rest.find('\n');
  std::string_view pattern = rest.substr(0, nl);
  std::string_view topic = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
  if (!topic_pattern::check(pattern).empty()) return;
  bool m = topic_pattern::matches(pattern, topic);
  if (pattern.find_first_of("*>") == std::string_view::npos) {
    check(m == (pattern == topic), "a literal pattern matches only itself");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static json::parser parser;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_base64url(rest);
  switch (data[0] % 4) {
    case 0:
      check_accepted(verifier().verify(parser, rest, now));
      break;
    case 1:
      check_accepted(jwt::parse_claims(parser, rest, now));
      break;
    case 2:
      self_signed(parser, rest);
      break;
    default:
      patterns(rest);
      break;
  }
  return 0;
}
