// Test helper: a fake NATS server on a loopback port, driven by a script per connection (blocking
// I/O with timeouts on its own thread), for input a real server never sends: garbage, oversized
// or early messages, forged JetStream deliveries, late answers.
//
// Thread-safety: the script runs on the server's thread; share results through atomics or read
// them after the fake_server is destroyed (its destructor joins the thread).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace rc::server::test {

inline constexpr std::string_view info_line =
    "INFO {\"server_id\":\"FAKE\",\"version\":\"2.9.10\",\"headers\":true,"
    "\"max_payload\":1048576,\"proto\":1}\r\n";

// One accepted connection, as a script sees it (blocking I/O with timeouts).
class fake_peer {
 public:
  explicit fake_peer(int fd) : fd_(fd) {}
  void send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  // The next line without "\r\n"; "" on EOF or after timeout_ms.
  std::string line(int timeout_ms = 5000) {
    for (;;) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return l;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return "";
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        eof_ = true;
        return "";
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  // Reads lines until one starts with `prefix`; false on EOF/timeout.
  bool until(std::string_view prefix, int timeout_ms = 5000) {
    for (;;) {
      std::string l = line(timeout_ms);
      if (l.empty()) return false;
      if (l.compare(0, prefix.size(), prefix) == 0) return true;
    }
  }
  // INFO, CONNECT, PING, PONG.
  bool handshake(std::string_view info = info_line) {
    send(info);
    connect_line = line();
    if (connect_line.rfind("CONNECT ", 0) != 0) return false;
    if (line() != "PING") return false;
    send("PONG\r\n");
    return true;
  }
  // Waits for the client to close (true) or timeout_ms.
  bool wait_closed(int timeout_ms = 5000) {
    while (!eof_) {
      if (line(timeout_ms).empty() && !eof_) return false;
    }
    return true;
  }
  std::string connect_line;

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

// A loopback listener running script(peer, n) for its n-th connection, one at a time.
class fake_server {
 public:
  using script = std::function<void(fake_peer&, int)>;
  explicit fake_server(script s) : script_(std::move(s)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~fake_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      {
        fake_peer peer(c);
        script_(peer, connections_++);
      }
      ::close(c);
    }
  }
  script script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace rc::server::test
