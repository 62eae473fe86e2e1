// TLS sessions on memory BIOs: feed/read/write/take_output around one SSL object. See
// proto/tls.h for the contract.
//
// The input BIO is set to report "retry" (not EOF) when empty, so OpenSSL answers WANT_READ when
// it needs more bytes and the caller's next feed() resumes exactly where it stopped, at any byte
// boundary. The output BIO never fills up, so OpenSSL never answers WANT_WRITE: a write is
// encrypted whole, and its records wait in the BIO until take_output().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

#include "base/assert.h"
#include "proto/tls.h"
#include "tls_internal.h"

namespace rc::tls {
namespace {

// Bytes asked of SSL_read at a time: one full TLS record's plaintext.
constexpr size_t read_chunk_bytes = 16384;

// A memory BIO keeps the capacity of the largest burst it ever held (a 1 MiB request body leaves
// a 1 MiB output buffer behind), which an idle pooled session would hold forever. Once drained,
// a BIO larger than this is replaced by a fresh one.
constexpr size_t bio_keep_bytes = 64 * 1024;

bool oversized(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem && mem->max > bio_keep_bytes;
}

BIO* new_input_bio() {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio) BIO_set_mem_eof_return(bio, -1);  // empty = "retry", not EOF
  return bio;
}

bool is_ip_literal(const std::string& host) {
  in6_addr v6;
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// "[::1]" -> "::1"; "example.com." -> "example.com" (the root label is not part of SNI or of
// the certificate's names).
std::string normalize_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  return std::string(host);
}

}  // namespace

bool session::init(ssl_ctx_st* ctx) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (!ssl_) {
    fail(openssl_error_text("cannot create a TLS session"));
    return false;
  }
  in_ = new_input_bio();
  out_ = BIO_new(BIO_s_mem());
  if (!in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    fail("cannot create TLS buffers");
    return false;
  }
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both now
  return true;
}

std::unique_ptr<session> session::client(client_context& ctx, std::string_view host_in) {
  std::unique_ptr<session> s(new session());
  if (!s->init(ctx.ctx_)) return s;
  SSL_set_connect_state(s->ssl_);

  std::string host = normalize_host(host_in);
  if (host.find('\0') != std::string::npos) {
    s->fail("invalid host name for TLS");
    return s;
  }
  bool ip = is_ip_literal(host);
  if (!ip && !host.empty() && SSL_set_tlsext_host_name(s->ssl_, host.c_str()) != 1) {
    s->fail(openssl_error_text(("invalid TLS server name " + host).c_str()));
    return s;
  }
  if (ctx.verify()) {
    if (host.empty()) {
      s->fail("no host name to verify the certificate against");
      return s;
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) {
      s->fail(openssl_error_text(("cannot verify against host " + host).c_str()));
      return s;
    }
  }
  s->drive_handshake();  // queues the ClientHello
  return s;
}

std::unique_ptr<session> session::server(server_context& ctx) {
  std::unique_ptr<session> s(new session());
  if (s->init(ctx.ctx_)) SSL_set_accept_state(s->ssl_);
  return s;
}

session::~session() {
  SSL_free(ssl_);  // frees both BIOs
}

status session::feed(const uint8_t* data, size_t len) {
  if (state_ != status::ok) return state_;
  if (len == 0) return state_;
  ERR_clear_error();
  size_t written = 0;
  if (BIO_write_ex(in_, data, len, &written) != 1 || written != len) {
    return fail(openssl_error_text("cannot buffer TLS input"));
  }
  if (!handshake_done_) return drive_handshake();
  return state_;
}

status session::drive_handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshake_done_ = true;
    return flush_pending();
  }
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return status::ok;
  return fail_from_openssl(e, "TLS handshake");
}

status session::read(byte_buffer& plaintext_out) {
  if (state_ != status::ok) return state_;
  for (;;) {
    ERR_clear_error();
    size_t n = 0;
    char* p = plaintext_out.prepare(read_chunk_bytes);
    if (SSL_read_ex(ssl_, p, read_chunk_bytes, &n) == 1) {
      plaintext_out.commit(n);
      continue;
    }
    int e = SSL_get_error(ssl_, 0);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      state_ = status::closed;
      break;
    }
    return fail_from_openssl(e, handshake_done_ ? "TLS read" : "TLS handshake");
  }
  // RELEASE_BUFFERS (tls_context.cc) frees the 16 KiB read buffer after application data, but
  // OpenSSL 3.0 keeps it after TLS 1.3 post-handshake messages (the server's session tickets):
  // every idle pooled session would hold it. Free it whenever the input is drained; OpenSSL
  // refuses (and keeps it) while a partial record is in it.
  if (handshake_done_ && BIO_ctrl_pending(in_) == 0) {
    SSL_free_buffers(ssl_);
    if (oversized(in_)) {
      if (BIO* fresh = new_input_bio()) {
        SSL_set0_rbio(ssl_, fresh);  // frees the old one
        in_ = fresh;
      }
    }
  }
  // SSL_read runs the handshake too (and a TLS 1.2 server finishes inside it).
  if (!handshake_done_ && SSL_is_init_finished(ssl_)) {
    handshake_done_ = true;
    if (flush_pending() == status::error) return status::error;
  }
  return state_;
}

status session::write(const uint8_t* data, size_t len) {
  if (state_ != status::ok) return state_;
  if (shutdown_requested_) return status::closed;  // after our close_notify nothing may follow
  if (len == 0) return state_;
  if (!handshake_done_) {
    pending_.append(reinterpret_cast<const char*>(data), len);
    return state_;
  }
  ERR_clear_error();
  size_t written = 0;
  if (SSL_write_ex(ssl_, data, len, &written) != 1) {
    return fail_from_openssl(SSL_get_error(ssl_, 0), "TLS write");
  }
  RC_ASSERT(written == len);  // a memory BIO never pushes back
  return state_;
}

status session::flush_pending() {
  if (!pending_.empty()) {
    ERR_clear_error();
    size_t written = 0;
    if (SSL_write_ex(ssl_, pending_.data(), pending_.size(), &written) != 1) {
      return fail_from_openssl(SSL_get_error(ssl_, 0), "TLS write");
    }
    RC_ASSERT(written == pending_.size());
    pending_.reset();
  }
  if (shutdown_requested_ && !shutdown_sent_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // 0 = close_notify queued, 1 = the peer's was already read too
    ERR_clear_error();
    shutdown_sent_ = true;
  }
  return state_;
}

void session::shutdown() {
  if (shutdown_requested_ || state_ == status::error) return;
  shutdown_requested_ = true;
  if (handshake_done_) flush_pending();
}

void session::take_output(byte_buffer& ciphertext_out) {
  if (!out_) return;
  size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  size_t n = 0;
  char* p = ciphertext_out.prepare(pending);
  if (BIO_read_ex(out_, p, pending, &n) == 1) ciphertext_out.commit(n);
  if (BIO_ctrl_pending(out_) == 0 && oversized(out_)) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_, fresh);  // frees the old one
      out_ = fresh;
    }
  }
}

size_t session::pending_output_bytes() const {
  return out_ ? BIO_ctrl_pending(out_) : 0;
}

std::string_view session::alpn() const {
  if (!ssl_ || !handshake_done_) return {};
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return {reinterpret_cast<const char*>(p), n};
}

std::string_view session::version() const {
  if (!ssl_ || !handshake_done_) return {};
  return SSL_get_version(ssl_);
}

std::string_view session::server_name() const {
  const char* name = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return name ? std::string_view(name) : std::string_view();
}

status session::fail(std::string message) {
  if (state_ != status::error) {
    state_ = status::error;
    error_ = std::move(message);
  }
  return state_;
}

// One line saying why: the certificate check's own reason when that is what failed (OpenSSL
// reports only "certificate verify failed" in its queue and keeps the reason in the SSL), else
// the first queued reason, which for a peer's alert reads like "tlsv1 alert unknown ca".
status session::fail_from_openssl(int ssl_error, const char* during) {
  unsigned long e = ERR_peek_error();
  long verify = SSL_get_verify_result(ssl_);
  std::string message;
  if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
      ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
    message = "certificate verify failed: ";
    message += X509_verify_cert_error_string(verify);
    ERR_clear_error();
  } else if (e != 0) {
    message = openssl_error_text(during);
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    message = std::string(during) + ": the peer closed the connection (close_notify)";
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    message = std::string(during) + ": unexpected end of input";
  } else {
    message = std::string(during) + ": OpenSSL error " + std::to_string(ssl_error);
  }
  return fail(std::move(message));
}

}  // namespace rc::tls
