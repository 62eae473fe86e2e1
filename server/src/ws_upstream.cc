#include "server/ws_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "base/byte_buffer.h"
#include "core/timer_wheel.h"
#include "proto/base64.h"
#include "proto/ws.h"
#include "proto/ws_session.h"

namespace rc::server {

bool resolve_literal(std::string_view host, uint16_t port, sockaddr_storage& addr,
                     socklen_t& addr_len) {
  std::string h(host);
  if (h == "localhost") h = "127.0.0.1";
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::memset(&addr, 0, sizeof addr);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr_len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr_len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

namespace {

constexpr size_t head_bytes_max = 16 * 1024;

uint64_t random_u64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = reinterpret_cast<uintptr_t>(&v) * 0x9e3779b97f4a7c15ULL;
  return v;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

// The socket and the protocol state. Outlives its ws_upstream until the fd is closed.
class ws_upstream::link final : public stream_socket {
 public:
  link(socket_set& set, int fd, ws_upstream* up, const ws_target& t)
      : stream_socket(set, fd),
        owner_(up),
        session_(ws::role::client, ws::bind_handler<&link::on_message>(this), ws_out_,
                 ws::session_options{.message_bytes_max = t.message_bytes_max,
                                     .mask_seed = random_u64()}) {
    uint8_t raw[16];
    uint64_t a = random_u64(), b = random_u64();
    std::memcpy(raw, &a, 8);
    std::memcpy(raw + 8, &b, 8);
    char key_text[base64::encoded_size(16)];
    base64::encode(raw, 16, key_text);
    std::string_view key(key_text, sizeof key_text);
    ws::compute_accept(key, accept_);
    ws::write_upgrade_request(out(), t.host_header, t.path, key, {}, t.extra_header_lines);
    flush();
    deadline_.bind<link, &link::on_deadline>(this);
    owner().arm_after_ms(deadline_, t.handshake_timeout_ms);
    start_receiving();
  }

  void detach() {
    owner_ = nullptr;
    owner().cancel_timer(deadline_);
    if (!closing()) abort();
  }
  bool open() const { return open_ && !failed_; }
  bool send_text(std::string_view m) {
    if (!open()) return false;
    session_.send(ws::message_kind::text, m);
    pump_output();
    return true;
  }

 private:
  void on_data(const char* data, size_t len) override {
    std::string_view in(data, len);
    if (!open_) {
      head_.append(in);
      size_t end = head_.view().find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (head_.size() > head_bytes_max) fail(ws_failure::handshake, "upgrade response head too large");
        return;
      }
      std::string rest(head_.view().substr(end + 4));
      if (!check_head(head_.view().substr(0, end + 2))) return;
      head_ = byte_buffer();
      open_ = true;
      owner().cancel_timer(deadline_);
      if (owner_) owner_->handler_->on_open();
      if (!rest.empty() && !failed_) feed(rest);
      return;
    }
    feed(in);
  }

  bool check_head(std::string_view head) {
    if (head.substr(0, 13) != "HTTP/1.1 101 " && head.substr(0, 12) != "HTTP/1.1 101") {
      size_t eol = head.find("\r\n");
      fail(ws_failure::handshake,
           "the upstream refused the WebSocket upgrade: " + std::string(head.substr(0, eol)));
      return false;
    }
    bool accepted = false;
    for (size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
      size_t next = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? head.npos : next - pos - 2);
      if (iequals_prefix(line, "sec-websocket-accept:"))
        accepted = trim(line.substr(21)) == std::string_view(accept_, sizeof accept_);
      pos = next;
    }
    if (!accepted) {
      fail(ws_failure::handshake, "the upstream's Sec-WebSocket-Accept does not match");
      return false;
    }
    return true;
  }

  void feed(std::string_view in) {
    ws::session_state st = session_.feed(in);
    pump_output();
    if (failed_) return;
    if (st == ws::session_state::closed || session_.close_received()) {
      if (session_.error_code() != 0) {
        fail(ws_failure::protocol, "bad WebSocket frames from the upstream (close " +
                                       std::to_string(session_.error_code()) + ")");
      } else {
        fail(ws_failure::closed, "the upstream closed the WebSocket (" +
                                     std::to_string(session_.peer_close_code()) + ")");
      }
    }
  }

  void on_message(ws::message_kind kind, std::string_view payload) {
    if (failed_ || !owner_) return;
    if (kind == ws::message_kind::binary) {
      session_.refuse(ws::close_code::unsupported_data, "binary messages are not expected");
      pump_output();
      fail(ws_failure::protocol, "the upstream sent a binary message");
      return;
    }
    if (kind == ws::message_kind::text) owner_->handler_->on_text(payload);
  }

  void pump_output() {
    if (ws_out_.size() == 0) return;
    out().append(ws_out_.view());
    ws_out_.clear();
    flush();
  }

  void fail(ws_failure kind, std::string detail) {
    if (failed_) return;
    failed_ = true;
    owner().cancel_timer(deadline_);
    close_after_flush(200);
    if (ws_upstream* o = owner_) {
      owner_ = nullptr;
      o->link_ = nullptr;  // the link closes by itself and deletes itself
      o->handler_->on_failure(kind, detail);
    }
  }

  void on_eof(int err) override {
    fail(ws_failure::closed, err ? std::string("the upstream connection failed: ") + std::strerror(err)
                                 : std::string("the upstream closed the connection"));
  }
  void on_closed() override { delete this; }
  void on_deadline() {
    fail(ws_failure::timeout, "the WebSocket upgrade timed out");
  }

  ws_upstream* owner_;
  byte_buffer ws_out_;
  ws::session session_;
  byte_buffer head_;
  char accept_[28];
  timer deadline_;
  bool open_ = false;
  bool failed_ = false;
};

ws_upstream::ws_upstream(socket_set& sockets, connector& c, const ws_target& target,
                         ws_upstream_handler* handler)
    : self_(std::make_shared<ws_upstream*>(this)), handler_(handler) {
  std::weak_ptr<ws_upstream*> weak = self_;
  c.connect(reinterpret_cast<const sockaddr*>(&target.addr), target.addr_len, nullptr, 0,
            [weak, target, &sockets](int fd, int error) {
              auto self = weak.lock();
              if (!self || !*self) {
                if (fd >= 0) ::close(fd);
                return;
              }
              (*self)->on_connected(fd, error, target, sockets);
            });
}

void ws_upstream::on_connected(int fd, int error, const ws_target& target, socket_set& sockets) {
  if (fd < 0) {
    handler_->on_failure(ws_failure::connect,
                         std::string("cannot connect to the upstream: ") + std::strerror(error));
    return;
  }
  link_ = new link(sockets, fd, this, target);
}

ws_upstream::~ws_upstream() {
  *self_ = nullptr;
  if (link_) link_->detach();
}

void ws_upstream::set_handler(ws_upstream_handler* h) { handler_ = h; }
bool ws_upstream::send_text(std::string_view message) { return link_ && link_->send_text(message); }
void ws_upstream::pause() {
  if (link_) link_->pause_receiving();
}
void ws_upstream::resume() {
  if (link_) link_->resume_receiving();
}
bool ws_upstream::open() const { return link_ && link_->open(); }

}  // namespace rc::server
