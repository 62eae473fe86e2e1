// Test support for the fronts: a scripted engine (each request's `original` recorded, its events
// delivered from the shard's loop, lazily or not), registered as the upstream kind "scripted" and
// routed as model "up", in a real one-shard ringcast on 127.0.0.1, and blocking HTTP/1.1 and
// WebSocket clients. The shard runs on its own thread and
// stops on SIGTERM (blocked in every thread, read by the shard's signalfd).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/listener.h"
#include "core/shard_group.h"
#include "proto/url.h"
#include "server/config.h"
#include "server/engine.h"
#include "server/rules.h"
#include "server/shard.h"
#include "server/upstream_kinds.h"
#include "server/upstreams.h"

namespace rc::server::test {

// One event of a script, owning its strings.
struct scripted {
  event_type type = event_type::delta;
  std::string text, raw, raw_name, code, message, error_type, error_param;
  api_kind raw_api = api_kind::none;
  uint16_t http_status = 0;
  uint32_t retry_after_ms = 0;
};

inline scripted raw_event(api_kind api, std::string raw, std::string name = {}) {
  scripted s;
  s.type = event_type::raw;
  s.raw_api = api;
  s.raw = std::move(raw);
  s.raw_name = std::move(name);
  return s;
}
inline scripted delta(std::string text) {
  scripted s;
  s.text = std::move(text);
  return s;
}
inline scripted done() {
  scripted s;
  s.type = event_type::done;
  return s;
}
inline scripted usage() {
  scripted s;
  s.type = event_type::usage;
  return s;
}

// What the test engine does and what it saw. Shared between the test thread and the shard.
struct script {
  std::mutex mu;
  bool lazy = true;
  std::vector<scripted> events;
  std::vector<original_request> seen;  // each request's `original`
};

class scripted_stream final : public engine_stream {
 public:
  scripted_stream(reactor& r, std::vector<scripted> events, engine_sink& sink)
      : reactor_(r), events_(std::move(events)), sink_(sink),
        alive_(std::make_shared<bool>(true)) {
    schedule();
  }
  ~scripted_stream() override { *alive_ = false; }
  void resume() override { schedule(); }

 private:
  void schedule() {
    reactor_.post(reactor_.shard_id(), [this, alive = alive_] {
      if (*alive) run();
    });
  }
  void run() {
    while (next_ < events_.size()) {
      const scripted& s = events_[next_++];
      engine_event e;
      e.type = s.type;
      e.text = s.text;
      e.raw = s.raw;
      e.raw_name = s.raw_name;
      e.raw_api = s.raw_api;
      e.error_code = s.code;
      e.error_message = s.message;
      e.error_type = s.error_type;
      e.error_param = s.error_param;
      e.http_status = s.http_status;
      e.retry_after_ms = s.retry_after_ms;
      e.usage.input_tokens = 3;
      e.usage.output_tokens = 2;
      bool terminal = s.type == event_type::usage || s.type == event_type::error;
      auto alive = alive_;
      bool more = sink_.on_event(e);
      if (!*alive || terminal || !more) return;  // destroyed, over, or paused until resume()
    }
  }

  reactor& reactor_;
  std::vector<scripted> events_;
  engine_sink& sink_;
  std::shared_ptr<bool> alive_;
  size_t next_ = 0;
};

class scripted_engine final : public engine {
 public:
  scripted_engine(reactor& r, script& s) : reactor_(r), script_(s) {}
  std::string_view name() const override { return "scripted"; }
  const std::vector<std::string>& models() const override { return models_; }
  uint64_t completion_tokens_max(std::string_view) const override { return 4096; }
  uint32_t embedding_dimensions(std::string_view) const override { return 8; }
  bool ready() const override { return true; }
  bool starts_lazily() const override {
    std::lock_guard lock(script_.mu);
    return script_.lazy;
  }
  std::unique_ptr<engine_stream> generate(const generation_request& req,
                                          engine_sink& sink) override {
    std::lock_guard lock(script_.mu);
    script_.seen.push_back(req.original);
    return std::make_unique<scripted_stream>(reactor_, script_.events, sink);
  }
  void embed(const embedding_request&, unique_function<void(embedding_result&&)>) override {}
  void invoke_tool(std::string_view, std::string_view,
                   unique_function<void(tool_result&&)>) override {}

 private:
  reactor& reactor_;
  script& script_;
  std::vector<std::string> models_ = {"up"};
};

struct http_reply {
  int status = 0;
  std::string head;  // status line and fields
  std::string body;  // de-chunked
  std::string header(std::string_view name) const {
    std::string needle = "\r\n" + std::string(name) + ": ";
    size_t at = head.find(needle);
    if (at == std::string::npos) return {};
    at += needle.size();
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

inline std::string dechunk(std::string_view s) {
  std::string out;
  while (!s.empty()) {
    size_t eol = s.find("\r\n");
    if (eol == std::string_view::npos) break;
    size_t n = std::stoul(std::string(s.substr(0, eol)), nullptr, 16);
    if (n == 0) break;
    out.append(s.substr(eol + 2, n));
    s.remove_prefix(std::min(s.size(), eol + 2 + n + 2));
  }
  return out;
}

inline script*& current_script() {
  static script* s = nullptr;
  return s;
}

// One ringcast shard on 127.0.0.1 with the scripted engine, stopped by SIGTERM.
class FrontsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    block_process_signals();
    // The kind's factory reaches this test's script through a pointer (registries are global).
    current_script() = &script_;
    register_upstream_kind("scripted", endpoint_family::http,
                           [](shard_server& shard, std::shared_ptr<const upstream_config>) {
                             return std::make_shared<scripted_engine>(shard.loop(),
                                                                      *current_script());
                           });
    server_config cfg;
    cfg.drain_grace_ms = 0;
    cfg.drain_timeout_ms = 2000;
    upstream_config up;
    up.name = "scripted";
    up.kind = "scripted";
    std::string url_error;
    auto endpoint = url::parse("http://127.0.0.1:9/v1", url_error);
    ASSERT_TRUE(endpoint) << url_error;
    up.endpoints.push_back(*endpoint);
    cfg.upstream.upstreams.push_back(up);
    model_route route;
    route.name = "up";
    route.upstream = "scripted";
    route.upstream_model = "up";
    cfg.upstream.routes.push_back(route);
    std::vector<std::string> notes;
    std::string error;
    process_.initial = make_rules(cfg, nullptr, notes, error);
    ASSERT_TRUE(process_.initial) << error;
    socket_address addr;
    ASSERT_EQ(parse_socket_address("127.0.0.1:0", addr), "");
    listen_fd_ = open_listener(addr, 64, error);
    ASSERT_GE(listen_fd_, 0) << error;
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
    thread_ = std::thread([this] {
      shard_group_options opts;
      run_shards(opts, [this](reactor& r) {
        shard_server shard(r, process_, listen_fd_);
        shard.run();
      });
    });
  }
  void TearDown() override {
    if (!thread_.joinable()) return;
    kill(getpid(), SIGTERM);
    thread_.join();
  }

  void set_script(bool lazy, std::vector<scripted> events) {
    std::lock_guard lock(script_.mu);
    script_.lazy = lazy;
    script_.events = std::move(events);
  }
  original_request last_original() {
    std::lock_guard lock(script_.mu);
    return script_.seen.empty() ? original_request{} : script_.seen.back();
  }

  http_reply post(std::string_view path, std::string_view body,
                  std::string_view extra_headers = {}) {
    int fd = connect_fd();  // (the shard may still be starting: it retries for a while)
    http_reply reply;
    std::string req = "POST " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
                      "Content-Type: application/json\r\n" + std::string(extra_headers) +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                      std::string(body);
    EXPECT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    std::string raw;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos) {
      ADD_FAILURE() << "no response head: " << raw;
      return reply;
    }
    reply.head = raw.substr(0, end + 2);
    reply.status = std::stoi(raw.substr(9, 3));
    std::string body_bytes = raw.substr(end + 4);
    reply.body = reply.header("Transfer-Encoding") == "chunked" ? dechunk(body_bytes) : body_bytes;
    return reply;
  }

  // A WebSocket client on `path` (blocking, 10 s timeouts): open, send text, read text.
  struct ws_client {
    int fd = -1;
    std::string in;
    bool fill(size_t n) {
      char buf[4096];
      while (in.size() < n) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got <= 0) return false;
        in.append(buf, static_cast<size_t>(got));
      }
      return true;
    }
    void send_text(std::string_view message) {  // one masked frame (mask 0: payload as is)
      std::string frame = {'\x81'};
      if (message.size() < 126) {
        frame += static_cast<char>(0x80 | message.size());
      } else {
        frame += static_cast<char>(0x80 | 126);
        frame += static_cast<char>(message.size() >> 8);
        frame += static_cast<char>(message.size() & 0xff);
      }
      frame.append(4, '\0');
      frame.append(message);
      ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    }
    std::string read_text() {  // one whole text message (fragments joined); "" at the end
      std::string message;
      for (;;) {
        if (!fill(2)) return {};
        bool fin = (static_cast<uint8_t>(in[0]) & 0x80) != 0;
        uint8_t op = static_cast<uint8_t>(in[0]) & 0x0f;
        size_t len = static_cast<uint8_t>(in[1]) & 0x7f, head = 2;
        if (len == 126) {
          if (!fill(4)) return {};
          len = (static_cast<uint8_t>(in[2]) << 8) | static_cast<uint8_t>(in[3]);
          head = 4;
        } else if (len == 127) {
          if (!fill(10)) return {};
          len = 0;
          for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<uint8_t>(in[i]);
          head = 10;
        }
        if (!fill(head + len)) return {};
        if (op == 1 || op == 0) message += in.substr(head, len);
        in.erase(0, head + len);
        if ((op == 1 || op == 0) && fin) return message;
      }
    }
    ~ws_client() {
      if (fd >= 0) close(fd);
    }
  };

  std::unique_ptr<ws_client> ws_open(std::string_view path) {
    auto c = std::make_unique<ws_client>();
    c->fd = connect_fd();
    std::string req = "GET " + std::string(path) +
                      " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nx-request-id: ws-7\r\n\r\n";
    send(c->fd, req.data(), req.size(), MSG_NOSIGNAL);
    while (c->in.find("\r\n\r\n") == std::string::npos && c->fill(c->in.size() + 1)) {}
    EXPECT_EQ(c->in.substr(0, 12), "HTTP/1.1 101") << c->in;
    c->in.erase(0, c->in.find("\r\n\r\n") + 4);
    return c;
  }

  std::vector<std::string> ws_exchange(std::string_view path, std::string_view message,
                                       size_t count) {
    auto c = ws_open(path);
    c->send_text(message);
    std::vector<std::string> out;
    while (out.size() < count) {
      std::string m = c->read_text();
      if (m.empty()) break;
      out.push_back(std::move(m));
    }
    return out;
  }

  int connect_fd() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connected = false;
    for (int i = 0; i < 200 && !connected; ++i) {
      connected = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (!connected) usleep(10000);
    }
    EXPECT_TRUE(connected);
    return fd;
  }

  process_state process_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  script script_;
  std::thread thread_;
};

}  // namespace rc::server::test
