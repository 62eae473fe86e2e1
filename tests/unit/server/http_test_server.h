// Test helpers for the outbound HTTP client: a scripted loopback server (a blocking accept loop
// in a thread, one thread per connection running the test's script), a recording response sink,
// and a one-shard reactor that runs the client until the test says it is done.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/shard_group.h"
#include "core/stream_socket.h"
#include "core/uring.h"
#include "server/http_client.h"

namespace rc::server::test {

// Concatenation without chains of operator+ (GCC 12's -Wrestrict misfires on those).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string s;
  (s.append(parts), ...);
  return s;
}

inline bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

// One accepted connection as the script sees it.
class peer {
 public:
  explicit peer(int fd) : fd_(fd) {}
  ~peer() { ::close(fd_); }
  int fd() const { return fd_; }

  // Reads one request (head and Content-Length body); "" when the client closed first or
  // nothing came within timeout_ms.
  std::string read_request(int timeout_ms = 10000) {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t body = 0;
        size_t cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) body = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= end + 4 + body) {
          std::string req = buf_.substr(0, end + 4 + body);
          buf_.erase(0, end + 4 + body);
          return req;
        }
      }
      if (!fill(timeout_ms)) return "";
    }
  }
  // Reads exactly n raw bytes (upgraded protocols); "" on EOF or timeout.
  std::string read_bytes(size_t n, int timeout_ms = 10000) {
    while (buf_.size() < n) {
      if (!fill(timeout_ms)) return "";
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  // True when the client closed (EOF or reset) within timeout_ms.
  bool wait_closed(int timeout_ms = 10000) {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      char tmp[4096];
      ssize_t n = ::read(fd_, tmp, sizeof tmp);
      if (n <= 0) return true;
    }
  }
  void write(std::string_view s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // Sends `s` one byte per write, with a pause so each byte leaves as its own segment.
  void write_bytewise(std::string_view s, int pause_us = 300) {
    for (char c : s) {
      write(std::string_view(&c, 1));
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    }
  }

 private:
  bool fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::read(fd_, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

// Accepts connections on 127.0.0.1 and runs `script(peer, index)` for each in its own thread.
class script_server {
 public:
  using script = std::function<void(peer&, int index)>;
  explicit script_server(script s) : script_(std::move(s)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~script_server() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    ::close(listen_fd_);
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // Waits (bounded) until at least n connections were accepted; the accept thread may run well
  // after the client's connect completed (the kernel finishes the handshake on its own).
  bool wait_accepted(int n, int timeout_ms = 10000) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (accepted_.load() < n) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  url::endpoint endpoint() const {
    url::endpoint e;
    e.host = "127.0.0.1";
    e.port = port_;
    e.host_is_literal = true;
    return e;
  }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      if (stopping_) {
        ::close(fd);
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int index = accepted_++;
      threads_.emplace_back([this, fd, index] {
        peer p(fd);
        script_(p, index);
      });
    }
  }
  script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::vector<std::thread> threads_;
};

inline http_request get(std::string target = "/") {
  http_request r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

inline http_request post(std::string_view body) {
  http_request r;
  r.method = "POST";
  r.target = "/v1/chat/completions";
  r.headers = {{"Content-Type", "application/json"}};
  r.body = shared_buffer::copy_of(body);
  return r;
}

inline std::string ok(std::string_view body) {
  return cat("HTTP/1.1 200 OK\r\nContent-Length: ", std::to_string(body.size()), "\r\n\r\n", body);
}

// Records what a request hears, as text the tests compare.
class recording_sink final : public response_sink {
 public:
  std::vector<std::string> events;
  std::string body;
  int status = 0;
  bool ended = false;
  client_error error = client_error::none;
  std::string error_message;
  std::function<void()> on_end_hook;
  std::function<void()> on_head_hook;
  std::function<void(std::string_view)> on_body_hook;
  std::unique_ptr<upgraded_connection> upgraded;
  std::string upgraded_leftover;

  void on_response_head(const http1::response& head) override {
    status = head.status;
    events.push_back(cat("head ", std::to_string(head.status)));
    if (on_head_hook) on_head_hook();
  }
  void on_response_body(std::string_view bytes) override {
    body.append(bytes);
    if (on_body_hook) on_body_hook(bytes);
  }
  void on_response_end() override {
    ended = true;
    events.push_back("end");
    if (on_end_hook) on_end_hook();
  }
  void on_response_error(client_error kind, std::string_view message) override {
    error = kind;
    error_message = std::string(message);
    events.push_back(cat("error ", name_of(kind)));
    if (on_end_hook) on_end_hook();
  }
  void on_upgraded(std::unique_ptr<upgraded_connection> conn,
                   const http1::response& head) override {
    status = head.status;
    upgraded_leftover = conn->take_leftover();
    upgraded = std::move(conn);
    events.push_back("upgraded");
    if (on_end_hook) on_end_hook();
  }
  bool finished() const { return ended || error != client_error::none || upgraded; }
};

// Calls fn after delay_ms on the loop (one-shot; the object must outlive the wait).
class delayed {
 public:
  delayed() { t_.bind<delayed, &delayed::fire>(this); }
  void after(reactor& r, uint64_t delay_ms, std::function<void()> fn) {
    fn_ = std::move(fn);
    r.arm_after_ms(t_, delay_ms);
  }

 private:
  void fire() { fn_(); }
  timer t_;
  std::function<void()> fn_;
};

// Runs one shard with an http_client; `body` starts work and calls done() when the test is
// over. Fails the test if done() is not called within limit_ms.
struct client_run {
  reactor* loop = nullptr;
  http_client* client = nullptr;
  std::function<void()> done;
  std::vector<std::unique_ptr<delayed>> timers;
  // Runs fn on the loop after delay_ms.
  void later(uint64_t delay_ms, std::function<void()> fn) {
    timers.push_back(std::make_unique<delayed>());
    timers.back()->after(*loop, delay_ms, std::move(fn));
  }
};

inline void run_client(const std::function<void(client_run&)>& body, uint32_t limit_ms = 20000,
                       const client_options& client_opts = {}) {
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 256;
  o.reactor.ring.cq_entries = 4096;
  o.reactor.buffers.count = 64;
  o.reactor.buffers.buffer_bytes = 4096;
  bool finished = false;
  auto err = run_shards(o, [&](reactor& r) {
    socket_set sockets(r);
    auto client = std::make_unique<http_client>(r, sockets, client_opts);
    timer stop_timer;
    timer limit;
    stop_timer.set_callback([](timer&, void* c) { static_cast<reactor*>(c)->stop(); }, &r);
    limit.set_callback([](timer&, void* c) { static_cast<reactor*>(c)->stop(); }, &r);
    client_run run;
    run.loop = &r;
    run.client = client.get();
    timer teardown;
    struct teardown_ctx {
      std::unique_ptr<http_client>* client;
      reactor* loop;
      timer* stop;
    } ctx{&client, &r, &stop_timer};
    teardown.set_callback(
        [](timer&, void* c) {
          auto* t = static_cast<teardown_ctx*>(c);
          t->client->reset();  // aborts what is left, from the loop (not from a callback)
          t->loop->arm_after_ms(*t->stop, 30);  // let the closes finish before stopping
        },
        &ctx);
    run.done = [&] {
      if (finished) return;
      finished = true;
      r.arm_after_ms(teardown, 1);
    };
    r.arm_after_ms(limit, limit_ms);
    body(run);
    r.run();
    client.reset();
    run.timers.clear();
    r.cancel_timer(stop_timer);
    r.cancel_timer(limit);
    r.cancel_timer(teardown);
  });
  EXPECT_EQ(err, "");
  EXPECT_TRUE(finished) << "the test did not finish within " << limit_ms << " ms";
}

}  // namespace rc::server::test
