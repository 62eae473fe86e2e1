// connection: the access log's view of requests and streams. See connection.h and access_log.h.
//
// A line is written when a request's outcome is known: a plain response as it is queued; an SSE
// stream when its response ends (or the connection ends under it); a WebSocket when its
// connection ends; a request still unanswered when its client leaves (status 499, as nginx logs
// it). Off (no --access-log), every hook returns after one test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/clock.h"
#include "server/admission.h"
#include "server/connection.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// "address:port" ("[v6]:port") of the peer of `fd` into `out`; returns the length (0: unknown).
size_t peer_text(int fd, char (&out)[48]) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  char host[INET6_ADDRSTRLEN];
  int n = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (!inet_ntop(AF_INET, &a->sin_addr, host, sizeof host)) return 0;
    n = std::snprintf(out, sizeof out, "%s:%u", host, ntohs(a->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (!inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host)) return 0;
    n = std::snprintf(out, sizeof out, "[%s]:%u", host, ntohs(a->sin6_port));
  }
  return n > 0 ? std::min(static_cast<size_t>(n), sizeof out - 1) : 0;
}

size_t copy_cut(char* dst, size_t cap, std::string_view src) {
  size_t n = std::min(cap, src.size());
  std::memcpy(dst, src.data(), n);
  return n;
}

}  // namespace

void connection::access_begin(const http1::request* req, size_t wire_bytes) {
  if (!shard_.access_logger().enabled()) return;
  if (!access_) {
    access_ = std::make_unique<access_state>();
    access_->client_len = static_cast<uint8_t>(peer_text(fd(), access_->client));
  }
  access_state& a = *access_;
  a.open = true;
  a.reason = close_reason::none;
  a.bytes_in = wire_bytes;
  a.out_mark = bytes_sent() + queued_bytes();
  a.first_byte_ns = 0;
  a.first_token_ns = 0;
  a.method_len = 0;
  a.path_len = 0;
  if (req) {
    a.method_len = static_cast<uint8_t>(copy_cut(a.method, sizeof a.method, req->method_name));
    // The path without its query: a query may carry secrets (?api_key=).
    a.path_len = static_cast<uint16_t>(copy_cut(a.path, sizeof a.path, req->path));
  }
}

void connection::access_end(int status, uint64_t now) {
  if (!access_ || !access_->open) return;
  access_state& a = *access_;
  a.open = false;
  auto since_start = [&](uint64_t t) {
    return t == 0 ? int64_t{-1} : static_cast<int64_t>((t - current_.start_ns) / 1000);
  };
  // What the server produced for this request: sent, queued on the socket, or waiting in the
  // stream's backlog. Once the socket is closed, only what was sent.
  uint64_t produced = bytes_sent();
  if (!closing()) produced += queued_bytes() + (ring_ ? ring_->queued_bytes() : 0);
  if (render_to_) {
    // An answer held behind deferred ones (connection_deferred.cc): its bytes are in its slot.
    a.out_mark = produced;
    produced += render_to_->size();
  }
  access_record r;
  r.wall_ms = shard_.access_logger().wall_ms(now);
  r.request_id = std::string_view(current_.request_id, current_.request_id_len);
  r.client = std::string_view(a.client, a.client_len);
  if (current_.key) r.key = current_.key->name;
  r.method = std::string_view(a.method, a.method_len);
  r.route = route_label(current_.route);
  r.path = std::string_view(a.path, a.path_len);
  r.protocol = mode_ == mode::ws ? "ws" : mode_ == mode::sse ? "sse" : "http";
  r.status = status;
  r.bytes_in = mode_ == mode::ws ? bytes_received() - a.in_mark : a.bytes_in;
  r.bytes_out = produced > a.out_mark ? produced - a.out_mark : 0;
  r.duration_us = (now - current_.start_ns) / 1000;
  r.first_byte_us = since_start(a.first_byte_ns);
  r.first_token_us = since_start(a.first_token_ns);
  r.reason = a.reason == close_reason::none ? close_reason::complete : a.reason;
  shard_.access_logger().write(r);
}

void connection::access_closed() {
  // Deferred publications (connection_deferred.cc) still unanswered: a 499 line each, first (they
  // came before the current request). Each is described by its own request state.
  for (deferred_answer& d : deferred_) {
    if (d.ticket == 0 || d.ready || !d.access || !d.access->open) continue;
    std::swap(current_, d.request);
    std::swap(access_, d.access);
    note_close_reason(shard_.draining() ? close_reason::drain : close_reason::client_closed);
    access_end(499, monotonic_ns());
    std::swap(current_, d.request);
    std::swap(access_, d.access);
  }
  if (!access_ || !access_->open) return;
  // The connection ended before the line was written: a stream or a WebSocket whose reader left
  // (or that was dropped), or a request never answered (the drain deadline aborts those).
  note_close_reason(shard_.draining() ? close_reason::drain : close_reason::client_closed);
  int status = mode_ == mode::ws ? 101 : mode_ == mode::sse ? 200 : 499;
  access_end(status, monotonic_ns());
}

void connection::note_close_reason(close_reason r) {
  if (access_ && access_->reason == close_reason::none) access_->reason = r;
}

void connection::note_first_token() {
  if (access_ && access_->open && access_->first_token_ns == 0)
    access_->first_token_ns = monotonic_ns();
}

std::string_view connection::client_address() {
  return access_ ? std::string_view(access_->client, access_->client_len) : std::string_view();
}

}  // namespace rc::server
