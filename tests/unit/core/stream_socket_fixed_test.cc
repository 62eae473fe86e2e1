// stream_socket with registered descriptors (socket_set::register_fds): sockets whose fd fits the
// fixed-file table receive and send through their slot, keep a real fd for everything else
// (the graceful close's shutdown(2), getpeername), free their slot on close so that a reused fd
// number registers again, and sockets past the table keep working with the plain fd. Real TCP on
// loopback, one-shard reactor, a blocking client in another thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "core/listener.h"
#include "loopback_listener.h"
#include "core/shard_group.h"
#include "core/stream_socket.h"
#include "core/uring.h"

namespace rc {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

struct counts {
  std::atomic<int> closed{0};
  std::atomic<int> peer_ok{0};  // getpeername on the socket's fd worked
  std::atomic<uint64_t> registered_max{0};
  std::atomic<uint64_t> unregistered{0};
  std::atomic<uint64_t> registered_at_end{99};
};

// Echoes each chunk once, then closes gracefully after the peer's FIN.
class echo_socket final : public stream_socket {
 public:
  echo_socket(socket_set& set, int fd, counts& c) : stream_socket(set, fd), c_(c) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) ++c_.peer_ok;
  }
  void on_data(const char* data, size_t len) override {
    out().append(data, len);
    flush();
  }
  void on_eof(int) override { close_after_flush(100); }
  void on_closed() override {
    ++c_.closed;
    delete this;
  }

 private:
  counts& c_;
};

using listener_fixture = loopback_listener;

// One round trip and a half-close per connection, `connections` of them one after another (so
// the server's fd numbers are reused); returns how many echoed exactly and then saw EOF.
int run(listener_fixture& f, unsigned slots, int connections, counts& c) {
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 256;
  o.reactor.ring.cq_entries = 4096;
  o.reactor.buffers.count = 64;
  o.reactor.buffers.buffer_bytes = 1024;
  std::atomic<int> good{0};
  std::thread client;
  auto err = run_shards(o, [&](reactor& r) {
    socket_set sockets(r);
    EXPECT_EQ(sockets.register_fds(slots), "");
    EXPECT_EQ(sockets.registered_fd_slots(), slots);
    acceptor acc(r, f.listen_fd, [&](int fd) {
      auto* s = new echo_socket(sockets, fd, c);
      s->start_receiving();
    });
    acc.start();
    r.add_turn_hook([&] {
      uint64_t now = sockets.registered_sockets();
      if (now > c.registered_max) c.registered_max = now;
      c.unregistered = sockets.unregistered_sockets();
      if (c.closed.load() == connections && !acc.stopped()) acc.stop();
      if (acc.stopped()) {
        c.registered_at_end = sockets.registered_sockets();
        r.stop();
      }
    });
    client = std::thread([&] {
      for (int i = 0; i < connections; ++i) {
        int fd = f.connect_client();
        std::string msg = "ping " + std::to_string(i);
        if (write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) break;
        shutdown(fd, SHUT_WR);
        std::string got;
        char buf[256];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
        if (got == msg && n == 0) ++good;  // n == 0: the server's FIN (its shutdown on the fd)
        close(fd);
      }
    });
    r.run();
  });
  client.join();
  EXPECT_EQ(err, "");
  return good.load();
}

// Before 6.13 register_fds refuses (an emptied slot's socket outlived pending older requests).
bool prompt_release_kernel() {
  utsname u{};
  return uname(&u) == 0 && kernel_release_at_least(u.release, 6, 13);
}

TEST(StreamSocketFixed, KernelReleasesCompareByMajorThenMinor) {
  EXPECT_TRUE(kernel_release_at_least("6.13.0", 6, 13));
  EXPECT_TRUE(kernel_release_at_least("6.18.44", 6, 13));
  EXPECT_TRUE(kernel_release_at_least("7.0-rc1", 6, 13));
  EXPECT_FALSE(kernel_release_at_least("6.12.9", 6, 13));
  EXPECT_FALSE(kernel_release_at_least("6.1.0-18-amd64", 6, 13));
  EXPECT_FALSE(kernel_release_at_least("5.19", 6, 13));
  EXPECT_FALSE(kernel_release_at_least("", 6, 13));
  EXPECT_FALSE(kernel_release_at_least("linux", 6, 13));
}

TEST(StreamSocketFixed, RefusedOnKernelsThatHoldClosedSlots) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  if (prompt_release_kernel()) GTEST_SKIP() << "this kernel releases emptied slots at once";
  shard_group_options o;
  o.shards = 1;
  auto err = run_shards(o, [&](reactor& r) {
    socket_set sockets(r);
    EXPECT_NE(sockets.register_fds(64).find("6.13"), std::string::npos);
    EXPECT_EQ(sockets.registered_fd_slots(), 0u);
  });
  EXPECT_EQ(err, "");
}

TEST(StreamSocketFixed, RegisteredSocketsEchoCloseAndReuseSlots) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  if (!prompt_release_kernel()) GTEST_SKIP() << "registered descriptors need Linux 6.13";
  listener_fixture f;
  counts c;
  EXPECT_EQ(run(f, 1024, 40, c), 40);
  EXPECT_EQ(c.closed.load(), 40);
  EXPECT_EQ(c.peer_ok.load(), 40);
  EXPECT_GE(c.registered_max.load(), 1u);  // the sockets did use slots
  EXPECT_EQ(c.unregistered.load(), 0u);    // including every reused fd number
  EXPECT_EQ(c.registered_at_end.load(), 0u);
}

TEST(StreamSocketFixed, SocketsPastTheTableUseThePlainFd) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  if (!prompt_release_kernel()) GTEST_SKIP() << "registered descriptors need Linux 6.13";
  listener_fixture f;
  counts c;
  // Three slots: every accepted fd (past stdin/out/err and the listener) is beyond the table.
  EXPECT_EQ(run(f, 3, 5, c), 5);
  EXPECT_EQ(c.closed.load(), 5);
  EXPECT_EQ(c.registered_max.load(), 0u);
  EXPECT_EQ(c.unregistered.load(), 5u);
}

}  // namespace
}  // namespace rc
