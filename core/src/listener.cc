#include "core/listener.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/assert.h"
#include "core/log.h"

namespace rc {

std::string parse_socket_address(std::string_view text, socket_address& out) {
  out = socket_address{};
  out.text = std::string(text);
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return "expected HOST:PORT, got '" + out.text + "'";
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535)
    return "invalid port in '" + out.text + "'";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::string h(host.substr(1, host.size() - 2));
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, h.c_str(), &a6->sin6_addr) != 1)
      return "invalid IPv6 address in '" + out.text + "'";
    out.length = sizeof(sockaddr_in6);
    return {};
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(static_cast<uint16_t>(port));
  std::string h(host.empty() ? "0.0.0.0" : host);
  if (inet_pton(AF_INET, h.c_str(), &a4->sin_addr) != 1)
    return "invalid IPv4 address in '" + out.text + "' (use [addr]:port for IPv6)";
  out.length = sizeof(sockaddr_in);
  return {};
}

int open_listener(const socket_address& addr, int backlog, std::string& error) {
  int fd = socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    error = std::string("setsockopt: ") + strerror(errno);
    close(fd);
    return -1;
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
    error = "cannot listen on " + addr.text + ": " + strerror(errno);
    if (errno == EADDRINUSE) error += " (another process holds the port)";
    close(fd);
    return -1;
  }
  if (listen(fd, backlog) != 0) {
    error = std::string("listen: ") + strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

std::string attach_cpu_steering(int listen_fd, unsigned group_size) {
  // return cpu % group_size: the index of the listener in the group.
  sock_filter code[] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)},
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, group_size},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (setsockopt(listen_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0)
    return std::string("SO_ATTACH_REUSEPORT_CBPF: ") + strerror(errno);
  return {};
}

// ---- acceptor ----

acceptor::acceptor(reactor& r, int listen_fd, on_accept_fn on_accept)
    : reactor_(r), fd_(listen_fd), on_accept_(std::move(on_accept)) {
  retry_.bind<acceptor, &acceptor::on_retry>(this);
}

acceptor::~acceptor() {
  // REQUIRES: stopped (no accept in flight references this object).
  RC_ASSERT(!armed_);
  if (fd_ >= 0) close(fd_);
}

void acceptor::start() { arm(); }

void acceptor::arm() {
  if (stopping_ || armed_) return;
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, make_user_data(this, 1));
  armed_ = true;
}

void acceptor::stop() {
  if (stopping_) return;
  stopping_ = true;
  reactor_.cancel_timer(retry_);
  if (armed_) {
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, 1), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  } else if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void acceptor::on_completion(uint8_t, int32_t res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) armed_ = false;
  if (res >= 0) {
    if (stopping_) {
      close(res);
    } else {
      ++accepted_;
      on_accept_(res);
    }
  } else if (res != -ECANCELED) {
    ++errors_;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      // Out of descriptors or memory: back off instead of spinning on the same error.
      RC_WARN("accept: %s; pausing accepts for 100 ms", strerror(-res));
      if (!armed_ && !stopping_) reactor_.arm_after_ms(retry_, 100);
      return;
    }
    // ECONNABORTED and friends concern one connection; keep going.
  }
  if (!armed_) {
    if (stopping_) {
      if (fd_ >= 0) close(fd_);
      fd_ = -1;
    } else {
      arm();
    }
  }
}

// ---- signal_reader ----

signal_reader::signal_reader(reactor& r, on_signal_fn fn) : reactor_(r), fn_(std::move(fn)) {}

signal_reader::~signal_reader() {
  RC_ASSERT(!armed_);
  if (fd_ >= 0) close(fd_);
}

std::string signal_reader::start() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  fd_ = signalfd(-1, &set, SFD_CLOEXEC);
  if (fd_ < 0) return std::string("signalfd: ") + strerror(errno);
  arm();
  return {};
}

void signal_reader::arm() {
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_read(sqe, fd_, info_, sizeof(signalfd_siginfo), 0);
  io_uring_sqe_set_data64(sqe, make_user_data(this, 1));
  armed_ = true;
}

void signal_reader::stop() {
  if (stopping_) return;
  stopping_ = true;
  if (armed_) {
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, 1), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }
}

void signal_reader::on_completion(uint8_t, int32_t res, uint32_t) {
  armed_ = false;
  if (res == static_cast<int32_t>(sizeof(signalfd_siginfo)) && !stopping_) {
    signalfd_siginfo si;
    std::memcpy(&si, info_, sizeof si);
    fn_(static_cast<int>(si.ssi_signo));
  }
  if (!stopping_ && res != -ECANCELED) arm();
}

}  // namespace rc
