// http_client over TLS against Node's `https` server (nobody here wrote it), with a CA and
// leaves made at test time: verification against a CA file, SNI for names and none for IP
// literals, keep-alive reuse, chunked bodies, untrusted CAs and hostname mismatches.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "../proto/tls_test_certs.h"
#include "http_test_server.h"
#include "server/http_client.h"

namespace rc::server {
namespace {

using test::client_run;
using test::recording_sink;
using test::run_client;

constexpr const char* server_js = R"js(
const https = require('https');
const fs = require('fs');
const [cert, key] = process.argv.slice(2);
let connections = 0;
const server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
  (req, res) => {
    if (req.url === '/chunked') {
      res.write('part1,');
      setTimeout(() => res.end('part2'), 20);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({path: req.url, sni: req.socket.servername || '',
                            connection: req.socket.connection_number}));
  });
server.on('secureConnection', (s) => { s.connection_number = ++connections; });
server.on('upgrade', (req, socket) => {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
               'Connection: Upgrade\r\n\r\nhello');
  socket.on('data', (d) => socket.end('pong:' + d));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.stdin.on('end', () => process.exit(0));  // the test went away
process.stdin.resume();
)js";

// A Node https server in a child process; stopped on destruction.
class node_https {
 public:
  node_https(const std::string& script, const std::string& cert, const std::string& key) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(in[0], 0);
      close(out[0]);
      close(in[1]);
      execlp("node", "node", script.c_str(), cert.c_str(), key.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    close(in[0]);
    stdin_ = in[1];
    FILE* f = fdopen(out[0], "r");
    char line[32] = {};
    if (f && fgets(line, sizeof line, f)) port_ = static_cast<uint16_t>(std::atoi(line));
    if (f) fclose(f);
  }
  ~node_https() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  uint16_t port_ = 0;
};

bool have_node() {
  return std::system("node --version > /dev/null 2>&1") == 0;
}

class HttpClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
    if (!have_node()) GTEST_SKIP() << "node unavailable";
    ca_ = &certs_.make_ca("ca", "ringcast test CA");
    other_ca_ = &certs_.make_ca("other-ca", "someone else's CA");
    leaf_ = &certs_.make_leaf("leaf", ca_, {"DNS:localhost", "IP:127.0.0.1"});
    script_ = certs_.write_file("server.js", server_js);
  }

  url::endpoint https(const std::string& host, uint16_t port) {
    url::endpoint e;
    e.kind = url::scheme::https;
    e.host = host;
    e.port = port;
    e.host_is_literal = host != "localhost";
    return e;
  }

  // Runs GETs of `targets` one after another on one pool; returns the sinks.
  std::vector<recording_sink> fetch(const url::endpoint& ep, const pool_options& o,
                                    std::vector<std::string> targets, pool_stats* stats = nullptr) {
    std::vector<recording_sink> sinks(targets.size());
    std::vector<request_handle> handles(targets.size());
    size_t next = 0;
    std::function<void()> start_next;  // outlives the set-up lambda: the sinks call it later
    client_pool* pool_ptr = nullptr;
    run_client([&](client_run& run) {
      pool_ptr = &run.client->pool(ep, o);
      start_next = [&] {
        client_pool& pool = *pool_ptr;
        if (next == targets.size()) {
          if (stats) *stats = pool.stats();
          run.done();
          return;
        }
        size_t i = next++;
        sinks[i].on_end_hook = start_next;
        http_request r;
        r.target = targets[i];
        r.timeouts.first_byte_ms = 10000;
        handles[i] = run.client->start(pool, std::move(r), sinks[i]);
      };
      start_next();
    });
    return sinks;
  }

  tls::testing::cert_factory certs_;
  const tls::testing::issued* ca_ = nullptr;
  const tls::testing::issued* other_ca_ = nullptr;
  const tls::testing::issued* leaf_ = nullptr;
  std::string script_;
};

TEST_F(HttpClientTls, VerifiesAgainstTheCaSendsSniAndReusesTheConnection) {
  node_https server(script_, leaf_->cert_file, leaf_->key_file);
  ASSERT_NE(server.port(), 0);
  pool_options o;
  o.tls.ca_file = ca_->cert_file;
  pool_stats stats;
  auto got = fetch(https("localhost", server.port()), o, {"/first", "/chunked"}, &stats);
  ASSERT_TRUE(got[0].ended) << got[0].error_message;
  EXPECT_EQ(got[0].body, R"({"path":"/first","sni":"localhost","connection":1})");
  ASSERT_TRUE(got[1].ended) << got[1].error_message;
  EXPECT_EQ(got[1].body, "part1,part2");
  EXPECT_EQ(stats.reused, 1u);
  EXPECT_EQ(stats.connects, 1u);
}

TEST_F(HttpClientTls, IpLiteralIsVerifiedWithoutSni) {
  node_https server(script_, leaf_->cert_file, leaf_->key_file);
  ASSERT_NE(server.port(), 0);
  pool_options o;
  o.tls.ca_file = ca_->cert_file;
  auto got = fetch(https("127.0.0.1", server.port()), o, {"/ip"});
  ASSERT_TRUE(got[0].ended) << got[0].error_message;
  EXPECT_EQ(got[0].body, R"({"path":"/ip","sni":"","connection":1})");
}

TEST_F(HttpClientTls, UntrustedCaFailsWithATlsError) {
  node_https server(script_, leaf_->cert_file, leaf_->key_file);
  ASSERT_NE(server.port(), 0);
  pool_options o;
  o.tls.ca_file = other_ca_->cert_file;
  auto got = fetch(https("localhost", server.port()), o, {"/"});
  EXPECT_EQ(got[0].error, client_error::tls);
  EXPECT_NE(got[0].error_message.find("certificate verify failed"), std::string::npos)
      << got[0].error_message;
}

TEST_F(HttpClientTls, HostnameMismatchFailsUnlessVerificationIsOff) {
  const auto& wrong = certs_.make_leaf("wrong", ca_, {"DNS:other.example"});
  node_https server(script_, wrong.cert_file, wrong.key_file);
  ASSERT_NE(server.port(), 0);
  pool_options o;
  o.tls.ca_file = ca_->cert_file;
  auto got = fetch(https("localhost", server.port()), o, {"/"});
  EXPECT_EQ(got[0].error, client_error::tls);
  EXPECT_NE(got[0].error_message.find("hostname mismatch"), std::string::npos)
      << got[0].error_message;
  o.tls.verify = false;
  auto unchecked = fetch(https("localhost", server.port()), o, {"/anyway"});
  EXPECT_TRUE(unchecked[0].ended) << unchecked[0].error_message;
}

TEST_F(HttpClientTls, UnreadableCaFileFailsClearly) {
  pool_options o;
  o.tls.ca_file = certs_.dir() + "/missing.pem";
  auto got = fetch(https("127.0.0.1", 1), o, {"/"});
  EXPECT_EQ(got[0].error, client_error::tls);
  EXPECT_NE(got[0].error_message.find("TLS setup"), std::string::npos) << got[0].error_message;
}

// The pool reads its CA file when it is made, not at its first connect on the request path.
TEST_F(HttpClientTls, TheTlsContextIsMadeWithThePool) {
  node_https server(script_, leaf_->cert_file, leaf_->key_file);
  ASSERT_NE(server.port(), 0);
  std::string ca_copy = certs_.dir() + "/ca-copy.pem";
  {
    std::ifstream in(ca_->cert_file);
    std::ofstream out(ca_copy);
    out << in.rdbuf();
  }
  pool_options o;
  o.tls.ca_file = ca_copy;
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(https("localhost", server.port()), o);
    std::remove(ca_copy.c_str());  // gone before the first request
    s.on_end_hook = [&] { run.done(); };
    http_request r;
    r.target = "/after";
    h = run.client->start(pool, std::move(r), s);
  });
  EXPECT_TRUE(s.ended) << s.error_message;
  EXPECT_EQ(s.body, R"({"path":"/after","sni":"localhost","connection":1})");
}

TEST_F(HttpClientTls, UpgradeHandsOverTheEncryptedConnection) {
  node_https server(script_, leaf_->cert_file, leaf_->key_file);
  ASSERT_NE(server.port(), 0);
  struct collector final : stream_handler {
    std::string data;
    int closed = -1;
    std::function<void()> on_close;
    void on_stream_data(std::string_view bytes) override { data.append(bytes); }
    void on_stream_closed(int error) override {
      closed = error;
      on_close();
    }
  } got;
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    pool_options o;
    o.tls.ca_file = ca_->cert_file;
    client_pool& pool = run.client->pool(https("localhost", server.port()), o);
    s.on_end_hook = [&] {
      ASSERT_TRUE(s.upgraded) << s.error_message;
      got.on_close = [&] { run.done(); };
      s.upgraded->set_handler(got);
      s.upgraded->send("ping");
    };
    http_request r;
    r.target = "/ws";
    r.upgrade = true;
    r.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
    h = run.client->start(pool, std::move(r), s);
  });
  EXPECT_EQ(s.status, 101);
  EXPECT_EQ(s.upgraded_leftover + got.data, "hellopong:ping");
  EXPECT_EQ(got.closed, 0);
}

}  // namespace
}  // namespace rc::server
