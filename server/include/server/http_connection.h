// http_connection: one client connection speaking HTTP/1.1, on the shard that accepted it.
//
// Input is parsed in place from the shard's receive buffers. Bytes are copied into the
// connection's own buffer only when a request spans two reads or must wait (pipelined requests
// behind an asynchronous response), so an idle keep-alive connection holds no buffer at all.
// Requests are answered strictly in order: while a handler completes asynchronously, later
// pipelined requests stay buffered (bounded) and are parsed once the response is written.
//
// Backpressure: when queued output exceeds output_bytes_max (a client pipelining without
// reading), the connection stops parsing and stops receiving until its output has drained; TCP
// flow control then holds the client back.
//
// Timers (one per connection, its meaning follows the phase): the header timeout runs from the
// first byte of a request until its head and body are complete (408, then close); the idle
// timeout between keep-alive requests (silent close); the write timeout while output is queued
// (the connection is dropped).
//
// Thread-safety: owned by its shard.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <utility>

#include "base/byte_buffer.h"
#include "core/intrusive_list.h"
#include "core/stream_socket.h"
#include "core/timer_wheel.h"
#include "proto/http1_parser.h"
#include "server/router.h"

namespace rc::server {

class shard_server;
class http_connection;
struct connection_list_tag;

using header_list = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// What a handler sees: the request and where to answer it. Lives for the handler call only; an
// asynchronous handler keeps the connection id (not this object) and answers through the shard.
class request_context {
 public:
  request_context(shard_server& s, http_connection& c, const http1::request& r,
                  std::string_view request_body, size_t request_body_capacity,
                  const route_match& m)
      : shard(s),
        conn(c),
        req(r),
        body(request_body),
        body_capacity(request_body_capacity),
        route(m) {}

  shard_server& shard;
  http_connection& conn;
  const http1::request& req;
  std::string_view body;  // the request body (Content-Length or de-chunked)
  size_t body_capacity;   // readable bytes from body.data(): >= body.size() + JSON padding
  const route_match& route;
};

class http_connection final : public stream_socket, public list_node<connection_list_tag> {
 public:
  http_connection(shard_server& shard, int fd, uint64_t id);
  ~http_connection() override;

  uint64_t id() const { return id_; }
  void start();

  // Completes the current request with a full response. Extra headers come before the
  // generated ones (Content-Length, x-request-id, Connection).
  void respond(int status, std::string_view content_type, std::string_view body,
               header_list headers = {});
  // Completes the current request with the OpenAI-style JSON error envelope.
  void respond_error(int status, std::string_view message,
                     std::string_view type = "invalid_request_error", std::string_view param = {},
                     std::string_view code = {}, header_list headers = {});

  // The shard is draining: finish the current request (if any) with Connection: close.
  void begin_drain();
  bool idle() const { return phase_ == phase::idle && in_.empty() && queued_bytes() == 0; }

 private:
  enum class phase : uint8_t {
    idle,          // between requests
    reading,       // part of a request has arrived
    handling,      // a handler runs (synchronously) or will answer later (asynchronously)
    closing,
  };

  // stream_socket
  void on_data(const char* data, size_t len) override;
  void on_eof(int err) override;
  void on_drained() override;
  void on_closed() override;

  // Parses and answers complete requests in [data, data + len); returns the bytes consumed.
  size_t process(const char* data, size_t len, size_t capacity);
  // One request at `data`; returns bytes consumed, or 0 when it is incomplete.
  size_t process_one(const char* data, size_t len, size_t capacity);
  void dispatch(const http1::request& req, std::string_view body, size_t body_capacity);
  void reject(http1::error e);
  void keep_input(const char* data, size_t len);
  void resume_input();
  void finish_request(int status);
  void update_timer();
  void on_timer();
  bool over_output_limit() const;

  shard_server& shard_;
  uint64_t id_;
  phase phase_ = phase::idle;
  bool async_ = false;          // the current handler answers later
  bool in_process_ = false;     // process() is on the stack
  bool input_paused_ = false;   // receiving paused for backpressure
  bool continue_sent_ = false;  // 100 Continue sent for the current request
  bool eof_ = false;            // the peer finished sending

  // Input that must outlive a receive buffer: a request spanning reads, or pipelined requests
  // waiting behind an asynchronous response. Empty (and unallocated) most of the time.
  byte_buffer in_;
  size_t scanned_hint_ = 0;     // bytes of in_ already scanned without finding a complete head
  size_t need_bytes_ = 0;       // a Content-Length request needs in_ to reach this size
  std::unique_ptr<http1::chunked_decoder> chunked_;
  byte_buffer chunked_body_;
  size_t chunked_fed_ = 0;      // raw body bytes after the head fed to chunked_

  // The request being answered.
  struct current_request {
    route_id route = route_id::unmatched;
    http1::version version = http1::version::http_1_1;
    bool keep_alive = true;
    bool head = false;
    uint8_t request_id_len = 0;
    uint64_t start_ns = 0;
    char request_id[64];
  } current_;

  uint32_t requests_served_ = 0;
  uint64_t request_started_ms_ = 0;  // first byte of the current request (header timeout)
  timer timer_;
};

}  // namespace rc::server
