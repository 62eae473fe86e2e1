// The `codex-app-server` worker dialect: the handshake, the per-request thread and turn, the
// mapping of Codex's notifications onto typed engine events, cancel as turn/interrupt, declined
// approval requests, retained threads (their table: codex_threads.cc). See worker_dialect_codex.h
// for the flow.
//
// Thread-safety: a dialect and its calls belong to one shard; the thread_store is shared by the
// dialects of one upstream config (mutex).
#include "worker_dialect_codex.h"

#include <string>
#include <utility>

#include "core/log.h"
#include "proto/json_reader.h"

namespace rc::server::codex {
namespace {

json::parser& scratch_parser() {
  thread_local json::parser p;
  return p;
}

json::value parse_object(std::string_view raw) {
  if (raw.empty()) return {};
  json::parse_result p = scratch_parser().parse(raw);
  return p.ok() && p.root.is_object() ? p.root : json::value();
}

std::string string_at(json::value obj, std::string_view key) {
  json::value v = obj ? obj.find(key) : json::value();
  return v && v.is_string() ? std::string(v.get_string()) : std::string();
}

uint64_t count_at(json::value obj, std::string_view key) {
  json::value v = obj ? obj.find(key) : json::value();
  if (!v) return 0;
  if (v.kind() == json::kind::int64) return v.get_int64() > 0 ? uint64_t(v.get_int64()) : 0;
  if (v.kind() == json::kind::uint64) return v.get_uint64();
  return 0;
}

// ---- the handshake: initialize → initialized ----

class codex_handshake final : public worker_call {
 public:
  void start(call_context& ctx) override {
    id_ = ctx.next_id();
    ctx.expect_response(id_);
    // Notifications nobody reads here are switched off (fewer lines to parse per turn).
    std::string params = R"({"clientInfo":{"name":"ringcast","title":null,"version":")";
    params += RINGCAST_VERSION_STRING;
    params += R"("},"capabilities":{"experimentalApi":false,"requestAttestation":false,)"
              R"("optOutNotificationMethods":["thread/started","thread/status/changed",)"
              R"("account/rateLimits/updated","remoteControl/status/changed","item/started"]}})";
    std::string out;
    jsonrpc::write_request(out, id_, "initialize", params, false);
    ctx.send(out);
  }
  void on_message(call_context& ctx, const jsonrpc::message& m) override {
    if (m.id_number != id_ || done_) return;
    done_ = true;
    if (m.type == jsonrpc::kind::error) {
      ctx.handshake_done(false, m.error_message, {});
    } else {
      std::string out;
      jsonrpc::write_notification(out, "initialized", {}, false);
      // Codex takes `{"method":"initialized"}`; the writer's empty params are `{}`, also fine.
      ctx.send(out);
      ctx.handshake_done(true, {}, {});
    }
    ctx.finish();
  }
  void cancel(call_context& ctx) override {
    if (!done_) {
      done_ = true;
      ctx.finish();
    }
  }

 private:
  uint64_t id_ = 0;
  bool done_ = false;
};

// ---- a generation: thread → (history) → turn → notifications → done ----

class codex_call final : public worker_call {
 public:
  codex_call(std::shared_ptr<const settings> s, std::shared_ptr<thread_store> store,
             const call_params& p)
      : settings_(std::move(s)), store_(std::move(store)), model_(p.upstream_model) {
    const generation_request& r = *p.request;
    instructions_ = instructions_of(r.conversation);
    dialogue_ = dialogue_of(r.conversation);
    if (settings_->retain_threads) {
      response_id_ = r.original.response_id;
      previous_id_ = r.original.previous_response_id;
    }
  }

  void start(call_context& ctx) override {
    if (dialogue_.empty()) {  // instructions only: a turn needs input
      return fail(ctx, failure_from_rpc_error(-32602, "codex needs a user turn to answer", {}));
    }
    if (!previous_id_.empty()) {
      std::optional<retained_thread> kept = store_->take(previous_id_);
      // The conversation must extend what the thread holds; otherwise replay it on a new one.
      if (kept && dialogue_.size() > kept->turns) {
        thread_id_ = std::move(kept->thread_id);
        held_ = kept->turns;
        resumed_ = true;
        request(ctx, phase::thread, "thread/resume",
                thread_resume_params(*settings_, thread_id_, model_, instructions_));
        return;
      }
    }
    start_thread(ctx);
  }

  void on_message(call_context& ctx, const jsonrpc::message& m) override {
    switch (m.type) {
      case jsonrpc::kind::request: {  // an approval or question for codex's client: decline
        std::string out;
        write_decline(m, out);
        ctx.send(out);
        return;
      }
      case jsonrpc::kind::notification:
        on_notification(ctx, m);
        return;
      case jsonrpc::kind::response:
      case jsonrpc::kind::error:
        on_response(ctx, m);
        return;
    }
  }

  void cancel(call_context& ctx) override {
    if (phase_ == phase::closing) client_gone_ = true;  // a held done + usage is not sent
    if (cancelled_ || phase_ == phase::closing || phase_ == phase::over) return;
    cancelled_ = true;
    // Waiting for thread/start, inject or turn/start: their answers finish the call (or, for
    // turn/start, interrupt the turn). A running turn is interrupted now.
    if (phase_ == phase::running) interrupt(ctx);
  }

 private:
  enum class phase : uint8_t { thread, inject, turn, running, closing, over };

  void request(call_context& ctx, phase next, std::string_view method, std::string_view params) {
    pending_ = ctx.next_id();
    ctx.expect_response(pending_);
    phase_ = next;
    std::string out;
    jsonrpc::write_request(out, pending_, method, params, false);
    ctx.send(out);
  }

  void start_thread(call_context& ctx) {
    resumed_ = false;
    held_ = 0;
    // A thread is kept on disk only when it will be continued (a Responses request of an
    // upstream with retain_threads); otherwise it is ephemeral.
    bool keep = !response_id_.empty();
    request(ctx, phase::thread, "thread/start",
            thread_start_params(*settings_, model_, instructions_, !keep));
  }

  void on_response(call_context& ctx, const jsonrpc::message& m) {
    if (m.id_number != pending_) {  // the answer to turn/interrupt: nothing to do
      return;
    }
    pending_ = 0;
    bool failed = m.type == jsonrpc::kind::error;
    switch (phase_) {
      case phase::thread: {
        if (failed && resumed_) {  // the kept thread is gone (another home, pruned): replay
          RC_DEBUG("codex: thread/resume %s failed (%.*s); starting a new thread",
                   thread_id_.c_str(), int(m.error_message.size()), m.error_message.data());
          thread_id_.clear();
          start_thread(ctx);
          return;
        }
        if (failed) return fail(ctx, failure_from_rpc_error(m.error_code, m.error_message, m.error_data));
        if (!resumed_) {
          json::value result = parse_object(m.result);
          json::value thread = result ? result.find("thread") : json::value();
          thread_id_ = thread && thread.is_object() ? string_at(thread, "id") : std::string();
          if (thread_id_.empty())
            return fail(ctx, worker_failure_of("worker_protocol_error",
                                               "codex answered thread/start without a thread id"));
        }
        ctx.route_key(thread_id_);
        if (cancelled_) return close(ctx);
        size_t inputs = input_turns_of_new();
        size_t history_end = dialogue_.size() - inputs;
        if (history_end > held_) {
          request(ctx, phase::inject, "thread/inject_items",
                  inject_items_params(thread_id_, dialogue_, held_, history_end));
          return;
        }
        return start_turn(ctx);
      }
      case phase::inject:
        if (failed) return fail(ctx, failure_from_rpc_error(m.error_code, m.error_message, m.error_data));
        if (cancelled_) return close(ctx);
        return start_turn(ctx);
      case phase::turn: {
        if (failed) return fail(ctx, failure_from_rpc_error(m.error_code, m.error_message, m.error_data));
        json::value result = parse_object(m.result);
        json::value t = result ? result.find("turn") : json::value();
        if (turn_id_.empty() && t && t.is_object()) turn_id_ = string_at(t, "id");
        if (phase_ == phase::turn) phase_ = phase::running;
        if (cancelled_) interrupt(ctx);
        return;
      }
      case phase::closing:  // thread/unsubscribe answered (either way): the call is over
        phase_ = phase::over;
        if (succeeded_) {  // a retained thread: it now holds the dialogue and the answer
          store_->put(response_id_, retained_thread{thread_id_, dialogue_.size() + 1});
          if (!client_gone_) end_well(ctx);
        }
        ctx.finish();
        return;
      case phase::running:
      case phase::over:
        return;
    }
  }

  // Trailing turns that go into turn/start, among those the thread does not hold yet.
  size_t input_turns_of_new() const {
    size_t n = input_turns(dialogue_);
    size_t fresh = dialogue_.size() - held_;
    return n < fresh ? n : fresh;
  }

  void start_turn(call_context& ctx) {
    request(ctx, phase::turn, "turn/start",
            turn_start_params(thread_id_, dialogue_, dialogue_.size() - input_turns_of_new()));
  }

  void interrupt(call_context& ctx) {
    if (turn_id_.empty()) return;  // turn/start's answer (or turn/started) brings it
    uint64_t id = ctx.next_id();
    ctx.expect_response(id);
    std::string out;
    jsonrpc::write_request(out, id, "turn/interrupt", interrupt_params(thread_id_, turn_id_),
                           false);
    ctx.send(out);
  }

  void on_notification(call_context& ctx, const jsonrpc::message& m) {
    if (phase_ == phase::closing || phase_ == phase::over) return;
    std::string_view method = m.method;
    bool wanted = method == "item/agentMessage/delta" || method == "item/completed" ||
                  method == "thread/tokenUsage/updated" || method == "turn/started" ||
                  method == "turn/completed" || method == "error";
    if (!wanted) return;
    json::value p = parse_object(m.params);
    if (!p) return;
    // Notifications name their turn; one of an earlier turn of a resumed thread is not ours.
    std::string turn = string_at(p, "turnId");
    if (method == "turn/started" || method == "turn/completed") {
      json::value t = p.find("turn");
      if (t && t.is_object()) turn = string_at(t, "id");
    }
    if (!turn.empty()) {
      if (turn_id_.empty() && (method == "turn/started" || phase_ == phase::turn)) turn_id_ = turn;
      if (turn != turn_id_) return;
    }
    if (method == "turn/started") {
      if (cancelled_) interrupt(ctx);
    } else if (method == "item/agentMessage/delta") {
      text_ = string_at(p, "delta");
      std::string item = string_at(p, "itemId");
      emit_text(ctx, item);
    } else if (method == "item/completed") {
      // A message that arrived without deltas is sent whole.
      json::value item = p.find("item");
      if (!item || !item.is_object() || string_at(item, "type") != "agentMessage") return;
      std::string id = string_at(item, "id");
      if (id == streamed_item_ || id == last_item_) return;
      text_ = string_at(item, "text");
      if (!text_.empty()) emit_text(ctx, id);
    } else if (method == "thread/tokenUsage/updated") {
      json::value usage = p.find("tokenUsage");
      json::value last = usage && usage.is_object() ? usage.find("last") : json::value();
      if (!last || !last.is_object()) return;
      usage_.input_tokens += count_at(last, "inputTokens");
      usage_.output_tokens += count_at(last, "outputTokens");
      usage_.cached_tokens += count_at(last, "cachedInputTokens");
      usage_.reasoning_tokens += count_at(last, "reasoningOutputTokens");
    } else if (method == "error") {
      json::value retry = p.find("willRetry");
      if (retry && retry.kind() == json::kind::boolean && retry.get_bool()) return;
      json::value e = p.find("error");
      if (e && e.is_object()) error_json_ = e.to_json();
    } else if (method == "turn/completed") {
      json::value t = p.find("turn");
      std::string status = t && t.is_object() ? string_at(t, "status") : std::string();
      json::value err = t && t.is_object() ? t.find("error") : json::value();
      if (err && err.is_object()) error_json_ = err.to_json();
      turn_completed(ctx, status);
    }
  }

  void emit_text(call_context& ctx, const std::string& item) {
    if (cancelled_ || text_.empty()) return;
    // Separate agent messages of one turn (a preamble before a tool, then the answer).
    if (!last_item_.empty() && item != last_item_) text_.insert(0, "\n\n");
    last_item_ = item;
    streamed_item_ = item;
    engine_event e;
    e.type = event_type::delta;
    e.text = text_;
    ctx.emit(e);
  }

  void turn_completed(call_context& ctx, const std::string& status) {
    if (cancelled_) return close(ctx);
    if (status == "completed") {
      if (!response_id_.empty()) {
        // A retained thread is unloaded before the client hears the end of the response, so a
        // follow-up (maybe on another worker) finds it on disk, complete.
        succeeded_ = true;
        return close(ctx);
      }
      end_well(ctx);
      return close(ctx);
    }
    if (status == "interrupted")
      return fail(ctx, worker_failure_of("worker_error", "the codex turn was interrupted"));
    fail(ctx, failure_from_turn_error(error_json_));
  }

  void end_well(call_context& ctx) {
    engine_event done;
    done.type = event_type::done;
    done.finish = openai::finish_reason::stop;
    ctx.emit(done);
    engine_event usage;
    usage.type = event_type::usage;
    usage.usage = usage_;
    ctx.emit(usage);
  }

  void fail(call_context& ctx, const worker_failure& f) {
    if (!cancelled_) {
      owned_event e = to_error_event(f);
      ctx.emit(e.view());
    }
    close(ctx);
  }

  // Ends the call: unloads the thread (it stays on disk when retained) and finishes once
  // codex answered that, or at once when there is no thread.
  void close(call_context& ctx) {
    cancelled_ = true;  // nothing more reaches the client
    if (thread_id_.empty()) {
      phase_ = phase::over;
      ctx.finish();
      return;
    }
    request(ctx, phase::closing, "thread/unsubscribe", thread_only_params(thread_id_));
  }

  std::shared_ptr<const settings> settings_;
  std::shared_ptr<thread_store> store_;
  std::string model_, instructions_, response_id_, previous_id_;
  std::vector<turn> dialogue_;
  phase phase_ = phase::thread;
  uint64_t pending_ = 0;
  std::string thread_id_, turn_id_;
  size_t held_ = 0;       // dialogue turns the thread already holds
  bool resumed_ = false;
  bool cancelled_ = false;
  bool succeeded_ = false;  // the turn completed; done + usage wait for the unsubscribe
  bool client_gone_ = false;
  std::string text_, last_item_, streamed_item_, error_json_;
  openai::usage_counts usage_;
};

class codex_dialect final : public worker_dialect {
 public:
  codex_dialect(const void* config_key, settings s)
      : settings_(std::make_shared<const settings>(std::move(s))),
        store_(store_for(config_key, settings_->retained_max)) {}

  jsonrpc::framing framing() const override { return jsonrpc::framing::lines; }
  bool with_jsonrpc_member() const override { return false; }
  std::unique_ptr<worker_call> make_handshake(std::string_view, uint32_t) override {
    return std::make_unique<codex_handshake>();
  }
  // Codex has no ping: a cheap local request (the threads loaded in memory) proves life.
  void write_ping(std::string& json_out, uint64_t id) override {
    jsonrpc::write_request(json_out, id, "thread/loaded/list", "{}", false);
  }
  std::string_view routing_key(const jsonrpc::message& m, std::string& scratch) override {
    json::value p = parse_object(m.params);
    scratch = string_at(p, "threadId");
    if (scratch.empty()) scratch = string_at(p, "conversationId");  // legacy approval requests
    return scratch;
  }
  void answer_unrouted_request(const jsonrpc::message& m, std::string& json_out) override {
    write_decline(m, json_out);
  }
  std::unique_ptr<worker_call> make_call(const call_params& p) override {
    return std::make_unique<codex_call>(settings_, store_, p);
  }
  std::unique_ptr<worker_call> make_embed_call(const embedding_request&, std::string_view,
                                               unique_function<void(embedding_result&&)>) override {
    return nullptr;  // codex has no embeddings
  }

 private:
  std::shared_ptr<const settings> settings_;
  std::shared_ptr<thread_store> store_;
};

}  // namespace

std::unique_ptr<worker_dialect> make_dialect(const void* config_key, settings s) {
  return std::make_unique<codex_dialect>(config_key, std::move(s));
}

}  // namespace rc::server::codex

namespace rc::server {

std::unique_ptr<worker_dialect> make_codex_dialect(std::shared_ptr<const upstream_config> cfg) {
  codex::settings s;
  if (cfg) {
    s.thread_params = cfg->thread_params;
    s.retain_threads = cfg->retain_threads;
  }
  return codex::make_dialect(cfg.get(), std::move(s));
}

}  // namespace rc::server
