// fanout publisher: pacing and acknowledgements, over HTTP POST (in every --dialect, see
// fanout_dialect.h) or WebSocket `publish`.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/clock.h"
#include "load/fanout.h"
#include "load/fanout_dialect.h"
#include "proto/json_writer.h"

namespace rc::load {
namespace {

class pacer;

// The transport half: sends one publication, reports answers to the pacer. Keep-alive, except
// for pushpin, whose control port answers one request per connection: there every publication
// has a link of its own (see pacer::retire).
class http_link final : public load_connection {
 public:
  // `answered_before`: publications answered before this link's first (self-numbered dialects
  // number the answers from there).
  http_link(shard_env& env, int fd, pacer& p, uint64_t answered_before = 0)
      : load_connection(env, fd), pacer_(p), answered_(answered_before) {}
  // The first link reports the publisher ready; pushpin's later ones don't count again.
  void start(bool report_ready) {
    start_receiving();
    started_ = true;
    if (report_ready) mark_ready();
  }
  bool started() const { return started_; }
  void publish(std::string_view json);
  bool used() const { return used_; }
  bool gone() const { return gone_; }  // closed, and nothing refers to it any more

 private:
  void on_data(const char* data, size_t len) override;
  void on_closed() override { gone_ = true; }
  pacer& pacer_;
  response_reader http_;
  byte_buffer body_;  // the answer's body, gathered across reads
  int status_ = 0;
  uint64_t answered_;  // answers so far: the n-th is for sequence n when self-numbered
  bool started_ = false;
  bool used_ = false;
  bool gone_ = false;
};

class ws_link final : public ws_connection {
 public:
  ws_link(shard_env& env, int fd, pacer& p)
      : ws_connection(env, fd, 0x51ed270b27a3c7f9), pacer_(p) {}
  void publish(std::string_view json);

 private:
  void on_open() override { mark_ready(); }
  void on_message(ws_event kind, std::string_view m) override;
  pacer& pacer_;
  byte_buffer msg_;
};

class pacer final : public publisher {
 public:
  explicit pacer(shard_env& env) : env_(env) {
    // {"ts":<20 digits at most>,"pad":"..."}: pad so the JSON is at least payload_bytes long.
    size_t base = std::string_view("{\"ts\":,\"pad\":\"\"}").size() + 14;  // ~14 digits of ns
    if (self_numbered(env.opts.dialect))
      base += std::string_view("\"seq\":,").size() + 5;  // {"seq":N,... ~5 digits
    pad_ = make_pad(env.opts.payload_bytes > base ? env.opts.payload_bytes - base : 0,
                    env.opts.token_fill);
  }

  void start() override {
    env_.connect_to(env_.opts.pub_target_address, env_.opts.connections, [this](int fd, int) {
      if (fd < 0) {
        gone_ = true;
        return;
      }
      if (env_.opts.pub == pub_protocol::http) {
        http_ = std::make_unique<http_link>(env_, fd, *this);
        http_->start(true);
      } else {
        ws_ = std::make_unique<ws_link>(env_, fd, *this);
        ws_->start("/ws");
      }
    });
  }

  void on_running(uint64_t now_ns) override {
    // --publish-after-ms: subscriptions that complete after the handshake (pushpin's
    // WebSocket) get that long before the first publication.
    start_ns_ = now_ns + uint64_t{env_.opts.publish_after_ms} * 1'000'000;
    running_ = true;
    pump(now_ns);
  }

  void pump(uint64_t now_ns) override;

  bool settled() override {
    if (link_closed()) gone_ = true;
    if (in_flight_ > 0 && !gone_) return false;
    if (!env_.control.final_seq_known())
      env_.control.set_final_seq(last_seq_, env_.results.publish_acked);
    return true;
  }

  void finish() override {
    if (!settled()) {
      env_.results.errors.publish_unanswered += in_flight_;
      env_.control.set_final_seq(last_seq_, env_.results.publish_acked);
    }
    if (http_) http_->close();
    if (ws_) ws_->close();
  }

  // Answers from the link.
  void on_ack(uint64_t seq) {
    if (in_flight_ > 0) --in_flight_;
    ++env_.results.publish_acked;
    // One publisher, one connection: the server numbers our publications in order (by a
    // shared stream's sequence with --sparse-seq: increasing, not consecutive). Self-numbered
    // dialects: the answer is for the publication we numbered, nothing to check.
    bool in_order = env_.opts.sparse_seq ? seq > last_seq_ : seq == last_seq_ + 1;
    if (!self_numbered(env_.opts.dialect) && !in_order) ++env_.results.errors.publish;
    last_seq_ = std::max(last_seq_, seq);
  }
  void on_refused() {
    if (in_flight_ > 0) --in_flight_;
    ++env_.results.errors.publish;
  }
  // pushpin: `link` was answered; the next publication goes on a new connection.
  void retire(http_link& link);

 private:
  bool link_closed() const { return (http_ && http_->closed()) || (ws_ && ws_->closed()); }
  bool link_ready() const {
    return (http_ && http_->started() && !http_->closed() && !(per_request_ && http_->used())) ||
           (ws_ && ws_->ready() && !ws_->closed());
  }
  bool may_publish(uint64_t now_ns) const;
  void publish_one(uint64_t now_ns);

  shard_env& env_;
  std::unique_ptr<http_link> http_;
  std::unique_ptr<ws_link> ws_;
  // pushpin: one connection per publication, one at a time (in order); answered links wait
  // here until their socket is closed.
  const bool per_request_ = env_.opts.dialect == fanout_dialect::pushpin;
  std::vector<std::unique_ptr<http_link>> retired_;
  std::string pad_;
  byte_buffer json_;
  bool running_ = false;
  bool gone_ = false;
  uint64_t start_ns_ = 0;
  uint64_t published_ = 0;
  uint32_t in_flight_ = 0;
  uint64_t last_seq_ = 0;
};

bool pacer::may_publish(uint64_t now_ns) const {
  if (in_flight_ >= (per_request_ ? 1 : env_.opts.pub_inflight)) return false;
  if (env_.opts.rate > 0) {
    // The k-th publication (from 0) is due at start + k / rate.
    double due = static_cast<double>(now_ns - start_ns_) * env_.opts.rate / 1e9;
    return static_cast<double>(published_) < due;
  }
  // Closed loop: at most `window` publications not yet delivered to every subscriber.
  uint64_t subs = env_.control.ready() > 1 ? env_.control.ready() - 1 : 1;
  uint64_t delivered_everywhere = env_.control.delivered_total() / subs;
  return published_ < delivered_everywhere + env_.opts.window;
}

void pacer::pump(uint64_t now_ns) {
  if (!retired_.empty())
    std::erase_if(retired_, [](const std::unique_ptr<http_link>& l) { return l->gone(); });
  if (!running_ || now_ns < start_ns_ || !link_ready()) return;
  if (now_ns >= env_.control.window_end_ns()) return;  // the window closed: stop publishing
  while (may_publish(now_ns) && link_ready()) publish_one(now_ns);
}

void pacer::retire(http_link& link) {
  if (!per_request_ || http_.get() != &link) return;
  link.close();  // ours to close: the server closes it too (Connection: close)
  retired_.push_back(std::move(http_));
  uint64_t answered = published_;
  env_.connect_to(env_.opts.pub_target_address, env_.opts.connections,
                  [this, answered](int fd, int) {
                    if (env_.finishing) {
                      if (fd >= 0) ::close(fd);
                      return;
                    }
                    if (fd < 0) {
                      gone_ = true;
                      ++env_.results.errors.publish;
                      return;
                    }
                    http_ = std::make_unique<http_link>(env_, fd, *this, answered);
                    http_->start(false);
                  });
}

void pacer::publish_one(uint64_t now_ns) {
  // The publication's timestamp, from which subscribers measure publish-to-deliver: with a
  // rate, the time it was due (an open loop: a publisher that fell behind, e.g. held back by
  // --pub-inflight or a stalled client thread, must not hide that delay, which is coordinated
  // omission); in the closed loop, now.
  uint64_t ts = monotonic_ns();
  if (env_.opts.rate > 0) {
    auto scheduled =
        start_ns_ + static_cast<uint64_t>(static_cast<double>(published_) * 1e9 / env_.opts.rate);
    if (now_ns > scheduled)
      env_.results.publish_lag_max_ns =
          std::max(env_.results.publish_lag_max_ns, now_ns - scheduled);
    ts = std::min(ts, scheduled);
  }
  json_.clear();
  write_publication(json_, env_.opts.dialect, published_ + 1, ts, pad_);
  if (http_) {
    http_->publish(json_.view());
  } else {
    ws_->publish(json_.view());
  }
  ++published_;
  ++in_flight_;
  ++env_.results.published;
}

// ---- HTTP ----

void http_link::publish(std::string_view json) {
  used_ = true;
  write_publish_request(out(), env_.opts.dialect, env_.opts.topic, env_.opts.host_header, json);
  flush();
}

void http_link::on_data(const char* data, size_t len) {
  std::string_view in(data, len), body;
  for (;;) {
    switch (http_.next(in, body)) {
      case response_reader::step::need_more:
        return;
      case response_reader::step::head:
        status_ = http_.status();
        body_.clear();
        break;
      case response_reader::step::body:
        if (body_.size() < 4096) body_.append(body);
        break;
      case response_reader::step::done: {
        auto seq = publish_answer(env_.opts.dialect, status_, body_.view(), ++answered_);
        if (seq) {
          pacer_.on_ack(*seq);
        } else {
          pacer_.on_refused();
        }
        pacer_.retire(*this);
        if (closed()) return;
        break;
      }
      case response_reader::step::error:
        return fail(conn_failure::protocol);
    }
  }
}

// ---- WebSocket ----

void ws_link::publish(std::string_view json) {
  msg_.clear();
  msg_.append("{\"id\":\"p\",\"action\":\"publish\",\"payload\":{\"topic\":");
  json::write_string(msg_, env_.opts.topic);
  msg_.append(",\"data\":");
  msg_.append(json);
  msg_.append("}}");
  send(ws::opcode::text, msg_.view());
}

void ws_link::on_message(ws_event, std::string_view m) {
  size_t at = m.find("\"event\":\"");
  std::string_view event = at == std::string_view::npos ? std::string_view() : m.substr(at + 9);
  uint64_t seq = 0;
  if (event.starts_with("published\"") && find_number(m, "\"seq\":", seq)) {
    pacer_.on_ack(seq);
  } else if (event.starts_with("error\"")) {
    pacer_.on_refused();
  } else if (!event.starts_with("flow.")) {
    fail(conn_failure::protocol);
  }
}

}  // namespace

std::unique_ptr<publisher> make_publisher(shard_env& env) {
  return std::make_unique<pacer>(env);
}

}  // namespace rc::load
