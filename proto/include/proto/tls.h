// tls: a TLS codec on OpenSSL 3 memory BIOs, bytes in and bytes out, no sockets.
//
// The caller owns the socket and moves bytes: ciphertext it received goes into feed(), plaintext
// comes out of read(); plaintext it wants sent goes into write(), and everything the session
// must send (handshake messages, records, alerts) is collected with take_output() and written to
// the socket. The session never blocks and never calls back. A typical turn:
//
//   s->feed(received, n);         // then
//   s->read(plaintext);           // decrypts what it can (also drives the handshake)
//   s->take_output(to_send);      // send whatever is queued, even after an error (the alert)
//
// Contracts:
// * write() before the handshake completes is buffered inside the session and encrypted once it
//   completes (a client can queue its request with the ClientHello in flight).
// * read() appends every byte that can be decrypted now; it returns `closed` once the peer's
//   close_notify has been read (all data before it already appended) and `error` on any
//   protocol, certificate or decryption failure. A socket EOF without close_notify is the
//   caller's to judge (truncation: a close-delimited HTTP body must not be trusted).
// * After an error every call returns `error`, error() says why in one line (for a certificate:
//   "certificate verify failed: hostname mismatch"), and take_output() still yields the alert
//   OpenSSL queued for the peer.
// * Buffers grow without bound inside the session only if the caller never drains them:
//   pending_output_bytes() is there for the caller's backpressure.
//
// Verification (client): with verify = true the chain must lead to a trusted root (the system
// store, or only the PEM bundle in ca_file) and the leaf must carry the host the session was made
// for: a DNS name (SAN, wildcards only as a whole left-most label), or an IP literal ("127.0.0.1",
// "::1" or "[::1]") matched against IP SANs. SNI is sent for names, never for IP literals (RFC
// 6066 §3). verify = false accepts any certificate (self-signed test upstreams) but still sends
// SNI. TLS 1.2 is the minimum version; the client offers ALPN "http/1.1" (also right for WebSocket
// upgrades), and alpn() says what the server chose ("" when it ignored ALPN).
//
// Cost: the system store is parsed once per process, by the first create() that needs it (tens
// of milliseconds for ~150 roots), and shared by every later context; a ca_file is parsed by each
// create(). Create contexts at start-up or reload, never on a request's path.
//
// Thread-safety: a context is immutable after create(), must outlive its sessions, and may make
// sessions on any thread (OpenSSL locks what it shares; one per upstream per shard avoids even
// that). A session belongs to the thread that owns its connection. OpenSSL's error queue is
// per thread; every call here clears it first, so errors never leak between sessions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace rc::tls {

struct client_options {
  bool verify = true;
  // A PEM bundle of trusted roots; "" = the system store (OpenSSL's default verify paths).
  std::string ca_file;
};

// Wraps an SSL_CTX configured for outbound connections.
class client_context {
 public:
  // nullptr with `error` set when the ca_file cannot be loaded or OpenSSL refuses the setup.
  static std::unique_ptr<client_context> create(const client_options& opts, std::string& error);
  ~client_context();
  client_context(const client_context&) = delete;
  client_context& operator=(const client_context&) = delete;

  bool verify() const { return verify_; }

 private:
  friend class session;
  client_context(ssl_ctx_st* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  ssl_ctx_st* ctx_;
  bool verify_;
};

struct server_options {
  std::string cert_file;  // PEM: the leaf, then any intermediates
  std::string key_file;   // PEM private key matching the leaf
  // Highest protocol version, as OpenSSL's TLS1_2_VERSION etc.; 0 = the newest (TLS 1.3). Tests
  // pin 1.2 to cover its handshake flow.
  int max_version = 0;
};

// Wraps an SSL_CTX configured for inbound connections (tests, later a TLS listener). Selects
// ALPN "http/1.1" when the client offers it; a client without ALPN is accepted.
class server_context {
 public:
  static std::unique_ptr<server_context> create(const server_options& opts, std::string& error);
  ~server_context();
  server_context(const server_context&) = delete;
  server_context& operator=(const server_context&) = delete;

 private:
  friend class session;
  explicit server_context(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

enum class status : uint8_t {
  ok,      // nothing wrong; maybe more input is needed
  closed,  // the peer's close_notify was read
  error,   // fatal; see error()
};

class session {
 public:
  // A client session for `host` (a DNS name or an IP literal, IPv6 with or without brackets).
  // The ClientHello is queued at once: take_output() right after creation. A session that could
  // not be set up (e.g. verify on and no host) is returned in the error state.
  static std::unique_ptr<session> client(client_context& ctx, std::string_view host);
  static std::unique_ptr<session> server(server_context& ctx);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // Ciphertext received from the socket. Drives the handshake; application data waits for read().
  status feed(const uint8_t* data, size_t len);
  status feed(std::string_view bytes) {
    return feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  // Appends all plaintext that can be decrypted from what was fed so far.
  status read(byte_buffer& plaintext_out);
  // Plaintext to send; buffered until the handshake completes. Once the peer has closed, or after
  // shutdown(): `closed`, and nothing is sent.
  status write(const uint8_t* data, size_t len);
  status write(std::string_view bytes) {
    return write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  // Appends every byte queued for the socket (handshake messages, records, alerts).
  void take_output(byte_buffer& ciphertext_out);
  size_t pending_output_bytes() const;

  bool handshake_done() const { return handshake_done_; }
  status state() const { return state_; }
  // Why the session failed; "" while it has not.
  std::string_view error() const { return error_; }
  // The negotiated ALPN protocol ("http/1.1"), or "" (none, or handshake not done).
  std::string_view alpn() const;
  // "TLSv1.3" etc. once the handshake is done.
  std::string_view version() const;
  // The SNI name: the one this client sends, or the one this server received; "" for none.
  std::string_view server_name() const;

  // Queues close_notify (after any plaintext still buffered for the handshake). Idempotent.
  void shutdown();

 private:
  session() = default;
  bool init(ssl_ctx_st* ctx);
  status drive_handshake();
  status flush_pending();
  status fail(std::string message);
  status fail_from_openssl(int ssl_error, const char* during);

  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  bio_st* out_ = nullptr;  // ciphertext for the peer (owned by ssl_)
  byte_buffer pending_;    // plaintext written before the handshake completed
  std::string error_;
  status state_ = status::ok;
  bool handshake_done_ = false;
  bool shutdown_requested_ = false;
  bool shutdown_sent_ = false;
};

}  // namespace rc::tls
