// JSON Web Tokens (RFC 7519, JWS compact serialization, RFC 7515) for subscription tokens: a
// backend signs a short-lived token naming the topics a browser may subscribe to, and ringcast
// checks it without calling anyone (docs/api.md, "Subscription tokens").
//
// Accepted: alg HS256 (HMAC-SHA256 with a shared secret) and ES256 (ECDSA P-256 + SHA-256, the
// signature as the 64-byte r||s of RFC 7518 §3.4), each only when its key is configured. Refused
// with a reason: alg "none" or any other alg, an alg whose key is not configured, a "crit"
// header, bad base64url (padding, stray characters or non-zero trailing bits), bad JSON, a
// signature that does not verify (HMAC compared in constant time), tokens over token_bytes_max.
//
// Claims: "exp" (required; NumericDate seconds), "nbf" and "iat" (optional numbers), "sub"
// (optional string: who the token is for), and the topics it grants as patterns
// (proto/topic_pattern.h): "channels" (an array of strings) and/or "channel" (one string), the
// names Centrifugo's tokens use. At least one topic is required, at most topics_max. exp and nbf
// are checked with leeway_s of tolerance for clock skew. Other claims are ignored.
//
// Thread-safety: a verifier is configured once, then verify() may run on any number of threads
// at once (the keys are only read). parse_claims and base64url_decode are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/json_reader.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace rc::jwt {

inline constexpr size_t token_bytes_max = 8192;
inline constexpr int64_t leeway_s = 30;
inline constexpr size_t topics_max = 256;
inline constexpr size_t hs256_secret_bytes_min = 32;  // RFC 7518 §3.2: at least the hash size

enum class status : uint8_t {
  ok,
  too_large,        // over token_bytes_max
  malformed,        // not three dot-separated base64url segments, or bad base64url
  bad_header,       // the header is not a JSON object with a string "alg", or has "crit"
  unsupported_alg,  // "none", or an alg other than HS256 / ES256
  no_key,           // HS256 or ES256 without a configured key for it
  bad_signature,
  bad_claims,  // not a JSON object, a claim of the wrong type, no topics, a bad topic pattern
  expired,
  not_yet_valid,
};

struct claims {
  int64_t exp = 0;
  std::optional<int64_t> nbf, iat;
  std::string sub;
  std::vector<std::string> topics;  // patterns from "channels" and "channel"
};

struct result {
  jwt::status status = status::ok;
  std::string message;  // why it was refused, for the client (never echoes the token)
  jwt::claims claims;
  bool ok() const { return status == status::ok; }
};

// Decodes unpadded base64url (RFC 4648 §5) into `out` (replacing its content). False on '=',
// a character outside the alphabet, a length of 1 mod 4, or non-zero trailing bits.
bool base64url_decode(std::string_view in, std::string& out);
// Encodes unpadded base64url (for tests and token minting).
std::string base64url_encode(std::string_view in);

// Reads the claims of a token whose signature was verified, and checks exp and nbf against
// `now_s`. `json` need not be padded.
result parse_claims(json::parser& parser, std::string_view json, int64_t now_s);

// Whether `s` looks like a compact JWS (three non-empty dot-separated segments), i.e. whether an
// "Authorization: Bearer" value should be tried as a token rather than as an API key.
bool looks_like_token(std::string_view s);

class verifier {
 public:
  verifier();
  ~verifier();
  verifier(verifier&&) noexcept;
  verifier& operator=(verifier&&) noexcept;

  // Both return an error message, or empty.
  std::string set_hs256_secret(std::string secret);
  std::string set_es256_public_key_pem(std::string_view pem);

  bool configured() const { return !hs256_secret_.empty() || es256_key_; }

  // Verifies `token` and returns its claims, or why it is refused.
  result verify(json::parser& parser, std::string_view token, int64_t now_s) const;

 private:
  struct pkey_free {
    void operator()(evp_pkey_st* k) const;
  };
  std::string hs256_secret_;
  std::unique_ptr<evp_pkey_st, pkey_free> es256_key_;
};

}  // namespace rc::jwt
