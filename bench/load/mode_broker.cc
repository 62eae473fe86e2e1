// broker: the broker queue's enqueue-and-stream scenario. An open loop offers --rate requests
// per second of POST /api/v1/message, paced every --pace-us (default 100 µs, the reactor's
// timer resolution; the driver's 1 ms tick is a fallback): each pace step sends what the
// schedule owes, so its requests leave together, a burst of rate x pace. They are spread over
// --users user ids and dealt round-robin over N keep-alive connections, pipelined (a connection
// carries any number in flight, answered in order). Each answer is admitted (202) or rejected (429
// or 503, counted by status; anything else is an error); enqueue latency is from the time the
// request was due by the schedule (not when it was written: no coordinated omission) to reading
// its response, kept separately for admitted and rejected.
//
// A fraction of admitted messages (--stream-fraction) is then followed on one of
// --stream-connections keep-alive connections: GET /api/v1/stream?user_id&message_id, timing the
// `processing` and `done` events from the moment the 202 was read. The stream starts after the
// 202, so a message that began processing before the GET arrived replays `processing` from its
// log at once: the figure is what a client observes, bounded below by one request round trip.
// A message wanted for streaming while every stream connection is busy is skipped (counted);
// a stream refused by admission (429, 503: a rate limit counts these GETs too) is counted apart.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/timer_wheel.h"
#include "load/chat_parse.h"
#include "load/connection.h"
#include "load/env.h"
#include "load/mode.h"
#include "proto/sse.h"

namespace rc::load {
namespace {

class broker_worker;

// Requests one connection may have awaiting answers. An open loop keeps sending whatever the
// server does; past this the request is not sent but counted (unsent), so a stalled server
// costs bounded memory and shows in the report.
constexpr size_t enqueue_pending_max = 65536;
// The longest 202 body kept for its message_id (the server's is ~80 bytes).
constexpr size_t admitted_body_bytes_max = 4096;

struct pending_enqueue {
  uint64_t sent_ns;
  uint32_t user;
};

class enqueue_conn final : public load_connection {
 public:
  enqueue_conn(shard_env& env, int fd, broker_worker& w) : load_connection(env, fd), worker_(w) {}
  void start() {
    start_receiving();
    mark_ready();
  }
  void send(uint32_t user, uint64_t now_ns);
  bool busy() const { return !pending_.empty(); }
  bool full() const { return pending_.size() >= enqueue_pending_max; }

 private:
  void on_data(const char* data, size_t len) override;
  void on_response_end();

  broker_worker& worker_;
  response_reader http_;
  std::deque<pending_enqueue> pending_;
  std::string body_;  // the current 202's body
};

class stream_conn final : public load_connection {
 public:
  stream_conn(shard_env& env, int fd, broker_worker& w) : load_connection(env, fd), worker_(w) {}
  void start() {
    start_receiving();
    mark_ready();
  }
  void follow(uint32_t user, std::string_view message_id, uint64_t admitted_ns);
  bool busy() const { return busy_; }

 private:
  void on_data(const char* data, size_t len) override;
  void on_event(const sse::decoded_event& e);
  void on_response_end();

  broker_worker& worker_;
  response_reader http_;
  sse::decoder sse_;
  uint64_t admitted_ns_ = 0;
  bool busy_ = false;
  bool ok_status_ = false;
  bool ended_ = false;  // done or error seen
};

class broker_worker final : public mode_worker {
 public:
  explicit broker_worker(shard_env& env);

  void start() override;
  void on_running(uint64_t now_ns) override {
    running_ = true;
    start_ns_ = now_ns;
    env_.loop.arm_after_us(pace_, env_.opts.pace_us);
  }
  void tick(uint64_t now_ns) override { send_due(now_ns); }
  bool drained(uint64_t) override {
    for (auto& c : enqueues_)
      if (!c->closed() && c->busy()) return false;
    for (auto& c : streams_)
      if (!c->closed() && c->busy()) return false;
    return true;
  }
  void finish() override {
    env_.finishing = true;
    if (pace_.armed()) env_.loop.timers().cancel(pace_);
    env_.connects.cancel_all();
    for (auto& c : enqueues_) c->close();
    for (auto& c : streams_) c->close();
  }

  // A 202 for `user` arrived with this body: maybe follow the message.
  void admitted(uint32_t user, std::string_view body, uint64_t now_ns);
  void stream_idle(stream_conn* c) { idle_streams_.push_back(c); }
  const std::string& request_head() const { return head_; }
  const std::string& host() const { return env_.opts.host_header; }
  uint32_t max_tokens() const { return env_.opts.max_tokens; }

 private:
  void on_pace() {
    uint64_t now = monotonic_ns();
    send_due(now);
    if (now < env_.control.window_end_ns()) env_.loop.arm_after_us(pace_, env_.opts.pace_us);
  }
  // Sends what the schedule owes at `now_ns`.
  void send_due(uint64_t now_ns);
  // When request `k` (from 0) of this thread was due: send_due() sends it once
  // floor(elapsed x rate) > k. Latency counts from then, not from when it was written, so a
  // pace step that came late (a busy or stalled client thread) shows in the figures instead of
  // being omitted (coordinated omission).
  uint64_t scheduled_ns(uint64_t k, uint64_t now_ns) const {
    auto due = start_ns_ + static_cast<uint64_t>(static_cast<double>(k + 1) * 1e9 / rate_);
    return std::min(due, now_ns);
  }

  shard_env& env_;
  std::string head_;  // the POST's head up to Content-Length's value
  double rate_;       // this thread's share, per second
  double fraction_;
  double fraction_acc_ = 0;
  bool running_ = false;
  uint64_t start_ns_ = 0;
  uint64_t sent_ = 0;
  uint64_t next_user_ = 0;
  size_t next_conn_ = 0;
  std::vector<std::unique_ptr<enqueue_conn>> enqueues_;
  std::vector<std::unique_ptr<stream_conn>> streams_;
  // First in, first out: every stream connection gets used early. One that never sends a request
  // is closed by the server after its header timeout (10 s by default), like any silent client.
  std::deque<stream_conn*> idle_streams_;
  timer pace_;
};

// ---- enqueue ----

void enqueue_conn::send(uint32_t user, uint64_t now_ns) {
  char body[128];
  int n = std::snprintf(body, sizeof body,
                        "{\"user_id\":\"u%u\",\"message\":\"Say something.\",\"max_tokens\":%u}",
                        user, worker_.max_tokens());
  char len[16];
  auto [end, ec] = std::to_chars(len, len + sizeof len, n);
  (void)ec;
  out().append(worker_.request_head());
  out().append(std::string_view(len, static_cast<size_t>(end - len)));
  out().append("\r\n\r\n");
  out().append(std::string_view(body, static_cast<size_t>(n)));
  flush();
  pending_.push_back({now_ns, user});
}

void enqueue_conn::on_data(const char* data, size_t len) {
  std::string_view in(data, len), body;
  for (;;) {
    switch (http_.next(in, body)) {
      case response_reader::step::need_more:
        return;
      case response_reader::step::head:
        body_.clear();
        break;
      case response_reader::step::body:
        if (http_.status() == 202 && body_.size() < admitted_body_bytes_max) body_.append(body);
        break;
      case response_reader::step::done:
        on_response_end();
        if (closed()) return;
        break;
      case response_reader::step::error:
        return fail(conn_failure::protocol);
    }
  }
}

void enqueue_conn::on_response_end() {
  if (pending_.empty()) return fail(conn_failure::protocol);  // an answer nobody asked for
  pending_enqueue p = pending_.front();
  pending_.pop_front();
  uint64_t now = monotonic_ns();
  uint64_t latency = now - p.sent_ns;
  stream_measures& m = env_.results.streams;
  bool in_window = env_.control.in_window(now);
  int status = http_.status();
  if (status == 202) {
    if (in_window) {
      ++m.admitted;
      env_.sample(hist_id::enqueue_admitted, now, latency);
    }
    worker_.admitted(p.user, body_, now);
  } else if (status == 429 || status == 503) {
    if (in_window) {
      (status == 429 ? m.rejected_429 : m.rejected_503)++;
      env_.sample(hist_id::enqueue_rejected, now, latency);
    }
  } else {
    ++env_.results.errors.status;
  }
  env_.record(now, latency);
}

// ---- stream ----

void stream_conn::follow(uint32_t user, std::string_view message_id, uint64_t admitted_ns) {
  out().append("GET /api/v1/stream?user_id=u");
  char digits[12];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, user);
  (void)ec;
  out().append(std::string_view(digits, static_cast<size_t>(end - digits)));
  out().append("&message_id=");
  out().append(message_id);
  out().append(" HTTP/1.1\r\nHost: ");
  out().append(worker_.host());
  out().append("\r\nAccept: text/event-stream\r\n\r\n");
  flush();
  admitted_ns_ = admitted_ns;
  busy_ = true;
  ended_ = false;
  ok_status_ = false;
  sse_.restart();
  ++env_.results.streams.streams_opened;
}

void stream_conn::on_data(const char* data, size_t len) {
  std::string_view in(data, len), body;
  for (;;) {
    switch (http_.next(in, body)) {
      case response_reader::step::need_more:
        return;
      case response_reader::step::head:
        ok_status_ = http_.status() == 200;
        if (http_.status() == 429 || http_.status() == 503) {
          ++env_.results.streams.streams_refused;  // admission applies to streams too
        } else if (!ok_status_) {
          ++env_.results.errors.status;
        }
        break;
      case response_reader::step::body:
        if (ok_status_ && sse_.feed(body, [this](const sse::decoded_event& e) { on_event(e); }) !=
                              sse::decode_error::none)
          return fail(conn_failure::protocol);
        if (closed()) return;
        break;
      case response_reader::step::done:
        on_response_end();
        if (closed()) return;
        break;
      case response_reader::step::error:
        return fail(conn_failure::protocol);
    }
  }
}

void stream_conn::on_event(const sse::decoded_event& e) {
  uint64_t now = monotonic_ns();
  switch (classify_broker_event(e.type)) {
    case broker_event::processing:
      env_.sample(hist_id::to_processing, now, now - admitted_ns_);
      break;
    case broker_event::done:
      env_.sample(hist_id::to_done, now, now - admitted_ns_);
      ended_ = true;
      break;
    case broker_event::error:
      ++env_.results.errors.server_error;
      ended_ = true;
      break;
    case broker_event::queued:
    case broker_event::progress:
      break;
    case broker_event::other:
      ++env_.results.errors.protocol;
      break;
  }
}

void stream_conn::on_response_end() {
  if (!busy_) return fail(conn_failure::protocol);
  if (ok_status_ && !ended_) ++env_.results.errors.protocol;  // ended without done or error
  busy_ = false;
  worker_.stream_idle(this);
}

// ---- worker ----

broker_worker::broker_worker(shard_env& env) : env_(env) {
  head_ = "POST /api/v1/message HTTP/1.1\r\nHost: " + env.opts.host_header +
          "\r\nContent-Type: application/json\r\n";
  for (const auto& h : env.opts.headers) head_ += h + "\r\n";
  head_ += "Content-Length: ";
  rate_ = env.opts.rate / env.count;
  fraction_ = env.opts.stream_fraction;
  pace_.bind<broker_worker, &broker_worker::on_pace>(this);
}

void broker_worker::start() {
  uint32_t n = env_.share_of(env_.opts.connections);
  enqueues_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    env_.connect(env_.global_number(i), [this](int fd, int) {
      if (fd < 0) return;
      enqueues_.push_back(std::make_unique<enqueue_conn>(env_, fd, *this));
      enqueues_.back()->start();
    });
  }
  uint32_t s = env_.share_of(env_.opts.stream_connections);
  streams_.reserve(s);
  for (uint32_t i = 0; i < s; ++i) {
    env_.connect(env_.opts.connections + env_.global_number(i), [this](int fd, int) {
      if (fd < 0) return;
      streams_.push_back(std::make_unique<stream_conn>(env_, fd, *this));
      streams_.back()->start();
      idle_streams_.push_back(streams_.back().get());
    });
  }
}

void broker_worker::send_due(uint64_t now_ns) {
  if (!running_ || now_ns >= env_.control.window_end_ns() || enqueues_.empty()) return;
  auto due = static_cast<uint64_t>(static_cast<double>(now_ns - start_ns_) * rate_ / 1e9);
  if (due <= sent_) return;
  uint64_t burst = due - sent_;
  stream_measures& m = env_.results.streams;
  if (burst > m.burst_max) m.burst_max = burst;
  for (; sent_ < due; ++sent_) {
    // Skip closed connections (their failure was counted already) and full ones.
    enqueue_conn* c = nullptr;
    for (size_t tries = 0; tries < enqueues_.size() && !c; ++tries) {
      enqueue_conn* k = enqueues_[next_conn_].get();
      next_conn_ = (next_conn_ + 1) % enqueues_.size();
      if (!k->closed() && !k->full()) c = k;
    }
    if (!c) {
      ++m.unsent;
      continue;
    }
    auto user = static_cast<uint32_t>((next_user_++ * env_.count + env_.index) % env_.opts.users);
    c->send(user, scheduled_ns(sent_, now_ns));
  }
}

void broker_worker::admitted(uint32_t user, std::string_view body, uint64_t now_ns) {
  fraction_acc_ += fraction_;
  if (fraction_acc_ < 1.0) return;
  fraction_acc_ -= 1.0;
  auto id = find_string_field(body, "message_id");
  if (!id || id->empty()) {
    ++env_.results.errors.protocol;
    return;
  }
  if (idle_streams_.empty() || !running_) {
    ++env_.results.streams.streams_skipped;
    return;
  }
  stream_conn* c = idle_streams_.front();
  idle_streams_.pop_front();
  if (c->closed()) return;
  c->follow(user, *id, now_ns);
}

std::string check(load_options& o) {
  if (o.rate <= 0) return "broker needs --rate > 0 (requests per second, open loop)";
  if (o.users == 0) return "--users must be at least 1";
  if (o.pace_us < 100 || o.pace_us > 1000) return "--pace-us must be 100..1000";
  if (o.max_tokens == 0) return "--max-tokens must be at least 1";
  if (o.stream_fraction > 1) return "--stream-fraction must be at most 1";
  // Automatic: follow every admitted message up to 1,000 per second, then about 1,000/s.
  if (o.stream_fraction < 0) o.stream_fraction = o.rate <= 1000 ? 1.0 : 1000.0 / o.rate;
  // Nothing to follow: no stream connections (they would sit silent until the server closes them).
  if (o.stream_fraction == 0) o.stream_connections = 0;
  if (o.stream_fraction > 0 && o.stream_connections == 0)
    return "--stream-fraction needs --stream-connections > 0";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return uint64_t{o.connections} + o.stream_connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<broker_worker>(env);
}

}  // namespace

constinit const mode_spec broker_mode = {
    .name = "broker",
    .summary = "broker queue: open-loop POST /api/v1/message at --rate, streams a fraction",
    .unit = "enqueues",
    .unit_one = "enqueue",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
