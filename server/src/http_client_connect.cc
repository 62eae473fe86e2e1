// client_pool's connects (server/http_client.h): TLS context set-up, name lookup, trying each
// address in turn, and what a finished connect turns into.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "base/assert.h"
#include "core/connector.h"
#include "http_client_request.h"
#include "http_connection.h"
#include "server/http_client.h"

namespace rc::server {
namespace {

bool literal_address(const std::string& host, uint16_t port, sockaddr_storage& out) {
  out = {};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    return true;
  }
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    return true;
  }
  return false;
}

socklen_t length_of(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

void client_pool::connect_one() {
  ++connecting_;
  ++stats_.connects;
  if (endpoint_.tls() && !tls_context_) {
    fail_connect_later(EPROTO, "TLS setup: " + tls_setup_error_);
    return;
  }
  auto addrs = std::make_shared<std::vector<sockaddr_storage>>(1);
  if (literal_address(endpoint_.host, endpoint_.port, (*addrs)[0])) {
    connect_to(std::move(addrs), 0);
    return;
  }
  if (client_.lookup_) {
    client_.lookup_(
        endpoint_.host, endpoint_.port,
        [alive = alive_, this](std::vector<sockaddr_storage> found, int error,
                               std::string_view message) {
          if (!*alive) return;
          if (error != 0 || found.empty()) {
            on_connected(-1, EHOSTUNREACH,
                         "cannot resolve host \"" + endpoint_.host + "\": " + std::string(message));
            return;
          }
          connect_to(std::make_shared<std::vector<sockaddr_storage>>(std::move(found)), 0);
        });
    return;
  }
  fail_connect_later(EHOSTUNREACH, "no name lookup for \"" + endpoint_.host + "\"");
}

void client_pool::fail_connect_later(int error, std::string why) {
  reactor& loop = client_.reactor_;
  loop.post(loop.shard_id(), [alive = alive_, this, error, why = std::move(why)]() mutable {
    if (*alive) on_connected(-1, error, std::move(why));
  });
}

// Tries the addresses in order: a refused or unreachable one moves on to the next; a timeout
// does not (the request's own connect deadline is what the caller chose to wait).
void client_pool::connect_to(std::shared_ptr<std::vector<sockaddr_storage>> addrs, size_t i) {
  const sockaddr_storage& a = (*addrs)[i];
  client_.connector_->connect(
      reinterpret_cast<const sockaddr*>(&a), length_of(a), nullptr, 0,
      [alive = alive_, this, addrs, i](int fd, int error) {
        if (!*alive) {
          if (fd >= 0) ::close(fd);
          return;
        }
        if (fd < 0 && error != ETIMEDOUT && error != ECANCELED && i + 1 < addrs->size()) {
          connect_to(addrs, i + 1);
          return;
        }
        on_connected(fd, error, {});
      });
}

void client_pool::on_connected(int fd, int error, std::string why) {
  RC_ASSERT(connecting_ > 0);
  --connecting_;
  if (fd < 0) {
    client_error kind =
        error == ETIMEDOUT ? client_error::timeout_connect : client_error::connect_failed;
    if (error == EPROTO && !tls_context_) kind = client_error::tls;
    std::string message = "connect to " + label_ + ": ";
    message += why.empty() ? std::string(std::strerror(error)) : why;
    std::shared_ptr<bool> alive = alive_;
    fail_first_waiter(kind, message);
    if (*alive) serve_waiters();  // the callback may have destroyed the client
    return;
  }
  auto* c = new http_connection(client_.sockets_, fd, this, tls_context_.get(), endpoint_.host);
  all_.push_back(c);
  if (!waiting_.empty()) {
    client_request* r = waiting_.front();
    waiting_.erase(waiting_.begin());
    ++busy_;
    r->attach(*c, false);
  } else if (idle_.size() < options_.max_idle) {
    idle_.push_back(c);
    c->make_idle(options_.idle_keepalive_ms);
  } else {
    c->close_idle();
  }
  serve_waiters();
}

}  // namespace rc::server
