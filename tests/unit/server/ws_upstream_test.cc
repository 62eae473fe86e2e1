// ws_upstream against a hand-written WebSocket server on loopback (a blocking socket in a
// thread), driven by a one-shard reactor: the upgrade, messages both ways, and each failure.
#include "server/ws_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>

#include "core/listener.h"
#include "core/shard_group.h"
#include "proto/url.h"
#include "server/http_client.h"
#include "proto/ws.h"

namespace rc::server {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

struct listening {
  int fd = -1;
  uint16_t port = 0;
  listening() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listening() { close(fd); }
};

std::string read_head(int fd) {
  std::string head;
  char c;
  while (head.size() < 8192 && read(fd, &c, 1) == 1) {
    head += c;
    if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) break;
  }
  return head;
}

std::string accept_for(const std::string& head) {
  size_t k = head.find("Sec-WebSocket-Key: ");
  if (k == std::string::npos) k = head.find("sec-websocket-key: ");
  std::string key = head.substr(k + 19, head.find("\r\n", k) - k - 19);
  char out[28];
  ws::compute_accept(key, out);
  return std::string(out, 28);
}

// Reads one small masked text frame from the client and returns its payload.
std::string read_client_text(int fd) {
  unsigned char h[2];
  if (read(fd, h, 2) != 2 || h[0] != 0x81 || !(h[1] & 0x80)) return "<bad frame>";
  size_t len = h[1] & 0x7f;
  unsigned char mask[4];
  if (len > 125 || read(fd, mask, 4) != 4) return "<bad frame>";
  std::string p(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p.data() + got, len - got);
    if (n <= 0) return "<short>";
    got += static_cast<size_t>(n);
  }
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<char>(p[i] ^ mask[i % 4]);
  return p;
}

struct recorder final : ws_upstream_handler {
  virtual ~recorder() = default;
  std::function<void()> opened;
  std::function<void(std::string_view)> text;
  std::function<void(ws_failure, std::string_view)> failed;
  void on_open() override { opened(); }
  void on_text(std::string_view m) override { text(m); }
  void on_failure(ws_failure k, std::string_view d) override { failed(k, d); }
};

// Runs a reactor with one ws_upstream to 127.0.0.1:port until `done` is set by the handler.
void run_client(uint16_t port, recorder& rec, std::unique_ptr<ws_upstream>& up, bool& done) {
  shard_group_options o;
  o.shards = 1;
  auto err = run_shards(o, [&](reactor& r) {
    socket_set sockets(r);
    http_client client(r, sockets);
    url::endpoint ep;
    ep.kind = url::scheme::ws;
    ep.host = "127.0.0.1";
    ep.port = port;
    ep.host_is_literal = true;
    client_pool& pool = client.pool(ep);
    ws_target t;
    t.path = "/v1/responses";
    t.headers = {{"Authorization", "Bearer k"}};
    t.connect_timeout_ms = 5000;
    t.handshake_timeout_ms = 5000;
    up = std::make_unique<ws_upstream>(client, pool, t, &rec);
    r.add_turn_hook([&] {
      if (done) {
        up.reset();
        if (sockets.open_sockets() == 0) r.stop();
      }
    });
    r.run();
  });
  EXPECT_EQ(err, "");
}

TEST(WsUpstream, UpgradesAndExchangesText) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  listening l;
  std::string server_got;
  std::thread server([&] {
    int fd = accept(l.fd, nullptr, nullptr);
    std::string head = read_head(fd);
    if (head.find("Authorization: Bearer k\r\n") == std::string::npos) server_got = "no key";
    std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                       accept_for(head) + "\r\n\r\n";
    // The first message rides in the same packet as the head.
    resp += std::string("\x81\x05world", 7);
    (void)!write(fd, resp.data(), resp.size());
    if (server_got.empty()) server_got = read_client_text(fd);
    char c;
    while (read(fd, &c, 1) > 0) {
    }
    close(fd);
  });
  recorder rec;
  std::unique_ptr<ws_upstream> up;
  bool done = false, opened = false;
  std::string got;
  rec.opened = [&] {
    opened = true;
    EXPECT_TRUE(up->send_text("hello"));
  };
  rec.text = [&](std::string_view m) {
    got = std::string(m);
    done = true;
  };
  rec.failed = [&](ws_failure, std::string_view d) {
    ADD_FAILURE() << d;
    done = true;
  };
  run_client(l.port, rec, up, done);
  server.join();
  EXPECT_TRUE(opened);
  EXPECT_EQ(got, "world");
  EXPECT_EQ(server_got, "hello");
}

void expect_failure(const std::function<void(int)>& serve, ws_failure want) {
  listening l;
  std::thread server([&] {
    int fd = accept(l.fd, nullptr, nullptr);
    serve(fd);
    close(fd);
  });
  recorder rec;
  std::unique_ptr<ws_upstream> up;
  bool done = false;
  int failures = 0;
  ws_failure kind{};
  rec.opened = [] {};
  rec.text = [&](std::string_view) { ADD_FAILURE() << "unexpected message"; };
  rec.failed = [&](ws_failure k, std::string_view) {
    ++failures;
    kind = k;
    done = true;
  };
  run_client(l.port, rec, up, done);
  server.join();
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(kind, want);
}

TEST(WsUpstream, RefusedUpgradeIsAHandshakeFailure) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  expect_failure(
      [](int fd) {
        read_head(fd);
        std::string resp = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        (void)!write(fd, resp.data(), resp.size());
      },
      ws_failure::handshake);
}

TEST(WsUpstream, WrongAcceptIsAHandshakeFailure) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  expect_failure(
      [](int fd) {
        read_head(fd);
        std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
        (void)!write(fd, resp.data(), resp.size());
      },
      ws_failure::handshake);
}

TEST(WsUpstream, BadFramesAreAProtocolFailure) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  expect_failure(
      [](int fd) {
        std::string head = read_head(fd);
        std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                           accept_for(head) + "\r\n\r\n";
        resp += std::string("\xF1\x01x", 3);  // RSV bits set: a protocol error
        (void)!write(fd, resp.data(), resp.size());
        char c;
        while (read(fd, &c, 1) > 0) {
        }
      },
      ws_failure::protocol);
}

TEST(WsUpstream, PeerCloseIsReported) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  expect_failure([](int fd) { read_head(fd); }, ws_failure::closed);
}

TEST(WsUpstream, ConnectRefused) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  uint16_t port;
  {
    listening l;
    port = l.port;
  }  // closed: nothing listens there any more
  recorder rec;
  std::unique_ptr<ws_upstream> up;
  bool done = false;
  ws_failure kind{};
  rec.opened = [] {};
  rec.text = [](std::string_view) {};
  rec.failed = [&](ws_failure k, std::string_view) {
    kind = k;
    done = true;
  };
  run_client(port, rec, up, done);
  EXPECT_EQ(kind, ws_failure::connect);
}

}  // namespace
}  // namespace rc::server
