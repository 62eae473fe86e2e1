// The `generate` call of the ringcast dialect (docs/workers.md): sends one generate request and
// turns the worker's generate/delta, generate/tool_call and generate/done notifications and the
// final result into typed engine events, in engine.h's order (per choice deltas / tool calls,
// then its done; usage last), or one error event. What the worker sends is validated: a choice
// outside [0, n), a tool call index that skips one, a negative count, a member of the wrong
// type, anything after a choice's done, is a worker_protocol_error (the call ends, a cancel is
// sent). ctx.finish() is always the last thing a path does: the worker may destroy the call in
// it.
#include <string>
#include <vector>

#include "proto/json_writer.h"
#include "proto/jsonrpc.h"
#include "server/worker_errors.h"
#include "worker_ringcast.h"

namespace rc::server::ringcast_wire {

namespace {

std::optional<openai::finish_reason> finish_of(std::string_view s) {
  using openai::finish_reason;
  if (s == "stop") return finish_reason::stop;
  if (s == "length") return finish_reason::length;
  if (s == "tool_calls") return finish_reason::tool_calls;
  if (s == "content_filter") return finish_reason::content_filter;
  return std::nullopt;
}

// A string member: absent → `absent` (true), present and a string → its value.
bool string_member(json::value obj, std::string_view key, std::string_view& out, bool& absent) {
  json::value v = obj.find(key);
  absent = !v;
  if (!v) return true;
  if (!v.is_string()) return false;
  out = v.get_string();
  return true;
}

struct choice_state {
  bool produced = false;  // a delta or tool call arrived by notification
  bool done = false;
  uint32_t tools = 0;  // tool calls started
};

class generate_call final : public worker_call {
 public:
  generate_call(std::string params, uint32_t n) : params_(std::move(params)), choices_(n) {}

  void start(call_context& ctx) override {
    id_ = ctx.next_id();
    ctx.expect_response(id_);
    ctx.route_key(std::to_string(id_));
    std::string out;
    jsonrpc::write_request(out, id_, "generate", params_);
    params_ = std::string();
    ctx.send(out);
  }

  void on_message(call_context& ctx, const jsonrpc::message& m) override {
    if (state_ == state::over) return;
    bool answer = m.type == jsonrpc::kind::response || m.type == jsonrpc::kind::error;
    if (state_ == state::cancelled) {
      if (answer) {
        state_ = state::over;
        ctx.finish();
      }
      return;  // notifications after a cancel are dropped
    }
    switch (m.type) {
      case jsonrpc::kind::notification:
        on_notification(ctx, m);
        return;
      case jsonrpc::kind::response:
        on_result(ctx, m.result);
        return;
      case jsonrpc::kind::error:
        end_with(ctx, failure_from_rpc_error(m.error_code, m.error_message, m.error_data), false);
        return;
      case jsonrpc::kind::request:
        protocol_error(ctx, "a request routed to a generate call");
        return;
    }
  }

  void cancel(call_context& ctx) override {
    if (state_ != state::running) return;
    state_ = state::cancelled;
    send_cancel(ctx);
  }

 private:
  enum class state : uint8_t { running, cancelled, over };

  void send_cancel(call_context& ctx) {
    std::string params = "{\"id\":" + std::to_string(id_) + "}", out;
    jsonrpc::write_notification(out, "cancel", params);
    ctx.send(out);
  }

  void end_with(call_context& ctx, const worker_failure& f, bool cancel_worker) {
    if (cancel_worker) send_cancel(ctx);
    state_ = state::over;
    owned_event e = to_error_event(f);
    ctx.emit(e.view());
    ctx.finish();
  }

  void protocol_error(call_context& ctx, std::string_view why) {
    end_with(
        ctx,
        worker_failure_of("worker_protocol_error",
                          "The worker sent an invalid generate message: " + std::string(why) + "."),
        true);
  }

  // The choice a notification names, or nullptr (protocol_error already reported).
  choice_state* choice_of(call_context& ctx, json::value p, uint32_t& index) {
    bool bad = false;
    std::optional<uint64_t> c = uint_member(p, "choice", bad);
    if (!c || *c >= choices_.size()) {
      protocol_error(ctx, "choice is missing, not an integer or not below n");
      return nullptr;
    }
    index = static_cast<uint32_t>(*c);
    if (choices_[index].done) {
      protocol_error(ctx, "a message for choice " + std::to_string(index) + " after its done");
      return nullptr;
    }
    return &choices_[index];
  }

  void on_notification(call_context& ctx, const jsonrpc::message& m) {
    bool delta = m.method == "generate/delta", tool = m.method == "generate/tool_call",
         done = m.method == "generate/done";
    if (!delta && !tool && !done) return;  // unknown notifications: ignored (newer workers)
    json::value p = parse_object(m.params);
    if (!p) return protocol_error(ctx, std::string(m.method) + " params is not an object");
    uint32_t index = 0;
    choice_state* cs = choice_of(ctx, p, index);
    if (cs == nullptr) return;
    engine_event e;
    e.choice = index;
    bool absent = false;
    if (delta) {
      if (!string_member(p, "text", e.text, absent) || absent) {
        return protocol_error(ctx, "generate/delta text is not a string");
      }
      cs->produced = true;
      if (!e.text.empty()) ctx.emit(e);
      return;
    }
    if (done) {
      std::string_view reason;
      std::optional<openai::finish_reason> f;
      if (!string_member(p, "finish_reason", reason, absent) || !(f = finish_of(reason))) {
        return protocol_error(ctx, "generate/done finish_reason is not a known reason");
      }
      cs->done = true;
      e.type = event_type::done;
      e.finish = *f;
      ctx.emit(e);
      return;
    }
    on_tool_call(ctx, p, *cs, e);
  }

  void on_tool_call(call_context& ctx, json::value p, choice_state& cs, engine_event& e) {
    bool bad = false, absent = false;
    std::optional<uint64_t> index = uint_member(p, "index", bad);
    if (!index || *index > cs.tools || *index >= tool_calls_max) {
      return protocol_error(ctx, "generate/tool_call index is missing or skips a call");
    }
    e.type = event_type::tool_call;
    e.tool_index = static_cast<uint32_t>(*index);
    if (!string_member(p, "arguments", e.text, absent)) {
      return protocol_error(ctx, "generate/tool_call arguments is not a string");
    }
    std::string minted;
    if (*index == cs.tools) {  // a call's first fragment names it
      if (!string_member(p, "name", e.tool_name, absent) || absent || e.tool_name.empty()) {
        return protocol_error(ctx, "the first generate/tool_call of a call has no name");
      }
      if (!string_member(p, "call_id", e.tool_call_id, absent)) {
        return protocol_error(ctx, "generate/tool_call call_id is not a string");
      }
      if (e.tool_call_id.empty()) e.tool_call_id = minted = mint_call_id(e.choice, e.tool_index);
      ++cs.tools;
    }
    cs.produced = true;
    ctx.emit(e);
  }

  std::string mint_call_id(uint32_t choice, uint32_t index) const {
    return "call_" + std::to_string(id_) + "_" + std::to_string(choice) + "_" +
           std::to_string(index);
  }

  void on_result(call_context& ctx, std::string_view text);
  bool check_result_choice(json::value c, std::vector<json::value>& by_index, std::string& why);
  void emit_rest(call_context& ctx, uint32_t i, json::value c);
  void emit_calls(call_context& ctx, uint32_t i, json::value calls);

  std::string params_;
  uint64_t id_ = 0;
  std::vector<choice_state> choices_;
  state state_ = state::running;
};

bool generate_call::check_result_choice(json::value c, std::vector<json::value>& by_index,
                                        std::string& why) {
  bool bad = false, absent = false;
  std::string_view s;
  std::optional<uint64_t> i = c.is_object() ? uint_member(c, "index", bad) : std::nullopt;
  if (!i || *i >= by_index.size() || by_index[*i]) {
    why = "a result choice has no index, a duplicate one or one not below n";
    return false;
  }
  if (!string_member(c, "text", s, absent) ||
      (!string_member(c, "finish_reason", s, absent) || (!absent && !finish_of(s)))) {
    why = "a result choice's text or finish_reason is invalid";
    return false;
  }
  json::value calls = c.find("tool_calls");
  if (calls) {
    if (!calls.is_array() || calls.size() > tool_calls_max) {
      why = "a result choice's tool_calls is not an array";
      return false;
    }
    for (json::value t : calls.elements()) {
      if (!t.is_object() || !string_member(t, "name", s, absent) || absent || s.empty() ||
          !string_member(t, "id", s, absent) || !string_member(t, "arguments", s, absent)) {
        why = "a result tool call has no name or a member of the wrong type";
        return false;
      }
    }
  }
  by_index[*i] = c;
  return true;
}

void generate_call::on_result(call_context& ctx, std::string_view text) {
  json::value r = parse_object(text);
  if (!r) return protocol_error(ctx, "the generate result is not an object");
  engine_event usage;
  usage.type = event_type::usage;
  json::value u = r.find("usage");
  if (u) {
    bool bad_in = false, bad_out = false;
    std::optional<uint64_t> in = u.is_object() ? uint_member(u, "prompt_tokens", bad_in) : 0;
    std::optional<uint64_t> out = u.is_object() ? uint_member(u, "completion_tokens", bad_out) : 0;
    if (!u.is_object() || bad_in || bad_out) {
      return protocol_error(ctx, "usage is not an object of non-negative token counts");
    }
    usage.usage.input_tokens = in.value_or(0);
    usage.usage.output_tokens = out.value_or(0);
  }
  std::vector<json::value> by_index(choices_.size());
  json::value list = r.find("choices");
  if (list) {
    if (!list.is_array()) return protocol_error(ctx, "choices is not an array");
    std::string why;
    for (json::value c : list.elements()) {
      if (!check_result_choice(c, by_index, why)) return protocol_error(ctx, why);
    }
  }
  // Everything is valid: emit what the notifications did not.
  for (uint32_t i = 0; i < choices_.size(); ++i) emit_rest(ctx, i, by_index[i]);
  state_ = state::over;
  ctx.emit(usage);
  ctx.finish();
}

// Choice i's text and tool calls if no notification carried any, then its done if none came.
void generate_call::emit_rest(call_context& ctx, uint32_t i, json::value c) {
  choice_state& cs = choices_[i];
  engine_event e;
  e.choice = i;
  bool absent = false;
  bool made_calls = cs.tools > 0;
  if (c && !cs.produced && !cs.done) {  // after its done, a choice says nothing more
    if (string_member(c, "text", e.text, absent) && !e.text.empty()) ctx.emit(e);
    json::value calls = c.find("tool_calls");
    if (calls && calls.size() > 0) {
      emit_calls(ctx, i, calls);
      made_calls = true;
    }
  }
  if (cs.done) return;
  std::string_view reason;
  e = engine_event{};
  e.type = event_type::done;
  e.choice = i;
  e.finish = made_calls ? openai::finish_reason::tool_calls : openai::finish_reason::stop;
  if (c && string_member(c, "finish_reason", reason, absent) && !absent)
    e.finish = *finish_of(reason);
  cs.done = true;
  ctx.emit(e);
}

void generate_call::emit_calls(call_context& ctx, uint32_t i, json::value calls) {
  uint32_t k = 0;
  bool absent = false;
  for (json::value t : calls.elements()) {
    engine_event call;
    call.type = event_type::tool_call;
    call.choice = i;
    call.tool_index = k;
    string_member(t, "name", call.tool_name, absent);
    string_member(t, "arguments", call.text, absent);
    string_member(t, "id", call.tool_call_id, absent);
    std::string minted;
    if (call.tool_call_id.empty()) call.tool_call_id = minted = mint_call_id(i, k);
    ctx.emit(call);
    ++k;
  }
}

}  // namespace

std::unique_ptr<worker_call> make_generate_call(std::string params_json, uint32_t choices) {
  return std::make_unique<generate_call>(std::move(params_json), choices == 0 ? 1 : choices);
}

}  // namespace rc::server::ringcast_wire
