#include "server/responses_api.h"

#include "core/clock.h"
#include "proto/json_writer.h"
#include "proto/openai_errors.h"
#include "proto/openai_responses_items.h"
#include "server/connection.h"
#include "server/generation.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/responses_cluster.h"
#include "server/shard.h"
#include "server/ws_broker.h"

namespace rc::server {
namespace {

void report(connection& conn, responses_mode mode, std::string_view request_id,
            const openai::api_error& err, uint64_t retry_after_ms = 0);

// The prefix of the id an input item sent without one gets when stored.
std::string_view item_id_prefix(openai::input_item_type t) {
  switch (t) {
    case openai::input_item_type::message:
      return "msg_";
    case openai::input_item_type::function_call:
      return "fc_";
    case openai::input_item_type::function_call_output:
      return "fco_";
    case openai::input_item_type::custom_tool_call:
      return "ctc_";
    case openai::input_item_type::custom_tool_call_output:
      return "ctco_";
    case openai::input_item_type::other:
      break;
  }
  return "item_";
}

// ---- the renderer ----

class responses_task final : public generation_task {
 public:
  responses_task(shard_server& s, connection& c, responses_mode mode, openai::response_object r,
                 std::string request_id, std::vector<turn> history, bool length_limited)
      : generation_task(s, c),
        mode_(mode),
        writer_(std::move(r)),
        request_id_(std::move(request_id)),
        history_(std::move(history)),
        length_limited_(length_limited) {}

  bool on_start() override {
    if (!conn_) return false;
    if (mode_ == responses_mode::sse) conn_->begin_sse();
    if (starts_with_raw()) return true;  // the upstream's own response.created comes raw
    byte_buffer b;
    writer_.created(b);
    if (!emit(openai::response_event::created, b)) return false;
    b.clear();
    writer_.in_progress(b);
    return emit(openai::response_event::in_progress, b);
  }

  // The previous response whose busy mark this response holds, released at the end.
  void hold_previous(std::string id) { previous_ = std::move(id); }
  // The request's input items, stored with the response (input_items).
  void keep_input(std::vector<openai::input_item> input) { input_ = std::move(input); }

  ~responses_task() override {
    if (!previous_.empty()) release_previous(shard_, previous_);
  }

 private:
  bool emit(std::string_view type, const byte_buffer& json) { return emit(type, json.view()); }
  bool emit(std::string_view type, std::string_view json) {
    if (!conn_) return false;
    switch (mode_) {
      case responses_mode::json:
        return true;
      case responses_mode::sse: {
        byte_buffer frame;
        frame.append("event: ");
        frame.append(type);
        frame.append("\ndata: ");
        frame.append(json);
        frame.append("\n\n");
        return conn_->stream_push_sse(frame.view());
      }
      case responses_mode::ws:
        return conn_->websocket() && conn_->websocket()->send_text(json);
      case responses_mode::ws_broker:
        if (!conn_->websocket()) return false;
        broker_ws_handler::send_event(*conn_->websocket(), request_id_, type, json);
        return true;
    }
    return false;
  }

  bool close_open_item() {
    byte_buffer b;
    if (message_ != npos) {
      writer_.text_done(b, message_);
      if (!emit(openai::response_event::output_text_done, b)) return false;
      b.clear();
      writer_.content_part_done(b, message_);
      if (!emit(openai::response_event::content_part_done, b)) return false;
      b.clear();
      writer_.end_item(b, message_);
      message_ = npos;
      return emit(openai::response_event::output_item_done, b);
    }
    if (call_ != npos) {
      writer_.arguments_done(b, call_);
      if (!emit(openai::response_event::arguments_done, b)) return false;
      b.clear();
      writer_.end_item(b, call_);
      call_ = npos;
      return emit(openai::response_event::output_item_done, b);
    }
    return true;
  }

  bool render(const engine_event& e) override {
    byte_buffer b;
    switch (e.type) {
      case event_type::delta:
        if (message_ == npos) {
          if (!close_open_item()) return false;
          message_ = writer_.begin_message(b, mint_id(shard_, "msg_"));
          if (!emit(openai::response_event::output_item_added, b)) return false;
          b.clear();
          writer_.content_part_added(b, message_);
          if (!emit(openai::response_event::content_part_added, b)) return false;
          b.clear();
        }
        writer_.text_delta(b, message_, e.text);
        return emit(openai::response_event::output_text_delta, b);
      case event_type::tool_call:
        if (!e.tool_call_id.empty()) {
          if (!close_open_item()) return false;
          call_ = writer_.begin_function_call(b, mint_id(shard_, "fc_"), std::string(e.tool_call_id),
                                              std::string(e.tool_name));
          if (!emit(openai::response_event::output_item_added, b)) return false;
          b.clear();
        }
        // An engine may open a call with no arguments yet (a chat upstream's first tool-call
        // chunk has "arguments": ""): the API sends no empty delta.
        if (e.text.empty()) return true;
        writer_.arguments_delta(b, call_, e.text);
        return emit(openai::response_event::arguments_delta, b);
      case event_type::done:
        finish_ = e.finish;
        return close_open_item();
      case event_type::usage:
        return raw_seen_ ? complete_raw() : complete(e.usage);
      case event_type::raw:
        // Passthrough: one Responses event (SSE), or the whole response object (JSON, answered
        // when the usage follows), unchanged.
        raw_seen_ = true;
        if (mode_ == responses_mode::json) {
          raw_.assign(e.raw);
          return true;
        }
        return emit(e.raw_name, e.raw);
      case event_type::error:
        fail(engine_error(e), &e);
        return true;
    }
    return false;
  }

  // The end of a passed-through response. The upstream minted its id and keeps it (if it
  // stores responses): ringcast's store keeps only the responses it minted ids for, so a
  // follow-up naming this id is forwarded to the upstream (start_response).
  bool complete_raw() {
    if (!conn_) return true;
    if (mode_ == responses_mode::json) {
      conn_->respond(200, "application/json", raw_);
    } else if (mode_ == responses_mode::sse) {
      release_connection()->end_sse();
    }
    return true;
  }

  bool complete(const openai::usage_counts& usage) {
    byte_buffer b;
    bool cut = length_limited_ && finish_ == openai::finish_reason::length;
    if (cut) {
      writer_.incomplete(b, "max_output_tokens", usage);
    } else {
      writer_.completed(b, usage, wall_time_s());
    }
    bool ok = emit(cut ? openai::response_event::incomplete : openai::response_event::completed, b);
    store();
    if (!conn_) return ok;
    if (mode_ == responses_mode::json) {
      byte_buffer body;
      openai::write_response(body, writer_.response());
      conn_->respond(200, "application/json", body.view());
    } else if (mode_ == responses_mode::sse) {
      release_connection()->end_sse();
    }
    return ok;
  }

  // Keeps the conversation so far, with this response's output, for previous_response_id.
  void store() {
    const openai::response_object& r = writer_.response();
    if (!r.settings.store) return;
    std::vector<turn> conversation = std::move(history_);
    for (const auto& item : r.output) {
      turn t;
      t.role = openai::message_role::assistant;
      t.text = item.type == openai::output_item_type::message
                   ? item.text
                   : item.name + "(" + item.arguments + ")";
      conversation.push_back(std::move(t));
    }
    // Input items get ids as the API gives them, if the client sent none.
    for (openai::input_item& item : input_) {
      if (!item.id.empty()) continue;
      openai::set_item_id(item, mint_id(shard_, item_id_prefix(item.type)));
    }
    responses_write_through(shard_, r.id, conversation, r, input_);
    shard_.responses().put(r.id, std::move(conversation), r, std::move(input_));
  }

  // `e`: the engine's error event, if the failure is one (its status, envelope, Retry-After).
  void fail(const openai::api_error& err, const engine_event* e = nullptr) {
    if (!conn_) return;
    bool http = mode_ == responses_mode::json || mode_ == responses_mode::sse;
    if (e && http && (!started() || mode_ == responses_mode::json)) {
      respond_engine_error(*conn_, *e, shard_.scheduler().retry_after_ms());
      return;
    }
    if (!started()) {  // nothing sent yet: the mode's plain error
      report(*conn_, mode_, request_id_, err);
      return;
    }
    if (mode_ == responses_mode::json) {
      respond_api_error(*conn_, err, shard_.scheduler().retry_after_ms());
      return;
    }
    byte_buffer b;
    writer_.error(b, err);
    emit(openai::response_event::error, b);
    if (mode_ == responses_mode::sse) release_connection()->end_sse_and_close();
  }

  void on_abort(std::string_view code, std::string_view message, bool alive) override {
    if (alive) fail(abort_error(code, message));
  }

  static constexpr size_t npos = static_cast<size_t>(-1);
  responses_mode mode_;
  openai::response_event_writer writer_;
  std::string request_id_;
  std::vector<turn> history_;  // the conversation before this response's output
  std::string previous_;
  std::vector<openai::input_item> input_;
  bool length_limited_;
  openai::finish_reason finish_ = openai::finish_reason::stop;
  size_t message_ = npos;
  size_t call_ = npos;
  bool raw_seen_ = false;
  std::string raw_;  // JSON passthrough: the upstream's response object
};

// Reports a failure before any event was sent, in the mode's own shape.
void report(connection& conn, responses_mode mode, std::string_view request_id,
            const openai::api_error& err, uint64_t retry_after_ms) {
  switch (mode) {
    case responses_mode::json:
    case responses_mode::sse:
      respond_api_error(conn, err, retry_after_ms);
      break;
    case responses_mode::ws:
      if (ws_endpoint* ws = conn.websocket()) {
        byte_buffer b;
        openai::write_responses_ws_error(b, err);
        ws->send_text(b.view());
      }
      break;
    case responses_mode::ws_broker:
      if (ws_endpoint* ws = conn.websocket())
        broker_ws_handler::send_error(*ws, request_id, err.code.value_or(err.type), err.message);
      break;
  }
}

// The model exists, and max_output_tokens is within what it can produce (16 is the API's minimum,
// checked by the codec; the maximum is the engine's, e.g. --mock-max-tokens).
std::optional<openai::api_error> check_engine_limits(shard_server& shard,
                                                     const openai::response_settings& s) {
  engine* e = shard.engine_for(s.model);
  if (!e) return openai::model_not_found(s.model);
  uint64_t max = e->completion_tokens_max(s.model);
  if (!s.max_output_tokens || static_cast<uint64_t>(*s.max_output_tokens) <= max)
    return std::nullopt;
  std::string n = std::to_string(*s.max_output_tokens);
  return openai::invalid_request("max_output_tokens is too large: " + n +
                                     ". This model supports at most " + std::to_string(max) +
                                     " output tokens, whereas you provided " + n + ".",
                                 "max_output_tokens");
}

// Whether a previous_response_id that is not in ringcast's store goes to the model's engine:
// engines that start lazily are upstreams, which keep their own responses.
bool upstream_resolves(shard_server& shard, const openai::responses_request& req) {
  engine* e = shard.engine_for(req.settings.model);
  return e && e->starts_lazily();
}

void launch(connection& conn, responses_mode mode, openai::responses_request&& req,
            original_request&& original, std::string request_id, std::vector<turn> history,
            std::string previous, unique_function<void()> on_finished, uint64_t deadline_ms) {
  shard_server& shard = *shard_server::current();
  engine* e = shard.engine_for(req.settings.model);
  if (!e) {
    report(conn, mode, request_id, openai::model_not_found(req.settings.model));
    if (on_finished) on_finished();
    return;
  }
  generation_request g;
  g.model = req.settings.model;
  g.original = std::move(original);
  g.original.previous_response_id = req.settings.previous_response_id;
  g.conversation = history;
  if (req.settings.instructions) {
    // Instructions apply to this request only; they are not carried into the stored history.
    g.conversation.insert(g.conversation.begin(),
                          turn{openai::message_role::system, *req.settings.instructions});
  }
  append_turns(req.input, g.conversation);
  append_turns(req.input, history);
  g.tools = req.settings.tools;
  g.tool_choice = req.settings.tool_choice;
  g.parallel_tool_calls = req.settings.parallel_tool_calls;
  if (req.settings.max_output_tokens) g.max_tokens = static_cast<uint64_t>(*req.settings.max_output_tokens);
  g.temperature = req.settings.temperature;
  g.top_p = req.settings.top_p;

  // An engine that keeps the conversation continues it on the previous response's home shard:
  // the new id names that shard, so the next follow-up goes there too.
  std::string_view previous_id = req.settings.previous_response_id;
  int state_home = e->keeps_state() && !previous_id.empty()
                       ? shard_of_id(previous_id, "resp_", shard.shard_count())
                       : -1;
  openai::response_object r;
  r.id = state_home >= 0 ? mint_id_for(shard, "resp_", static_cast<unsigned>(state_home))
                         : mint_id(shard, "resp_");
  g.original.response_id = r.id;
  r.created_at = wall_time_s();
  r.status = openai::response_status::in_progress;
  r.settings = std::move(req.settings);
  // Over a WebSocket the request gets its own access log line (the broker's carries its id).
  std::string_view ws_action = mode == responses_mode::ws          ? "response.create"
                               : mode == responses_mode::ws_broker ? "responses.create"
                                                                   : "";
  std::string ws_id = mode == responses_mode::ws_broker ? request_id : std::string();
  auto* t = new responses_task(shard, conn, mode, std::move(r), std::move(request_id),
                               std::move(history), g.max_tokens.has_value());
  if (!ws_action.empty()) t->log_ws_request(ws_action, ws_id);
  if (!previous.empty()) t->hold_previous(std::move(previous));
  t->keep_input(std::move(req.input));
  if (on_finished) t->set_on_finished(std::move(on_finished));
  t->count_stream();
  t->set_deadline_ms(deadline_ms);
  t->start(*e, std::move(g));
}

}  // namespace

void start_response(connection& conn, responses_mode mode, openai::responses_request&& req,
                    std::string request_id, unique_function<void()> on_finished,
                    uint64_t deadline_ms, original_request original) {
  shard_server& shard = *shard_server::current();
  // Checked before a previous response is taken, so that a refusal leaves it free.
  if (auto err = check_engine_limits(shard, req.settings)) {
    report(conn, mode, request_id, *err);
    if (on_finished) on_finished();
    return;
  }
  std::string previous = req.settings.previous_response_id;
  // An id ringcast did not mint (or did not store) belongs to an upstream that passed its
  // response through: the upstream resolves it; the mock cannot. An engine that keeps state
  // resolves every id itself (not found, conflicts).
  int home = previous.empty() ? -1 : response_home(previous, shard.shard_count());
  engine* e = shard.engine_for(req.settings.model);
  if (previous.empty() || (e && e->keeps_state()) || (home < 0 && upstream_resolves(shard, req))) {
    launch(conn, mode, std::move(req), std::move(original), std::move(request_id), {}, {},
           std::move(on_finished), deadline_ms);
    return;
  }
  if (home < 0) {
    report(conn, mode, request_id, openai::previous_response_not_found(previous));
    if (on_finished) on_finished();
    return;
  }
  // Take the conversation from its home shard (which marks it busy), then come back here.
  uint64_t conn_id = conn.id();
  take_previous(
      shard, previous,
      [conn_id, mode, deadline_ms, previous, req = std::move(req), original = std::move(original),
       request_id = std::move(request_id),
       on_finished = std::move(on_finished)](previous_taken&& taken) mutable {
        shard_server& here = *shard_server::current();
        connection* c = here.live_connection(conn_id);
        if (!c) {
          if (taken.status == previous_status::ok) release_previous(here, previous);
          if (on_finished) on_finished();
          return;
        }
        switch (taken.status) {
          case previous_status::ok:
            launch(*c, mode, std::move(req), std::move(original), std::move(request_id),
                   std::move(taken.history), std::move(previous), std::move(on_finished),
                   deadline_ms);
            return;
          case previous_status::not_found:
            if (upstream_resolves(here, req)) {
              // Not ours after all (another ringcast upstream mints ids of the same shape).
              launch(*c, mode, std::move(req), std::move(original), std::move(request_id), {}, {},
                     std::move(on_finished), deadline_ms);
              return;
            }
            report(*c, mode, request_id, openai::previous_response_not_found(previous));
            break;
          case previous_status::busy:
            report(*c, mode, request_id, openai::conversation_busy(previous));
            break;
          case previous_status::unavailable:  // not on this node, and the nodes' bucket unreachable
            report(*c, mode, request_id, responses_nats_unavailable(), taken.retry_after_ms);
            break;
        }
        if (on_finished) on_finished();
      });
}

// ---- HTTP ----

handler_result handle_responses(request_context& ctx) {
  if (!check_timeout_header(ctx.conn, ctx.req)) return handler_result::done;
  json::value root;
  if (auto err = openai::parse_json_body(ctx.shard.json_parser(), ctx.body.data(),
                                         ctx.body.size(), ctx.body_capacity, root)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  openai::responses_request req;
  if (auto err = openai::parse_responses_request(root, req)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  if (!admit_generation(ctx.conn)) return handler_result::done;
  responses_mode mode = req.stream ? responses_mode::sse : responses_mode::json;
  original_request original = original_of(ctx.conn, api_kind::responses,
                                          std::string(ctx.body.data(), ctx.body.size()),
                                          req.stream, true);
  start_response(ctx.conn, mode, std::move(req), {}, {},
                 generation_deadline_ms(ctx.shard, ctx.req.find("x-ringcast-timeout-ms")),
                 std::move(original));
  return handler_result::async;
}

}  // namespace rc::server
