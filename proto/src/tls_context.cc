// TLS contexts: the SSL_CTX settings shared by every session of one upstream (client) or one
// listener (server). See proto/tls.h.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <mutex>
#include <string>

#include "proto/tls.h"
#include "tls_internal.h"

namespace rc::tls {
namespace {

// ALPN wire format: length-prefixed protocol names.
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Settings both roles share. TLS 1.2 is the floor: older versions are off by default at
// OpenSSL's security level 2 anyway, but saying so here keeps it true whatever the system's
// openssl.cnf says. Renegotiation is refused (a server could otherwise restart the handshake
// mid-stream, which a bytes-in/bytes-out caller never expects). RELEASE_BUFFERS frees the
// 16 KiB record buffers of idle sessions: pooled keep-alive connections are mostly idle.
bool common_setup(SSL_CTX* ctx, int max_version, std::string& error) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      (max_version != 0 && SSL_CTX_set_max_proto_version(ctx, max_version) != 1)) {
    error = "cannot set the TLS protocol versions";
    return false;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return true;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, alpn_http11, sizeof alpn_http11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// The system store, loaded once per process and shared by every context that uses it: parsing
// Debian's ~150 roots takes tens of milliseconds, too long to repeat per upstream and per shard
// on a reactor thread. X509_STORE is reference counted and locks its own cache, so sessions on
// different threads may verify against it at once. nullptr (and `error`) if it cannot be loaded.
X509_STORE* system_store(std::string& error) {
  static std::once_flag once;
  static X509_STORE* store = nullptr;
  static std::string load_error;
  std::call_once(once, [] {
    X509_STORE* s = X509_STORE_new();
    if (s && X509_STORE_set_default_paths(s) == 1) {
      store = s;
      return;
    }
    X509_STORE_free(s);
    load_error = openssl_error_text("cannot load the system CA store");
  });
  if (!store) error = load_error;
  return store;
}

}  // namespace

std::string openssl_error_text(const char* what) {
  std::string out = what;
  // The first queued error that has words: a system error (errno, e.g. a missing file) or a
  // library reason. Codes without a string are skipped.
  while (unsigned long e = ERR_get_error()) {
    const char* reason =
        ERR_SYSTEM_ERROR(e) ? std::strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
    if (reason) {
      out += ": ";
      out += reason;
      break;
    }
  }
  ERR_clear_error();
  return out;
}

std::unique_ptr<client_context> client_context::create(const client_options& opts,
                                                       std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = openssl_error_text("cannot create a TLS client context");
    return nullptr;
  }
  std::unique_ptr<client_context> out(new client_context(ctx, opts.verify));
  if (!common_setup(ctx, 0, error)) return nullptr;
  // SSL_CTX_set_alpn_protos returns 0 on success, unlike the rest of the API.
  if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof alpn_http11) != 0) {
    error = openssl_error_text("cannot set ALPN");
    return nullptr;
  }
  if (!opts.ca_file.empty()) {
    if (SSL_CTX_load_verify_file(ctx, opts.ca_file.c_str()) != 1) {
      error = openssl_error_text(("cannot load ca_file " + opts.ca_file).c_str());
      return nullptr;
    }
  } else {
    X509_STORE* store = system_store(error);
    if (!store) return nullptr;
    SSL_CTX_set1_cert_store(ctx, store);  // takes a reference
  }
  SSL_CTX_set_verify(ctx, opts.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return out;
}

client_context::~client_context() {
  SSL_CTX_free(ctx_);
}

std::unique_ptr<server_context> server_context::create(const server_options& opts,
                                                       std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = openssl_error_text("cannot create a TLS server context");
    return nullptr;
  }
  std::unique_ptr<server_context> out(new server_context(ctx));
  if (!common_setup(ctx, opts.max_version, error)) return nullptr;
  if (SSL_CTX_use_certificate_chain_file(ctx, opts.cert_file.c_str()) != 1) {
    error = openssl_error_text(("cannot load cert_file " + opts.cert_file).c_str());
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = openssl_error_text(("cannot load key_file " + opts.key_file).c_str());
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = openssl_error_text("key_file does not match cert_file");
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  return out;
}

server_context::~server_context() {
  SSL_CTX_free(ctx_);
}

}  // namespace rc::tls
