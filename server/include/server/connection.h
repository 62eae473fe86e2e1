// connection: one client connection on the shard that accepted it. It speaks HTTP/1.1; a request
// may turn it into a Server-Sent Events stream (until that response ends) or, by upgrade, into a
// WebSocket (for good).
//
// Input is parsed in place from the shard's receive buffers. Bytes are copied into the
// connection's own buffer only when a request spans two reads or must wait (pipelined requests
// behind an asynchronous response), so an idle keep-alive connection holds no buffer at all.
// What reading requests takes (http_input) is released once the connection is a WebSocket.
// Requests are answered strictly in order: while a handler completes asynchronously, later
// pipelined requests stay buffered (bounded) and are parsed once the response is written. The
// exception is a deferred answer (connection_deferred.cc): a handler whose answer comes from
// another shard (a publication to a topic homed elsewhere) may let the connection parse the
// publications pipelined behind it meanwhile, so a run of them crosses shards together; their
// answers are held and written in request order.
//
// Backpressure: when queued output exceeds output_bytes_max (a client pipelining without
// reading), the connection stops parsing and stops receiving until its output has drained; TCP
// flow control then holds the client back.
//
// Streams (SSE responses, WebSocket messages): producers push whole messages into the
// connection's outbound_ring, which the send path drains into the socket a window at a time.
// Crossing the ring's high watermark pauses the attached producers, draining to the low one
// resumes them; a consumer that overflows the ring, or stays above high for slow_consumer_ms, is
// disconnected (WebSocket close 1008 "slow consumer") and counted. Control frames (pong, close,
// flow.*) skip the ring and go straight to the socket queue, ahead of the backlog. The ring is
// taken from the shard's pool on first use and returned once drained.
//
// Admission (connection_admission.cc): an API request's key and rate token are decided once,
// when its head is complete. When only another shard can decide (the budget's home, limits.h),
// the connection stops parsing until the answer arrives, then parses on; a WebSocket holds the
// messages that arrive meanwhile and delivers them, in order, once decided.
//
// Timers (one per connection, its meaning follows the phase): the header timeout runs from the
// first byte of a request until its head and body are complete (408, then close); the idle
// timeout between keep-alive requests (silent close), also while deferred answers are awaited
// (one that never comes drops the connection); the write timeout while output is queued
// (the connection is dropped); on streams, the heartbeat (SSE ": ping", WebSocket ping) after
// heartbeat_ms of silence.
//
// Access log (--access-log; connection_access.cc): a line when a plain response is written, when
// an SSE response ends, and when a WebSocket or a request left unanswered ends with the connection.
// What a line needs beyond current_ lives in an access_state allocated with the first request,
// only when the log is on.
//
// Thread-safety: owned by its shard.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "base/byte_buffer.h"
#include "base/input_buffer.h"
#include "core/intrusive_list.h"
#include "core/outbound_ring.h"
#include "core/stream_socket.h"
#include "core/timer_wheel.h"
#include "proto/http1_parser.h"
#include "proto/http1_writer.h"
#include "proto/openai_errors.h"
#include "server/access_log.h"
#include "server/lazy_deque.h"
#include "server/limits.h"
#include "server/router.h"
#include "server/rules.h"
#include "server/stream.h"

namespace rc::ws {
struct deflate_agreement;
}

namespace rc::server {

class shard_server;
class connection;
struct api_key;
struct token_grant;
class ws_endpoint;
class ws_handler;
struct connection_list_tag;

using header_list = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// What a handler sees: the request and where to answer it. Lives for the handler call only; an
// asynchronous handler keeps the connection id (not this object) and answers through the shard.
class request_context {
 public:
  request_context(shard_server& s, connection& c, const http1::request& r,
                  std::string_view request_body, size_t request_body_capacity, const route_match& m)
      : shard(s),
        conn(c),
        req(r),
        body(request_body),
        body_capacity(request_body_capacity),
        route(m) {}

  shard_server& shard;
  connection& conn;
  const http1::request& req;
  std::string_view body;  // the request body (Content-Length or de-chunked)
  size_t body_capacity;   // readable bytes from body.data(): >= body.size() + JSON padding
  const route_match& route;
};

class connection final : public stream_socket, public list_node<connection_list_tag> {
 public:
  connection(shard_server& shard, int fd, uint64_t id);
  ~connection() override;

  uint64_t id() const { return id_; }
  void start();

  // Completes the current request with a full response. Extra headers come before the
  // generated ones (Content-Length, x-request-id, Connection). `content_type` is one of the
  // server's constants (it is written unchecked); header values are checked.
  void respond(int status, std::string_view content_type, std::string_view body,
               header_list headers = {});
  // The same with a body sent from `parts` in order, without copying them (a large answer built
  // in slices).
  void respond_parts(int status, std::string_view content_type, std::vector<shared_buffer>&& parts);
  // ---- deferred answers (connection_deferred.cc) ----
  // For an asynchronous handler of a topic publication whose answer comes in a later turn: the
  // connection may parse (and dispatch) the publications pipelined behind this one before it is
  // answered; answers are written in request order. Returns the answer's ticket, or 0 when this
  // request can't be deferred (answer it as an ordinary asynchronous one). The handler then
  // returns handler_result::async and answers through answer().
  uint64_t defer();
  // Runs `write` (which calls respond*/respond_error on this connection) for the request of
  // `ticket` (0: the current request, not deferred). Nothing happens if that request is gone.
  template <class F>
  void answer(uint64_t ticket, F&& write) {
    if (ticket == 0) {
      write();
      return;
    }
    if (!enter_deferred(ticket)) return;
    write();
    leave_deferred();
  }

  // Completes the current request with the OpenAI-style JSON error envelope.
  void respond_error(int status, std::string_view message,
                     std::string_view type = "invalid_request_error", std::string_view param = {},
                     std::string_view code = {}, header_list headers = {});

  // The API key the current request (or, after an upgrade, the WebSocket) presented, or nullptr.
  const api_key* request_key() const { return current_.key; }
  // The rules snapshot the current request (or the WebSocket) was admitted under: request_key()
  // and the CORS origin point into it, so it stays alive across a reload while they are in use.
  const rules_ref& request_rules() const { return rules_; }
  // The subscription token the current request (or the WebSocket) presented instead of a key, or
  // nullptr (authentication.h).
  const token_grant* request_token() const { return token_.get(); }
  // Whose budget the current request (or the WebSocket) uses, and what it allows.
  const limit_subject& budget() const { return current_.subject; }
  const limit_rule& budget_rule() const { return current_.rule; }
  // Runs admission for a WebSocket action: the rate limit of the connection's budget. On refusal
  // returns false and sets retry_after_ms. At most one per message (see ws_admission_ready).
  bool admit_ws_action(uint64_t& retry_after_ms);
  // Whether a WebSocket message may be handled now; false: its rate token is being asked of the
  // budget's home shard, and the endpoint is told (release_held) when it may go on.
  bool ws_admission_ready();

  // ---- draining (connection_drain.cc) ----
  // The shard is draining: an idle keep-alive connection closes; a request in progress is
  // answered with Connection: close; endless streams (topic subscriptions) are cut with a
  // "draining" error event; streams that end by themselves (generations, broker messages) run on.
  // A WebSocket with none closes with 1001. Returns true when the connection must be watched
  // with drain_step() until its streams end.
  bool begin_drain();
  // While draining: closes a WebSocket whose last finite stream has ended (1001). Returns true
  // once there is nothing left to watch.
  bool drain_step();
  // Whether a stream that ends by itself (a generation, a broker message) is in progress.
  bool streams_running() { return has_finite_streams(); }
  // The drain deadline (or a second signal): every stream still running is cut with the
  // "draining" error event, a request still running is answered 503, WebSockets close with 1001
  // behind their error events, and everything closes once that has been sent.
  void drain_deadline();
  bool idle() const {
    return mode_ == mode::http && phase_ == phase::idle && input_empty() && queued_bytes() == 0 &&
           deferred_.empty();
  }

  enum class mode : uint8_t { http, sse, ws };
  connection::mode current_mode() const { return mode_; }

  // ---- streams ----
  // Answers the current request with 200 and an event stream (chunked; close-delimited for
  // HTTP/1.0), with no-cache and no-buffering headers; heartbeats start.
  void begin_sse(header_list headers = {});
  // Ends the SSE response; the connection returns to HTTP (or closes if it can't keep alive).
  void end_sse();
  // Ends the SSE response and closes the connection (after a mid-stream error).
  void end_sse_and_close() {
    current_.keep_alive = false;
    end_sse();
  }
  // Whether SSE frames on this connection carry HTTP chunk framing.
  bool sse_chunked() const { return sse_chunked_; }
  // Queues one whole message on the stream. False if the stream can't take it (over, closing,
  // or this push made the connection a slow consumer, in which case it is being closed).
  bool stream_push(outbound_entry e);
  // Like stream_push() of the slice [offset, offset + len) of `first` followed by the whole of
  // `second` (when not null), for fan-out: when the client keeps up and the bytes are small they
  // are copied into the socket's buffer and no reference is taken (connection_stream.cc).
  bool stream_push_shared(const shared_buffer& first, uint32_t offset, uint32_t len,
                          const shared_buffer* second = nullptr);
  // Where a message for this connection alone may be written in place: the socket's own output
  // buffer, when nothing waits in a backlog and the socket is under its send window (a client
  // that keeps up), so the message costs no allocation. Null otherwise: build the message and
  // stream_push() it. After writing, call stream_written().
  byte_buffer* stream_direct();
  void stream_written();
  // Frames `bytes` as one SSE chunk (or raw, without chunking) and queues a copy.
  bool stream_push_sse(std::string_view frame);
  // Queues a copy of `bytes` as they are (a WebSocket frame built for this connection only).
  bool stream_push_copy(std::string_view bytes);
  // Sends `bytes` ahead of queued stream data (WebSocket control frames, flow frames).
  void send_control(std::string_view bytes);
  bool stream_above_high() const { return ring_ && ring_->above_high(); }

  void attach(stream_producer& p);
  static void detach(stream_producer& p) { p.list_node<producer_list_tag>::unlink(); }

  // ---- access log ----
  // Why the current request or stream is ending, if nothing said so before (the first reason
  // wins: a slow consumer dropped during a drain is a slow consumer).
  void note_close_reason(close_reason r);
  // The current request's first token was produced now (generations).
  void note_first_token();
  // The current request's x-request-id and route (after an upgrade: the WebSocket's).
  std::string_view request_id() const {
    return std::string_view(current_.request_id, current_.request_id_len);
  }
  route_id route() const { return current_.route; }
  // The client's "address:port", for lines written by others (WebSocket generations); empty
  // when the access log is off.
  std::string_view client_address();

  // ---- WebSocket ----
  // Answers the current request with 101 and speaks WebSocket from now on; `handler` gets the
  // messages. With `deflate`, permessage-deflate was negotiated: the answer goes in the 101.
  // REQUIRES: the handshake was validated (ws::check_handshake).
  void upgrade_to_websocket(std::string_view accept_key, std::string_view subprotocol,
                            std::unique_ptr<ws_handler> handler,
                            const ws::deflate_agreement* deflate = nullptr);
  ws_endpoint* websocket() { return ws_.get(); }
  // Starts closing the WebSocket with `code` (1001 drain, 1008 policy or slow consumer, ...).
  void close_websocket(uint16_t code, std::string_view reason,
                       ws_close_order order = ws_close_order::now);

  // The shard's inbound budget (connection_budget.cc): reports what this connection holds for
  // partial input after it changed (a read, a buffer released); refuses and releases new partial
  // data when the shard is over budget.
  void account_inbound();

 private:
  enum class phase : uint8_t {
    idle,      // between requests
    reading,   // part of a request has arrived
    handling,  // a handler runs (synchronously) or will answer later (asynchronously)
    closing,
  };

  // stream_socket
  void on_data(const char* data, size_t len) override;
  void on_eof(int err) override;
  void on_drained() override;
  void on_closed() override;
  void fill_send_queue() override;

  // Streams (connection_stream.cc).
  void close_stream_producers();
  void slow_consumer();
  void on_stream_timer();
  void release_ring_if_drained();
  // Moves one entry into the socket's send queue: copied into its own buffer when small (see
  // connection_stream.cc), else queued as shared slices.
  void append_entry(outbound_entry&& e);

  // Draining (connection_drain.cc).
  enum class cut_scope : uint8_t { endless, all };
  // Cuts the producers in `scope` with the error `code` (see stream_producer::on_cut).
  void cut_streams(cut_scope scope, std::string_view code, std::string_view message);
  bool has_finite_streams();
  // Endless streams can't start while draining (a WebSocket, a topic subscription): answers 503
  // and returns true for those routes.
  bool refused_while_draining(route_id route);

  // Parses and answers complete requests in [data, data + len); returns the bytes consumed.
  size_t process(const char* data, size_t len, size_t capacity);
  // One request at `data`; returns bytes consumed, or 0 when it is incomplete.
  size_t process_one(const char* data, size_t len, size_t capacity);
  // `wire_bytes`: the request's size as received (head and body), for the access log; `matched`:
  // the route, when admission matched it already.
  void dispatch(const http1::request& req, std::string_view body, size_t body_capacity,
                size_t wire_bytes, const route_match* matched = nullptr);
  // Decides admission for the request whose head was just parsed (once per request); false
  // while the answer is awaited from another shard. Sets `m` (and `matched`) when it matched the
  // route, for dispatch.
  bool prepare_admission(const http1::request& req, route_match& m, bool& matched);
  void choose_budget(const api_key* key, limit_subject& s, limit_rule& r);
  void on_rate_answer(const rate_decision& d);
  // Authentication and rate limits for API routes, as prepared; false when it answered
  // (401/403/429).
  bool admit(const http1::request& req);
  void answer_preflight(const http1::request& req, std::string_view allow);
  // Headers every response of the current request carries (CORS, x-ratelimit-*).
  void write_common_headers(http1::response_writer& w);
  void reject(http1::error e, size_t wire_bytes);
  void keep_input(const char* data, size_t len);
  void resume_input();
  void finish_request(int status);
  // Counts the current request as answered with `status` (metrics, latency). Returns the clock
  // reading it used.
  uint64_t count_request(int status);

  // Access log (connection_access.cc). access_begin: a request starts (`req` null: it could not
  // be parsed); access_end: its line is written; access_closed: the connection is gone.
  void access_begin(const http1::request* req, size_t wire_bytes);
  void access_end(int status, uint64_t now_ns);
  void access_closed();
  // Ends the current request: keep-alive or close, and resume pipelined input.
  void complete_request();
  // After an upgrade, bytes that followed the request belong to the WebSocket.
  void hand_over_to_websocket();
  void update_timer();
  void on_timer();
  bool over_output_limit() const;
  // The response head (and `body` if its size is `length`; otherwise `length` bytes follow).
  void write_response_head(int status, std::string_view content_type, header_list headers,
                           std::string_view body, size_t length);
  // The error response to a request that can't be trusted or kept (sets up current_).
  void begin_error_response();
  void refuse_inbound();
  // Deferred answers (connection_deferred.cc).
  struct deferred_answer;
  // Whether a request whose head is `req` may be dispatched while answers are deferred.
  bool may_follow_deferred(const http1::request& req) const;
  // Swaps the deferred request `ticket` in as the current one (false: it is gone); respond()
  // then renders into its slot; leave_deferred swaps back and writes what is ready.
  bool enter_deferred(uint64_t ticket);
  void leave_deferred();
  // An answer written while earlier ones are deferred: rendered into a slot of its own.
  void hold_answer();
  // Writes the answers at the front of the queue that are ready, in order; once none is left,
  // goes on with the pipelined input (or closes).
  void write_ready_answers();
  byte_buffer& answer_out() { return render_to_ ? *render_to_ : out(); }

  shard_server& shard_;
  uint64_t id_;
  phase phase_ = phase::idle;
  bool async_ = false;          // the current handler answers later
  bool in_process_ = false;     // process() is on the stack
  bool input_paused_ = false;   // receiving paused for backpressure
  bool continue_sent_ = false;  // 100 Continue sent for the current request
  bool eof_ = false;            // the peer finished sending
  mode mode_ = mode::http;
  bool sse_chunked_ = false;
  bool close_after_answers_ = false;  // a held answer closes the connection once written
  uint32_t requests_served_ = 0;  // here, in padding (see the note at the end)

  // A chunked request body being decoded; allocated for such a request only.
  struct chunked_request {
    explicit chunked_request(const http1::limits& lim) : decoder(lim) {}
    http1::chunked_decoder decoder;
    byte_buffer body;
    size_t fed = 0;  // raw body bytes after the head fed to the decoder
  };
  // What reading HTTP requests takes: made with the connection, released once it has become a
  // WebSocket (hand_over_to_websocket), which parses frames, not requests.
  struct http_input {
    // Input that must outlive a receive buffer: a request spanning reads, or pipelined requests
    // waiting behind an asynchronous response. Empty (and unallocated) most of the time.
    input_buffer in;
    size_t scanned_hint = 0;  // bytes of `in` already scanned without finding a complete head
    size_t need_bytes = 0;    // a Content-Length request needs `in` to reach this size
    std::unique_ptr<chunked_request> chunked;
    uint64_t request_started_ms = 0;  // first byte of the current request (header timeout)
    // The client's address prefix (IPv4 /32 as IPv4-mapped IPv6, IPv6 /64), looked up once.
    std::array<uint8_t, 16> client_prefix{};
    bool client_prefix_known = false;
  };
  std::unique_ptr<http_input> http_;  // null on a WebSocket
  bool input_empty() const { return !http_ || http_->in.empty(); }
  size_t input_size() const { return http_ ? http_->in.size() : 0; }
  size_t partial_input_bytes() const {
    if (!http_) return 0;
    return http_->in.capacity() + (http_->chunked ? http_->chunked->body.capacity() : 0);
  }
  size_t inbound_held_ = 0;  // partial input bytes counted in the shard's inbound budget

  // The request being answered.
  struct current_request {
    route_id route = route_id::unmatched;
    http1::version version = http1::version::http_1_1;
    bool keep_alive = true;
    bool head = false;
    uint8_t request_id_len = 0;
    bool rate_headers = false;  // x-ratelimit-* values below are set
    uint64_t start_ns = 0;
    char request_id[64];
    const api_key* key = nullptr;   // admission: the key presented (kept after an upgrade)
    std::string_view allow_origin;  // CORS: the Access-Control-Allow-Origin value, or empty
    uint64_t rate_limit = 0, rate_remaining = 0, rate_reset_ms = 0;
    limit_subject subject;  // whose budget (kept after an upgrade)
    limit_rule rule;        // its limits; rps 0: requests not limited
  } current_;
  std::unique_ptr<token_grant> token_;  // admission: a subscription token (kept after an upgrade)

  // Admission decided for the request being read (or, on a WebSocket, the next message).
  struct admission_ticket {
    enum class state : uint8_t { none, waiting, decided };
    state st = state::none;
    bool api = false;                          // an API route: admission applies
    bool rated = false;                        // a rate limit applies; `rate` holds the decision
    std::unique_ptr<openai::api_error> refusal;  // authentication failed: 401 or 403 (rare: boxed)
    rules_ref rules;  // the snapshot `key` belongs to
    const api_key* key = nullptr;
    std::unique_ptr<token_grant> token;
    limit_subject subject;
    limit_rule rule;
    rate_decision rate;
    uint64_t until_us = 0;  // WebSocket: the decision is used by then or dropped
  };
  // Allocated on first use: an HTTP connection keeps it between requests (no allocation per
  // request); a WebSocket has one only while a message's admission is being decided, so an idle
  // one holds none.
  std::unique_ptr<admission_ticket> ticket_;
  admission_ticket& ticket();
  void reset_ticket();
  bool waiting_admission() const {
    return ticket_ && ticket_->st == admission_ticket::state::waiting;
  }
  // The client's address prefix (http_input::client_prefix), looked up once.
  const std::array<uint8_t, 16>& client_prefix();
  rules_ref rules_;  // see request_rules()

  // Streams.
  std::shared_ptr<outbound_ring> ring_;
  intrusive_list<stream_producer, producer_list_tag> producers_;
  uint64_t above_high_since_ms_ = 0;  // 0: not above the high watermark
  uint64_t last_send_ms_ = 0;         // last stream output (heartbeats follow silence)
  std::unique_ptr<ws_endpoint> ws_;

  struct access_state {
    bool open = false;  // a request or stream is being described; its line is not written yet
    close_reason reason = close_reason::none;
    uint8_t client_len = 0;
    uint8_t method_len = 0;
    uint16_t path_len = 0;
    uint64_t bytes_in = 0;       // the request as received; a WebSocket: since the upgrade
    uint64_t in_mark = 0;        // a WebSocket: bytes_received() before its upgrade request
    uint64_t out_mark = 0;       // bytes_sent() + queued_bytes() when the request began
    uint64_t first_byte_ns = 0;  // a stream's response head (0: none)
    uint64_t first_token_ns = 0;
    char client[48];
    char method[16];
    char path[access_path_bytes_max];
  };
  std::unique_ptr<access_state> access_;  // only with --access-log

  // Deferred answers, in request order (see defer()). Empty (and unallocated: a std::deque
  // allocates ~600 bytes even when empty) unless a publisher pipelines to a topic homed on
  // another shard.
  struct deferred_answer {
    uint64_t ticket = 0;  // 0: an answer that was written at once, held behind earlier ones
    bool ready = false;
    byte_buffer bytes;  // the response, once rendered
    current_request request;
    std::unique_ptr<access_state> access;
    rules_ref rules;
    std::unique_ptr<token_grant> token;
  };
  lazy_deque<deferred_answer> deferred_;
  uint64_t next_ticket_ = 1;
  byte_buffer* render_to_ = nullptr;          // where respond() writes (null: the socket)
  deferred_answer* answering_ = nullptr;      // the deferred request being answered
  phase answering_phase_ = phase::idle;       // phase_ while it is being answered

  // The connection's one deadline (header, idle, write, heartbeat: whichever applies now), and
  // the timer that wakes it. The timer may be due earlier than the deadline, never later.
  static constexpr uint64_t no_deadline = UINT64_MAX;
  uint64_t deadline_ms_ = no_deadline;
  timer timer_;
  // Note: every open connection holds one of these, and the allocator rounds it up to its size
  // class (640 bytes, then 768): keep it at most 640 bytes (a static_assert in the .cc), packing
  // small members into padding rather than after 8-byte ones, and boxing state only some
  // connections need for a while (http_input, the admission ticket) behind a pointer.
};

}  // namespace rc::server
