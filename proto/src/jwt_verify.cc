// JWT signatures with OpenSSL 3: HS256 (HMAC-SHA256, compared with CRYPTO_memcmp) and ES256
// (ECDSA P-256; the JWS signature is r||s, converted to the DER that EVP_DigestVerify takes).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstring>

#include "proto/jwt.h"

namespace rc::jwt {
namespace {

result refuse(status s, std::string message) {
  result r;
  r.status = s;
  r.message = std::move(message);
  return r;
}

enum class algorithm : uint8_t { hs256, es256 };

// Reads the header: which algorithm signs the token. On refusal, sets `why`.
std::optional<algorithm> read_header(json::parser& parser, std::string_view text, result& why) {
  json::parse_result p = parser.parse(text);
  if (!p.ok() || !p.root.is_object()) {
    why = refuse(status::bad_header, "the token's header is not a JSON object");
    return std::nullopt;
  }
  json::value alg = p.root.find("alg");
  if (!alg || !alg.is_string()) {
    why = refuse(status::bad_header, "the token's header has no 'alg'");
    return std::nullopt;
  }
  // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand.
  if (p.root.find("crit")) {
    why = refuse(status::bad_header, "the token's header has 'crit' extensions");
    return std::nullopt;
  }
  std::string_view a = alg.get_string();
  if (a == "HS256") return algorithm::hs256;
  if (a == "ES256") return algorithm::es256;
  why = refuse(status::unsupported_alg,
               a == "none" || a == "None" || a == "NONE"
                   ? std::string("unsigned tokens (alg none) are refused")
                   : "unsupported token algorithm (HS256 and ES256 are accepted)");
  return std::nullopt;
}

bool verify_hs256(const std::string& secret, std::string_view signed_part, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
            &mac_len)) {
    return false;
  }
  return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
}

bool verify_es256(EVP_PKEY* key, std::string_view signed_part, std::string_view sig) {
  if (sig.size() != 64) return false;
  const auto* raw = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
  if (!ecdsa || !r || !s || !ECDSA_SIG_set0(ecdsa, r, s)) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return false;
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(ecdsa, &der);
  ECDSA_SIG_free(ecdsa);
  if (der_len <= 0) return false;
  bool ok = false;
  if (EVP_MD_CTX* ctx = EVP_MD_CTX_new()) {
    ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                          reinterpret_cast<const unsigned char*>(signed_part.data()),
                          signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
  }
  OPENSSL_free(der);
  return ok;
}

}  // namespace

void verifier::pkey_free::operator()(evp_pkey_st* k) const {
  EVP_PKEY_free(k);
}

verifier::verifier() = default;
verifier::~verifier() = default;
verifier::verifier(verifier&&) noexcept = default;
verifier& verifier::operator=(verifier&&) noexcept = default;

std::string verifier::set_hs256_secret(std::string secret) {
  if (secret.size() < hs256_secret_bytes_min) {
    return "an HS256 secret must be at least " + std::to_string(hs256_secret_bytes_min) +
           " bytes (got " + std::to_string(secret.size()) + ")";
  }
  hs256_secret_ = std::move(secret);
  return {};
}

std::string verifier::set_es256_public_key_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return "out of memory";
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return "not a PEM public key (-----BEGIN PUBLIC KEY-----)";
  char group[64] = {};
  size_t group_len = 0;
  if (!EVP_PKEY_is_a(key, "EC") ||
      EVP_PKEY_get_group_name(key, group, sizeof group, &group_len) != 1 ||
      (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0)) {
    EVP_PKEY_free(key);
    return "an ES256 key must be an EC key on the P-256 curve (prime256v1)";
  }
  es256_key_.reset(key);
  return {};
}

result verifier::verify(json::parser& parser, std::string_view token, int64_t now_s) const {
  if (token.size() > token_bytes_max) {
    return refuse(status::too_large,
                  "the token is larger than " + std::to_string(token_bytes_max) + " bytes");
  }
  if (!looks_like_token(token)) {
    return refuse(status::malformed, "the token is not three dot-separated base64url parts");
  }
  size_t a = token.find('.'), b = token.rfind('.');
  std::string header, payload, sig;
  if (!base64url_decode(token.substr(0, a), header) ||
      !base64url_decode(token.substr(a + 1, b - a - 1), payload) ||
      !base64url_decode(token.substr(b + 1), sig)) {
    return refuse(status::malformed, "the token is not valid base64url");
  }
  result why;
  std::optional<algorithm> alg = read_header(parser, header, why);
  if (!alg) return why;
  std::string_view signed_part = token.substr(0, b);
  if (*alg == algorithm::hs256) {
    if (hs256_secret_.empty()) {
      return refuse(status::no_key, "HS256 tokens are not accepted by this server");
    }
    if (!verify_hs256(hs256_secret_, signed_part, sig)) {
      return refuse(status::bad_signature, "the token's signature does not verify");
    }
  } else {
    if (!es256_key_) return refuse(status::no_key, "ES256 tokens are not accepted by this server");
    if (!verify_es256(es256_key_.get(), signed_part, sig)) {
      return refuse(status::bad_signature, "the token's signature does not verify");
    }
  }
  return parse_claims(parser, payload, now_s);
}

}  // namespace rc::jwt
