// POST /v1/chat/completions (JSON and SSE) and the WebSocket broker's chat.completion.
#include <optional>
#include <vector>

#include "core/clock.h"
#include "proto/json_writer.h"
#include "proto/openai_chat.h"
#include "server/authentication.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_broker.h"
#include "server/ws_endpoint.h"

namespace rc::server {

namespace {

// Whether a typed event names a choice the request asked for (the fronts keep one slot each).
bool choice_in_range(const engine_event& e, size_t choices) {
  bool per_choice = e.type == event_type::delta || e.type == event_type::tool_call ||
                    e.type == event_type::done;
  return !per_choice || e.choice < choices;
}

// data: {"error":{...}} — how a chat stream reports a failure after it has started.
void write_stream_error(byte_buffer& frame, std::string_view code, std::string_view message,
                        std::string_view envelope = {}) {
  frame.append("data: ");
  if (!envelope.empty()) {  // the upstream's own {"error":{…}}
    frame.append(envelope);
  } else {
    openai::api_error e = openai::internal_error(message);
    e.code = std::string(code);
    openai::write_error(frame, e);
  }
  frame.append("\n\n");
}

// The text of each choice of a chat chunk (choices[].delta.content) or completion
// (choices[].message.content), for the topic mirror of a passed-through stream.
template <class Fn>
void for_each_choice_text(json::parser& parser, std::string_view raw, bool chunk, Fn&& fn) {
  json::parse_result r = parser.parse(raw);
  if (!r.ok() || !r.root.is_object()) return;
  json::value choices = r.root.find("choices");
  if (!choices || !choices.is_array()) return;
  for (json::value c : choices.elements()) {
    if (!c.is_object()) continue;
    json::value index = c.find("index");
    json::value holder = c.find(chunk ? "delta" : "message");
    if (!holder || !holder.is_object()) continue;
    json::value content = holder.find("content");
    if (!content || !content.is_string() || content.get_string().empty()) continue;
    uint32_t i = index && (index.kind() == json::kind::int64 || index.kind() == json::kind::uint64)
                     ? static_cast<uint32_t>(index.get_uint64())
                     : 0;
    fn(i, content.get_string());
  }
}

// ---- SSE ----

class chat_sse_task final : public generation_task {
 public:
  chat_sse_task(shard_server& s, connection& c, const openai::completion_header& h,
                bool include_usage, uint32_t choices, std::optional<topic_mirror> mirror)
      : generation_task(s, c),
        writer_(h, include_usage ? openai::usage_chunk::on : openai::usage_chunk::off),
        include_usage_(include_usage),
        choices_(choices),
        mirror_(std::move(mirror)) {}

 private:
  bool on_start() override {
    if (!conn_) return false;
    conn_->begin_sse();
    if (starts_with_raw()) return true;  // the upstream's chunks carry their own role chunks
    // The role chunk of every choice leaves at once, before the first token.
    for (uint32_t i = 0; i < choices_; ++i) {
      byte_buffer json;
      writer_.role(json, i);
      if (!push(json)) return false;
    }
    return true;
  }

  bool push(const byte_buffer& json) {
    frame_.clear();
    frame_.append("data: ");
    frame_.append(json.view());
    frame_.append("\n\n");
    return conn_ && conn_->stream_push_sse(frame_.view());
  }

  bool render(const engine_event& e) override {
    byte_buffer json;
    switch (e.type) {
      case event_type::delta:
        if (mirror_) mirror_->delta(e.choice, e.text);
        writer_.content(json, e.choice, e.text);
        return push(json);
      case event_type::tool_call:
        if (!e.tool_call_id.empty()) {
          writer_.tool_call_begin(json, e.choice, e.tool_index, e.tool_call_id, e.tool_name);
          if (!push(json)) return false;
          json.clear();
        }
        writer_.tool_call_arguments(json, e.choice, e.tool_index, e.text);
        return push(json);
      case event_type::done:
        writer_.finish(json, e.choice, e.finish);
        return push(json);
      case event_type::usage:
        if (mirror_) mirror_->done(e.usage);
        // Passed through, the usage chunk (if the client asked for one) came raw.
        if (include_usage_ && !raw_seen_) {
          writer_.usage(json, e.usage);
          if (!push(json)) return false;
        }
        if (!conn_ || !conn_->stream_push_sse("data: [DONE]\n\n")) return false;
        release_connection()->end_sse();
        return true;
      case event_type::raw: {  // a chat.completion.chunk, written unchanged
        raw_seen_ = true;
        if (mirror_) {
          for_each_choice_text(shard_.json_parser(), e.raw, true,
                               [&](uint32_t c, std::string_view t) { mirror_->delta(c, t); });
        }
        frame_.clear();
        frame_.append("data: ");
        frame_.append(e.raw);
        frame_.append("\n\n");
        return conn_ && conn_->stream_push_sse(frame_.view());
      }
      case event_type::error:
        if (!started()) {  // a lazy engine refused the request: a plain HTTP error
          if (mirror_) mirror_->error(e.error_code, e.error_message);
          if (conn_) respond_engine_error(*conn_, e, shard_.scheduler().retry_after_ms());
          return true;
        }
        fail(e.error_code, e.error_message, e.raw);
        return true;
    }
    return false;
  }

  void on_abort(std::string_view code, std::string_view message, bool alive) override {
    if (!alive) return;
    if (!started()) {  // nothing sent yet: a plain HTTP error
      respond_api_error(*conn_, abort_error(code, message), shard_.scheduler().retry_after_ms());
      return;
    }
    fail(code, message);
  }

  // A visible end, never a silent truncation: the error as data, then the connection closes.
  void fail(std::string_view code, std::string_view message, std::string_view envelope = {}) {
    if (mirror_) mirror_->error(code, message);
    if (!conn_) return;
    byte_buffer frame;
    write_stream_error(frame, code, message, envelope);
    conn_->stream_push_sse(frame.view());
    release_connection()->end_sse_and_close();
  }

  openai::chat_chunk_writer writer_;
  bool raw_seen_ = false;
  bool include_usage_;
  uint32_t choices_;
  std::optional<topic_mirror> mirror_;
  byte_buffer frame_;
};

// ---- JSON (stream: false) ----

class chat_json_task final : public generation_task {
 public:
  chat_json_task(shard_server& s, connection& c, openai::completion_header h, uint32_t choices,
                 std::optional<topic_mirror> mirror)
      : generation_task(s, c), header_(std::move(h)), choices_(choices), mirror_(std::move(mirror)) {}

 private:
  struct choice_acc {
    std::string text;
    std::vector<openai::tool_call> calls;
    openai::finish_reason finish = openai::finish_reason::stop;
  };

  bool render(const engine_event& e) override {
    if (!choice_in_range(e, choices_.size())) return true;  // the engine rejects these first
    if (!conn_) return false;
    switch (e.type) {
      case event_type::delta:
        if (mirror_) mirror_->delta(e.choice, e.text);
        choices_[e.choice].text.append(e.text);
        return true;
      case event_type::tool_call: {
        auto& calls = choices_[e.choice].calls;
        if (!e.tool_call_id.empty()) calls.push_back({std::string(e.tool_call_id),
                                                      std::string(e.tool_name), {}});
        if (!calls.empty()) calls.back().arguments.append(e.text);
        return true;
      }
      case event_type::done:
        choices_[e.choice].finish = e.finish;
        return true;
      case event_type::usage: {
        if (mirror_) mirror_->done(e.usage);
        if (!raw_.empty()) {  // passed through: the upstream's completion, unchanged
          conn_->respond(200, "application/json", raw_);
          return true;
        }
        std::vector<openai::chat_choice> out;
        for (uint32_t i = 0; i < choices_.size(); ++i)
          out.push_back({i, choices_[i].text, choices_[i].calls, choices_[i].finish});
        byte_buffer body;
        openai::write_chat_completion(body, header_, out, e.usage);
        conn_->respond(200, "application/json", body.view());
        return true;
      }
      case event_type::raw:  // the whole chat.completion, answered when the usage follows
        raw_.assign(e.raw);
        if (mirror_) {
          for_each_choice_text(shard_.json_parser(), raw_, false,
                               [&](uint32_t c, std::string_view t) { mirror_->delta(c, t); });
        }
        return true;
      case event_type::error:
        if (mirror_) mirror_->error(e.error_code, e.error_message);
        respond_engine_error(*conn_, e, shard_.scheduler().retry_after_ms());
        return true;
    }
    return false;
  }

  void on_abort(std::string_view code, std::string_view message, bool alive) override {
    if (alive) fail(code, message);
  }

  void fail(std::string_view code, std::string_view message) {
    if (mirror_) mirror_->error(code, message);
    if (!conn_) return;
    respond_api_error(*conn_, abort_error(code, message), shard_.scheduler().retry_after_ms());
  }

  std::string raw_;
  openai::completion_header header_;
  std::vector<choice_acc> choices_;
  std::optional<topic_mirror> mirror_;
};

}  // namespace

// ---- route ----

handler_result handle_chat_completions(request_context& ctx) {
  if (!check_timeout_header(ctx.conn, ctx.req)) return handler_result::done;
  json::value root;
  if (auto err = openai::parse_json_body(ctx.shard.json_parser(), ctx.body.data(),
                                         ctx.body.size(), ctx.body_capacity, root)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  openai::chat_request req;
  if (auto err = openai::parse_chat_request(root, req)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  engine* e = ctx.shard.engine_for(req.model);
  if (!e) {
    respond_api_error(ctx.conn, openai::model_not_found(req.model));
    return handler_result::done;
  }
  if (auto err = openai::check_completion_tokens(req, e->completion_tokens_max(req.model))) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  openai::completion_header h;
  h.id = mint_id(ctx.shard, "chatcmpl-");
  h.created = wall_time_s();
  h.model = req.model;
  h.system_fingerprint = "fp_ringcast";
  std::optional<topic_mirror> mirror;
  if (std::string_view topic = ctx.req.find("x-ringcast-topic"); !topic.empty()) {
    if (std::string_view why = ctx.shard.topics().check_name(topic); !why.empty()) {
      respond_api_error(ctx.conn, openai::invalid_request(std::string(why), "x-ringcast-topic",
                                                          "invalid_topic"));
      return handler_result::done;
    }
    if (auto refused = topic_refusal(ctx.conn, topic_action::publish, topic)) {
      ++ctx.shard.metrics().rejected[static_cast<size_t>(reject_reason::permission)];
      respond_api_error(ctx.conn, *refused);
      return handler_result::done;
    }
    if (std::string_view why = ctx.shard.topics().unavailable_reason(); !why.empty()) {
      // The deltas could not be published: refuse before generating, not drop them silently.
      respond_api_error(
          ctx.conn,
          abort_error("nats_unavailable", "x-ringcast-topic: topics are unavailable (" +
                                              std::string(why) + "); retry later"),
          ctx.shard.topics().retry_after_ms());
      return handler_result::done;
    }
    mirror.emplace(ctx.shard, std::string(topic), h.id);
  }
  if (!admit_generation(ctx.conn)) return handler_result::done;
  generation_task* t;
  if (req.stream) {
    t = new chat_sse_task(ctx.shard, ctx.conn, h, req.include_usage, req.n, std::move(mirror));
  } else {
    t = new chat_json_task(ctx.shard, ctx.conn, h, req.n, std::move(mirror));
  }
  generation_request g = chat_generation(req);
  g.original = original_of(ctx.conn, api_kind::chat, std::string(ctx.body.data(), ctx.body.size()),
                           req.stream, true);
  g.original.include_usage = req.include_usage;
  t->count_stream();
  t->set_deadline_ms(generation_deadline_ms(ctx.shard, ctx.req.find("x-ringcast-timeout-ms")));
  t->start(*e, std::move(g));
  return handler_result::async;
}

// ---- WebSocket broker: chat.completion ----

namespace {

class chat_ws_task final : public generation_task {
 public:
  chat_ws_task(shard_server& s, ws_endpoint& ws, std::string request_id, uint32_t choices)
      : generation_task(s, ws.conn()), request_id_(std::move(request_id)), choices_(choices) {}

 private:
  struct choice_acc {
    std::string text;
    std::vector<openai::tool_call> calls;
    openai::finish_reason finish = openai::finish_reason::stop;
    size_t calls_sent = 0;
  };

  ws_endpoint* ws() { return conn_ ? conn_->websocket() : nullptr; }

  bool send(std::string_view event, const byte_buffer& data) {
    ws_endpoint* w = ws();
    if (!w) return false;
    broker_ws_handler::send_event(*w, request_id_, event, data.view());
    return true;
  }

  // Tool calls go out whole: when the next one starts, or the choice ends.
  bool flush_calls(uint32_t c) {
    choice_acc& a = choices_[c];
    for (; a.calls_sent < a.calls.size(); ++a.calls_sent) {
      const auto& call = a.calls[a.calls_sent];
      byte_buffer data;
      json::writer w(data);
      w.begin_object();
      w.uint64_member("index", c);
      w.key("tool_call");
      w.begin_object();
      w.uint64_member("index", a.calls_sent);
      w.string_member("id", call.id);
      w.string_member("type", "function");
      w.key("function");
      w.begin_object();
      w.string_member("name", call.name);
      w.string_member("arguments", call.arguments);
      w.end_object();
      w.end_object();
      w.end_object();
      if (!send("chat.tool_call", data)) return false;
    }
    return true;
  }

  bool render(const engine_event& e) override {
    if (!choice_in_range(e, choices_.size())) return true;  // the engine rejects these first
    switch (e.type) {
      case event_type::delta: {
        choices_[e.choice].text.append(e.text);
        byte_buffer data;
        json::writer w(data);
        w.begin_object();
        w.uint64_member("index", e.choice);
        w.string_member("delta", e.text);
        w.end_object();
        return send("chat.delta", data);
      }
      case event_type::tool_call: {
        auto& a = choices_[e.choice];
        if (!e.tool_call_id.empty()) {
          if (!flush_calls(e.choice)) return false;
          a.calls.push_back({std::string(e.tool_call_id), std::string(e.tool_name), {}});
        }
        if (!a.calls.empty()) a.calls.back().arguments.append(e.text);
        return true;
      }
      case event_type::done:
        choices_[e.choice].finish = e.finish;
        return flush_calls(e.choice);
      case event_type::usage:
        return complete(e.usage);
      case event_type::raw:  // only sent when the front asked for passthrough
        return true;
      case event_type::error:
        if (e.error_code.empty() && e.http_status != 0) {
          // An upstream's error without a code ("code": null) is named by its type, as a
          // refusal before the engine started is.
          error(engine_error(e).type, e.error_message);
          return true;
        }
        error(e.error_code, e.error_message);
        return true;
    }
    return false;
  }

  bool complete(const openai::usage_counts& usage) {
    byte_buffer data;
    json::writer w(data);
    w.begin_object();
    w.key("output");
    w.begin_object();
    w.string_member("text", choices_[0].text);
    w.end_object();
    w.string_member("finish_reason", openai::to_string(choices_[0].finish));
    if (choices_.size() > 1) {
      w.key("choices");
      w.begin_array();
      for (uint32_t i = 0; i < choices_.size(); ++i) {
        w.begin_object();
        w.uint64_member("index", i);
        w.string_member("text", choices_[i].text);
        w.string_member("finish_reason", openai::to_string(choices_[i].finish));
        w.end_object();
      }
      w.end_array();
    }
    w.key("usage");
    openai::write_chat_usage(w, usage);
    w.end_object();
    return send("chat.complete", data);
  }

  void error(std::string_view code, std::string_view message) {
    if (ws_endpoint* w = ws()) broker_ws_handler::send_error(*w, request_id_, code, message);
  }

  void on_abort(std::string_view code, std::string_view message, bool alive) override {
    if (alive) error(code, message);
  }

  std::string request_id_;
  std::vector<choice_acc> choices_;
};

}  // namespace

generation_task* start_chat_ws(ws_endpoint& ws, std::string_view request_id,
                               const json::value& payload) {
  shard_server& shard = ws.shard();
  openai::chat_request req;
  auto fail = [&](const openai::api_error& err) {
    broker_ws_handler::send_error(ws, request_id, err.code.value_or("invalid_request_error"),
                                  err.message);
    return nullptr;
  };
  if (!payload) return fail(openai::invalid_request("'payload' is required", "payload"));
  if (auto err = openai::parse_chat_request(payload, req)) return fail(*err);
  engine* e = shard.engine_for(req.model);
  if (!e) return fail(openai::model_not_found(req.model));
  if (auto err = openai::check_completion_tokens(req, e->completion_tokens_max(req.model)))
    return fail(*err);
  uint64_t retry_ms = 0;
  if (auto refused = admit_ws_generation(ws, retry_ms)) {
    broker_ws_handler::send_refusal(ws, request_id, *refused, retry_ms);
    return nullptr;
  }
  auto* t = new chat_ws_task(shard, ws, std::string(request_id), req.n);
  t->log_ws_request("chat.completion", request_id);
  generation_request g = chat_generation(req);
  // The action's payload is the chat request; its events stream, rendered from typed events.
  g.original = original_of(ws.conn(), api_kind::chat, payload.to_json(), true, false);
  g.original.include_usage = req.include_usage;
  t->count_stream();
  t->set_deadline_ms(generation_deadline_ms(shard, {}));
  t->start(*e, std::move(g));
  return t;
}

}  // namespace rc::server
