// http_connection's byte paths (see http_connection.h): what arrives (decrypted first on TLS
// connections) and what is sent (encrypted on TLS connections), in every mode.
#include <cerrno>

#include "http_client_request.h"
#include "http_connection.h"

namespace rc::server {

void http_connection::flush_tls_output() {
  tls_->take_output(out());
  flush();
}

void http_connection::close_gracefully() {
  if (tls_ && tls_->state() == tls::status::ok) {
    tls_->shutdown();
    flush_tls_output();
  }
  close_after_flush();
}

void http_connection::on_data(const char* data, size_t len) {
  if (!tls_) {
    on_plaintext(data, len);
    return;
  }
  plain_.clear();
  tls::status st = tls_->feed(reinterpret_cast<const uint8_t*>(data), len);
  if (st != tls::status::error) st = tls_->read(plain_);
  flush_tls_output();  // handshake messages, alerts
  if (!plain_.empty()) on_plaintext(plain_.data(), plain_.size());
  if (st == tls::status::error) {
    on_tls_error();
  } else if (st == tls::status::closed && !tls_closed_) {
    tls_closed_ = true;
    on_eof(0);  // close_notify: a clean end, whatever the socket does next
  }
}

void http_connection::on_tls_error() {
  std::string why = "TLS: " + std::string(tls_->error());
  switch (mode_) {
    case mode::idle:
      mode_ = mode::closed;
      if (pool_) pool_->forget(*this);
      abort();
      return;
    case mode::busy:
      fail(client_error::tls, std::move(why));
      return;
    case mode::upgraded:
      if (!eof_) {
        eof_ = true;
        eof_error_ = EPROTO;
        deliver_stream();
      }
      abort();
      return;
    case mode::closed:
      return;
  }
}

void http_connection::on_plaintext(const char* data, size_t len) {
  switch (mode_) {
    case mode::idle:
      // An idle connection has nothing to say; whatever it says makes it unusable.
      mode_ = mode::closed;
      if (pool_) pool_->forget(*this);
      abort();
      return;
    case mode::busy:
      in_.append(data, len);
      if (!got_byte_) got_byte_ = true;
      req_->note_bytes();
      process();
      return;
    case mode::upgraded:
      in_.append(data, len);
      deliver_stream();
      return;
    case mode::closed:
      return;
  }
}

void http_connection::on_eof(int err) {
  if (eof_) return;  // after close_notify, the socket's own end changes nothing
  eof_ = true;
  eof_error_ = err;
  // Without close_notify a TLS peer's end cannot be told from a cut (RFC 8446 §6.1).
  if (tls_ && !tls_closed_ && err == 0) truncated_ = true;
  switch (mode_) {
    case mode::idle:
      mode_ = mode::closed;
      if (pool_) pool_->forget(*this);
      abort();
      return;
    case mode::busy:
      process();
      if (mode_ == mode::busy && req_ && !req_->paused()) finish_eof();
      return;
    case mode::upgraded:
      deliver_stream();
      return;
    case mode::closed:
      return;
  }
}

void http_connection::send_raw(std::string_view bytes) {
  if (mode_ != mode::upgraded) return;
  if (tls_) {
    tls_->write(bytes);
    flush_tls_output();
  } else {
    out().append(bytes);
    flush();
  }
}

}  // namespace rc::server
