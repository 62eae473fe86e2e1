#include "server/generation.h"

#include <charconv>

#include "base/assert.h"
#include "core/clock.h"
#include "server/admission.h"
#include "server/connection.h"
#include "server/shard.h"

namespace rc::server {

// What a WebSocket generation's line needs that may outlive its connection.
struct generation_task::ws_log_state {
  std::string action;
  std::string ws_id;
  std::string client;
  std::string request_id;  // the WebSocket's x-request-id (joins the line to the connection's)
  std::string_view key;    // the key's name (keys live as long as the process)
  std::string_view route;
  uint64_t start_ns = 0;
  uint64_t first_token_ns = 0;
};

generation_task::generation_task(shard_server& shard, connection& conn)
    : shard_(shard), conn_(&conn), conn_id_(conn.id()) {
  conn.attach(*this);
  deadline_.bind<generation_task, &generation_task::on_deadline>(this);
  ++shard_.metrics().engine_streams_active;
  ++shard_.metrics().engine_streams_started;
}

void generation_task::log_ws_request(std::string_view action, std::string_view ws_id) {
  if (!conn_ || !shard_.access_logger().enabled()) return;
  ws_log_ = std::make_unique<ws_log_state>();
  ws_log_->action = action.substr(0, access_short_bytes_max);
  ws_log_->ws_id = ws_id.substr(0, access_request_id_bytes_max);
  ws_log_->client = conn_->client_address();
  ws_log_->request_id = conn_->request_id();
  if (const api_key* k = conn_->request_key()) ws_log_->key = k->name;
  ws_log_->route = route_label(conn_->route());
  ws_log_->start_ns = monotonic_ns();
}

void generation_task::end_as(close_reason reason, int status) {
  if (end_reason_ != close_reason::none) return;
  end_reason_ = reason;
  end_status_ = status;
  // Over HTTP the connection's line carries it (a clean end is its default).
  if (conn_ && !ws_log_ && reason != close_reason::complete) conn_->note_close_reason(reason);
}

void generation_task::write_ws_line() {
  ws_log_state& l = *ws_log_;
  uint64_t now = monotonic_ns();
  access_record r;
  r.wall_ms = shard_.access_logger().wall_ms(now);
  r.request_id = l.request_id;
  r.ws_id = l.ws_id;
  r.client = l.client;
  r.key = l.key;
  r.method = l.action;
  r.route = l.route;
  r.protocol = "ws";
  r.status = end_status_ != 0 ? end_status_ : 499;
  r.duration_us = (now - l.start_ns) / 1000;
  if (l.first_token_ns != 0)
    r.first_token_us = static_cast<int64_t>((l.first_token_ns - l.start_ns) / 1000);
  r.reason = end_reason_ == close_reason::none ? close_reason::client_closed : end_reason_;
  shard_.access_logger().write(r);
}

generation_task::~generation_task() {
  RC_ASSERT(finished_);
  --shard_.metrics().engine_streams_active;
}

void generation_task::set_deadline_ms(uint64_t timeout_ms) {
  if (timeout_ms == 0) return;
  shard_.loop().arm_after_ms(deadline_, timeout_ms);
  deadline_at_ms_ = shard_.loop().now_ms() + timeout_ms;
}

void generation_task::count_stream() {
  RC_ASSERT(conn_ != nullptr && !holds_stream_ && stream_ask_ == 0);
  const limit_rule& rule = conn_->budget_rule();
  if (rule.streams_max == 0) return;
  budget_ = conn_->budget();
  shard_limits& limits = shard_.budgets();
  // On the home the slot is normally free (admit_generation checked the cap); a start that was
  // queued meanwhile (a Responses WebSocket lane) may find it taken: then, as from any other
  // shard, the answer comes in a later turn.
  if (limits.is_home(budget_) && limits.try_open_stream(budget_, rule)) {
    holds_stream_ = true;
    return;
  }
  stream_ask_ = limits.open_stream_remote(budget_, rule, [this](bool granted) {
    stream_ask_ = 0;
    on_stream_slot(granted);
  });
}

void generation_task::start(engine& e, generation_request req, bool bypass_queue_limit) {
  engine_ = &e;
  engine_ref_ = shard_.share_engine(e);
  request_ = std::move(req);
  if (deadline_at_ms_ != 0) request_.deadline_ms = deadline_at_ms_;
  bypass_queue_limit_ = bypass_queue_limit;
  started_ns_ = shard_.loop().now_ns();
  if (stream_ask_ != 0) {
    start_pending_ = true;  // on_stream_slot goes on
    return;
  }
  run_start();
}

void generation_task::run_start() {
  if (shard_.scheduler().request(*this, bypass_queue_limit_) == engine_scheduler::admit::now) {
    on_admitted();
  }
}

void generation_task::on_stream_slot(bool granted) {
  if (finished_) {
    if (granted) shard_.budgets().close_stream(budget_);
    return;
  }
  if (!granted) {
    ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::streams)];
    on_abort("too_many_streams", "Too many concurrent streams for this API key", conn_ != nullptr);
    finish();
    return;
  }
  holds_stream_ = true;
  if (!start_pending_) return;
  start_pending_ = false;
  if (!bypass_queue_limit_ && !shard_.scheduler().has_room()) {
    on_abort("queue_full", "the engine queue is full; retry later", conn_ != nullptr);
    finish();
    return;
  }
  run_start();
}

void generation_task::on_admitted() {
  holds_slot_ = true;
  if (finished_) return;
  // A lazy engine may still refuse the request: nothing is rendered until its first event.
  if (!engine_->starts_lazily()) {
    started_ = true;
    if (!on_start()) {
      finish();
      return;
    }
  }
  stream_ = engine_->generate(request_, *this);
}

void generation_task::on_shed(uint64_t waited_ms) {
  if (finished_) return;
  end_as(close_reason::complete, 503);
  on_abort("shed", "the request waited " + std::to_string(waited_ms) +
                       " ms for the engine, longer than the shedding target; retry later",
           conn_ != nullptr);
  finish();
}

void generation_task::on_deadline() {
  if (finished_) return;
  ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::deadline)];
  end_as(close_reason::deadline, 504);
  cancel("deadline_exceeded", "the request did not finish within its deadline");
}

bool generation_task::on_event(const engine_event& e) {
  if (finished_) return false;
  if (!first_event_seen_) {
    first_event_seen_ = true;
    shard_.metrics().first_event_latency.observe_us((shard_.loop().now_ns() - started_ns_) / 1000);
    if (ws_log_) {
      ws_log_->first_token_ns = monotonic_ns();
    } else if (conn_) {
      conn_->note_first_token();
    }
  }
  if (e.type == event_type::delta || e.type == event_type::tool_call) ++shard_.metrics().engine_events;
  bool terminal = e.type == event_type::usage || e.type == event_type::error;
  if (e.type == event_type::usage) {
    ++shard_.metrics().engine_streams_completed;
    end_as(close_reason::complete, 200);
  }
  if (e.type == event_type::error) {
    ++shard_.metrics().engine_streams_failed;
    end_as(close_reason::error, e.http_status != 0 ? e.http_status : 500);
  }
  in_callback_ = true;
  bool ok = true;
  // Lazy start: the first event decides. An error is rendered with started() still false (a
  // plain HTTP error); anything else begins the output first.
  if (!started_ && e.type != event_type::error) {
    started_ = true;
    first_raw_ = e.type == event_type::raw;
    ok = on_start();
  }
  if (ok) ok = render(e);
  if (terminal || !ok) {
    if (!ok && !terminal) ++shard_.metrics().engine_streams_cancelled;
    finish();
  }
  in_callback_ = false;
  return !finished_ && !paused_;
}

void generation_task::on_resume() {
  paused_ = false;
  if (stream_ && !finished_) stream_->resume();
}

void generation_task::cancel(std::string_view code, std::string_view message) {
  if (finished_) return;
  ++shard_.metrics().engine_streams_cancelled;
  end_as(close_reason::client_closed, 499);  // a client's cancel (deadlines said so first)
  on_abort(code, message, conn_ != nullptr);
  finish();
}

void generation_task::on_cut(std::string_view code, std::string_view message) {
  if (finished_) return;
  end_as(close_reason::drain, 503);  // the server ended it, not the client
  cancel(code, message);
}

void generation_task::on_stream_closed() {
  // The connection is going away (the client left, a slow consumer, draining): it has already
  // detached us. Stop the engine now.
  if (finished_) return;
  conn_ = nullptr;
  ++shard_.metrics().engine_streams_cancelled;
  end_as(close_reason::client_closed, 499);
  on_abort("client_closed", "the client closed the connection", false);
  finish();
}

void generation_task::on_abort(std::string_view, std::string_view, bool) {}

connection* generation_task::release_connection() {
  connection* c = conn_;
  if (c) connection::detach(*this);
  conn_ = nullptr;
  return c;
}

void generation_task::finish() {
  if (finished_) return;
  finished_ = true;
  shard_.loop().cancel_timer(deadline_);
  if (conn_) connection::detach(*this);
  shard_.scheduler().withdraw(*this);
  if (stream_ask_ != 0) {
    shard_.budgets().abandon_stream(stream_ask_);  // a late grant is given back at once
    stream_ask_ = 0;
  }
  if (holds_stream_) {
    holds_stream_ = false;
    shard_.budgets().close_stream(budget_);
  }
  if (holds_slot_) {
    holds_slot_ = false;
    shard_.scheduler().release();
  }
  // Cancel the engine now, unless we are inside its callback (then it stops because we return
  // false, and goes with the task).
  if (!in_callback_) stream_.reset();
  if (ws_log_) write_ws_line();
  if (on_finished_) {
    auto fn = std::move(on_finished_);
    fn();
  }
  generation_task* self = this;
  shard_.loop().post(shard_.id(), [self] { delete self; });
}

// ---- conversations ----

void append_turns(const std::vector<openai::chat_message>& messages, std::vector<turn>& out) {
  for (const auto& m : messages) {
    turn t;
    t.role = m.role;
    t.text = m.content;
    for (const auto& call : m.tool_calls) {
      if (!t.text.empty()) t.text += '\n';
      t.text += call.name + "(" + call.arguments + ")";
    }
    out.push_back(std::move(t));
  }
}

void append_turns(const std::vector<openai::input_item>& items, std::vector<turn>& out) {
  for (const auto& item : items) {
    turn t;
    switch (item.type) {
      case openai::input_item_type::message:
        t.role = item.role;
        t.text = item.text;
        break;
      case openai::input_item_type::function_call:
        t.role = openai::message_role::assistant;
        t.text = item.name + "(" + item.arguments + ")";
        break;
      case openai::input_item_type::function_call_output:
      case openai::input_item_type::custom_tool_call_output:
        t.role = openai::message_role::tool;
        t.text = item.output;
        break;
      case openai::input_item_type::custom_tool_call:
        t.role = openai::message_role::assistant;
        t.text = item.name + "(" + item.arguments + ")";
        break;
      case openai::input_item_type::other:
        // Reasoning, hosted tool calls, references: nothing a text-only engine can use.
        if (item.text.empty()) continue;
        t.role = item.role;
        t.text = item.text;
        break;
    }
    out.push_back(std::move(t));
  }
}

generation_request chat_generation(const openai::chat_request& req) {
  generation_request g;
  g.model = req.model;
  append_turns(req.messages, g.conversation);
  g.tools = req.tools;
  g.tool_choice = req.tool_choice;
  g.parallel_tool_calls = req.parallel_tool_calls.value_or(true);
  g.choices = req.n;
  if (req.max_tokens) g.max_tokens = static_cast<uint64_t>(*req.max_tokens);
  g.stop = req.stop;
  g.seed = req.seed;
  g.temperature = req.temperature.value_or(1.0);
  g.top_p = req.top_p.value_or(1.0);
  return g;
}

// ---- ids ----

std::string mint_id(shard_server& shard, std::string_view prefix) {
  return mint_id_for(shard, prefix, shard.id());
}

std::string mint_id_for(shard_server& shard, std::string_view prefix, unsigned home) {
  char hex[16];
  shard.make_token(hex);
  std::string id(prefix);
  id += std::to_string(home);
  id += '_';
  id.append(hex, 16);
  return id;
}

int shard_of_id(std::string_view id, std::string_view prefix, unsigned shard_count) {
  if (id.substr(0, prefix.size()) != prefix) return -1;
  id.remove_prefix(prefix.size());
  unsigned shard = 0;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), shard);
  if (ec != std::errc() || p == id.data() || p == id.data() + id.size() || *p != '_') return -1;
  if (id.size() - static_cast<size_t>(p - id.data()) != 17) return -1;
  return shard < shard_count ? static_cast<int>(shard) : -1;
}

}  // namespace rc::server
