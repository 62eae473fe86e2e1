// fake_dns: a DNS server for tests, a UDP socket on a loopback address served by its own thread.
// A script (a function of the query) returns the datagrams to send back, possibly none (a dropped
// query) or several (a forged one first, say). It records every query it received. Unit tests
// only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../proto/dns_message.h"

namespace rc::test {

class fake_dns {
 public:
  using script = std::function<std::vector<std::string>(const dns_query_view& q, size_t nth)>;

  // Binds `ip`:`port` (0: any port). ok() says whether that worked.
  fake_dns(const char* ip, uint16_t port, script s) : script_(std::move(s)) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  fake_dns(const fake_dns&) = delete;
  fake_dns& operator=(const fake_dns&) = delete;
  ~fake_dns() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  size_t queries() const {
    std::lock_guard lock(mu_);
    return log_.size();
  }
  std::vector<dns_query_view> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  void serve() {
    char buf[2048];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      dns_query_view q;
      if (n <= 0 || !read_query(std::string_view(buf, static_cast<size_t>(n)), q)) continue;
      size_t nth = 0;
      {
        std::lock_guard lock(mu_);
        for (const auto& earlier : log_) nth += earlier.name == q.name && earlier.type == q.type;
        log_.push_back(q);
      }
      for (const std::string& d : script_(q, nth))
        sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }

  script script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<dns_query_view> log_;
  std::thread thread_;
};

// Answers for scripts. flags 0x8180: response, RD, RA, NOERROR.
inline dns_message reply_to(const dns_query_view& q, unsigned answers, uint16_t flags = 0x8180,
                            unsigned authority = 0) {
  dns_message m;
  m.header(q.id, flags, 1, answers, authority).question(q.name, q.type);
  return m;
}

// An answer with `ttl` holding 192.0.2.<last> for A queries and 2001:db8::<last> for AAAA.
inline std::string address_answer(const dns_query_view& q, uint8_t last, uint32_t ttl = 60) {
  dns_message m = reply_to(q, 1);
  if (q.type == 28) {
    m.aaaa(q.name, ttl, last);
  } else {
    m.a(q.name, ttl, 192, 0, 2, last);
  }
  return m.bytes;
}

inline std::string rcode_answer(const dns_query_view& q, unsigned rcode) {
  return reply_to(q, 0, static_cast<uint16_t>(0x8180 | rcode)).bytes;
}

}  // namespace rc::test
