// fanout subscribers: WebSocket and SSE, in every --dialect (fanout_dialect.h).
#include <string>

#include "core/clock.h"
#include "load/fanout.h"
#include "load/fanout_dialect.h"
#include "proto/json_writer.h"
#include "proto/sse.h"

namespace rc::load {

bool find_number(std::string_view text, std::string_view key, uint64_t& out, size_t from) {
  size_t at = text.find(key, from);
  if (at == std::string_view::npos) return false;
  size_t i = at + key.size();
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits)
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  if (digits == 0 || digits > 19) return false;
  out = v;
  return true;
}

fanout_context::fanout_context(shard_env& e) : env(e) {
  byte_buffer b;
  b.append("{\"id\":\"s\",\"event\":\"message\",\"data\":{\"topic\":");
  json::write_string(b, e.opts.topic);
  b.append(",\"seq\":");
  ws_message_prefix.assign(b.view());
}

seq_tracker::verdict seq_tracker::accept(uint64_t seq, bool sparse, uint64_t& missing) {
  missing = 0;
  if (seq <= last_) return verdict::duplicate;  // repeated, or older than what was delivered
  if (!sparse && seq > last_ + 1) missing = seq - last_ - 1;
  last_ = seq;
  ++received_;
  return missing > 0 ? verdict::gap : verdict::ok;
}

uint64_t seq_tracker::shortfall(uint64_t final_seq, uint64_t final_count, bool sparse) const {
  if (sparse) return final_count > received_ ? final_count - received_ : 0;
  return final_seq > last_ ? final_seq - last_ : 0;
}

void fanout_context::deliver(seq_tracker& t, uint64_t seq, uint64_t ts_ns, uint64_t now_ns) {
  error_counts& e = env.results.errors;
  uint64_t missing = 0;
  seq_tracker::verdict v = t.accept(seq, env.opts.sparse_seq, missing);
  if (v == seq_tracker::verdict::duplicate) {
    ++e.seq_duplicate;
    return;
  }
  if (v == seq_tracker::verdict::gap) {
    ++e.seq_gap;
    e.seq_missing += missing;
  }
  ++delivered;
  env.control.set_delivered(env.index, delivered);
  env.record(now_ns, now_ns > ts_ns ? now_ns - ts_ns : 0);
}

namespace {

// ---- WebSocket ----

class ws_subscriber final : public ws_connection, public subscriber {
 public:
  ws_subscriber(fanout_context& ctx, int fd, uint64_t seed)
      : ws_connection(ctx.env, fd, seed), ctx_(ctx) {}

  void start() override {
    ws_connection::start(subscribe_path(env_.opts.dialect, sub_protocol::ws, env_.opts.topic));
  }
  load_connection& connection() override { return *this; }
  const seq_tracker& seq() const override { return seq_; }

 private:
  void on_open() override {
    if (self_numbered(env_.opts.dialect)) {
      mark_ready();  // subscribed by its path: the 101 is the subscription
      return;
    }
    byte_buffer msg;
    msg.append("{\"id\":\"s\",\"action\":\"subscribe\",\"payload\":{\"topic\":");
    json::write_string(msg, env_.opts.topic);
    msg.append(",\"since\":0}}");
    send(ws::opcode::text, msg.view());
  }

  void on_message(ws_event kind, std::string_view m) override {
    uint64_t now = monotonic_ns();
    const std::string& prefix = ctx_.ws_message_prefix;
    uint64_t seq = 0, ts = 0;
    if (self_numbered(env_.opts.dialect)) {
      // Every message is a publication's body.
      if (kind != ws_event::text || !parse_publication(m, seq, ts))
        return fail(conn_failure::protocol);
      ctx_.deliver(seq_, seq, ts, now);
      return;
    }
    if (kind == ws_event::text && m.size() > prefix.size() &&
        m.compare(0, prefix.size(), prefix) == 0) {
      // The common case: a delivery. The digits follow the prefix; "ts" is in our payload.
      if (!find_number(m, "", seq, prefix.size()) || !find_number(m, "\"ts\":", ts, prefix.size()))
        return fail(conn_failure::protocol);
      ctx_.deliver(seq_, seq, ts, now);
      return;
    }
    size_t at = m.find("\"event\":\"");
    std::string_view event = at == std::string_view::npos ? std::string_view() : m.substr(at + 9);
    if (event.starts_with("subscribed\"")) {
      mark_ready();
    } else if (event.starts_with("error\"") || event.starts_with("reset\"")) {
      ++env_.results.errors.server_error;
    } else if (!event.starts_with("flow.")) {
      fail(conn_failure::protocol);
    }
  }

  fanout_context& ctx_;
  seq_tracker seq_;
};

// ---- SSE ----

class sse_subscriber final : public load_connection, public subscriber {
 public:
  sse_subscriber(fanout_context& ctx, int fd) : load_connection(ctx.env, fd), ctx_(ctx) {}

  void start() override {
    out().append("GET ");
    out().append(subscribe_path(env_.opts.dialect, sub_protocol::sse, env_.opts.topic));
    out().append(" HTTP/1.1\r\nHost: ");
    out().append(env_.opts.host_header);
    out().append("\r\nAccept: text/event-stream\r\n\r\n");
    flush();
    start_receiving();
  }
  load_connection& connection() override { return *this; }
  const seq_tracker& seq() const override { return seq_; }

 private:
  void on_data(const char* data, size_t len) override {
    std::string_view in(data, len), body;
    for (;;) {
      switch (http_.next(in, body)) {
        case response_reader::step::need_more:
          return;
        case response_reader::step::head:
          if (http_.status() != 200) return fail(conn_failure::handshake);
          mark_ready();
          break;
        case response_reader::step::body:
          if (sse_.feed(body, [this](const sse::decoded_event& e) { on_event(e); }) !=
              sse::decode_error::none)
            return fail(conn_failure::protocol);
          if (closed()) return;
          break;
        case response_reader::step::done:
          return fail(conn_failure::closed);  // the stream ended
        case response_reader::step::error:
          return fail(conn_failure::protocol);
      }
    }
  }

  void on_event(const sse::decoded_event& e) {
    if (closed()) return;
    if (e.type != "message") {
      ++env_.results.errors.server_error;  // `reset`: history was lost
      return;
    }
    uint64_t now = monotonic_ns();
    uint64_t seq = 0, ts = 0;
    if (self_numbered(env_.opts.dialect)) {
      if (!parse_publication(e.data, seq, ts)) return fail(conn_failure::protocol);
      ctx_.deliver(seq_, seq, ts, now);
      return;
    }
    // id: <epoch>-<seq>
    size_t dash = e.id.rfind('-');
    if (dash == std::string_view::npos || !find_number(e.id, "", seq, dash + 1) ||
        !find_number(e.data, "\"ts\":", ts))
      return fail(conn_failure::protocol);
    ctx_.deliver(seq_, seq, ts, now);
  }

  fanout_context& ctx_;
  response_reader http_;
  sse::decoder sse_;
  seq_tracker seq_;
};

}  // namespace

std::unique_ptr<subscriber> make_subscriber(fanout_context& ctx, int fd, uint64_t seed) {
  if (ctx.env.opts.sub == sub_protocol::ws) return std::make_unique<ws_subscriber>(ctx, fd, seed);
  return std::make_unique<sse_subscriber>(ctx, fd);
}

}  // namespace rc::load
