// The openai engine's events on their way to the sink: decoded events converted, raw events
// relayed (straight from the scratch buffer when nothing waits), a queue while the sink is
// paused, and delivery in order (see openai_call.h).
#include "openai_call.h"

#include <algorithm>

#include "proto/openai_upstream.h"
#include "server/shard.h"

namespace rc::server {

bool openai_call::bad_choice(const std::vector<openai::stream_event>& events) {
  for (const openai::stream_event& d : events) {
    if (d.type == openai::stream_event_type::error || d.choice < choices_) continue;
    // The fronts keep one slot per requested choice: an index past them is malformed.
    fail(protocol_failure("The upstream answered choice " + std::to_string(d.choice) + " of " +
                          std::to_string(choices_) + "."),
         upstream_error_kind::protocol);
    return true;
  }
  return false;
}

bool openai_call::push_decoded(std::vector<openai::stream_event>& events) {
  if (bad_choice(events)) return true;
  for (openai::stream_event& d : events) {
    out_event e;
    e.choice = d.choice;
    e.tool_index = d.tool_index;
    switch (d.type) {
      case openai::stream_event_type::delta:
        e.type = event_type::delta;
        e.text = std::move(d.text);
        break;
      case openai::stream_event_type::tool_call:
        e.type = event_type::tool_call;
        e.text = std::move(d.text);
        e.id = std::move(d.tool_call_id);
        e.name = std::move(d.tool_name);
        break;
      case openai::stream_event_type::done:
        e.type = event_type::done;
        e.finish = d.finish;
        break;
      case openai::stream_event_type::error: {
        // An error inside a 200 stream: the client's fault if the upstream says so, else the
        // upstream's (502). Only used as a status if nothing was sent yet (lazy start).
        upstream_failure f;
        f.http_status = d.error_type == "invalid_request_error"   ? 400
                        : d.error_code == "rate_limit_exceeded" ? 429
                                                                : 502;
        f.code = std::move(d.error_code);
        f.message = std::move(d.error_message);
        f.type = d.error_type.empty() ? "server_error" : std::move(d.error_type);
        f.param = std::move(d.error_param);
        fail(std::move(f), upstream_error_kind::stream);
        return true;
      }
    }
    push(std::move(e));
  }
  return false;
}

void openai_call::push_raw(std::string_view data, std::string_view name) {
  scratch_.clear();
  if (!openai::rewrite_model(data, client_model_, scratch_)) {
    fail(protocol_failure("The upstream sent a value that is not a JSON object."), upstream_error_kind::protocol);
    return;
  }
  // An event's data may have come in several data: lines (joined with LF): relayed under one
  // data: prefix, each line break must go. Outside strings (where JSON escapes them) a CR or LF
  // is whitespace, so a space means the same.
  std::string_view out = scratch_.view();
  if (out.find_first_of("\r\n") != std::string_view::npos) {
    std::string flat(out);
    std::replace_if(flat.begin(), flat.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    scratch_.clear();
    scratch_.append(flat);
  }
  if (queue_.empty() && !paused_ && !starting_) {
    // The relay's hot path: handed to the sink straight from the scratch buffer, no copy.
    note_event(event_type::raw);
    engine_event e;
    e.type = event_type::raw;
    e.raw = scratch_.view();
    e.raw_name = name;
    e.raw_api = body_.wire;
    if (!sink_.on_event(e)) {
      paused_ = true;
      handle_.pause_reading();
    }
    return;
  }
  out_event e{.type = event_type::raw};
  e.raw.assign(scratch_.view());
  e.raw_name.assign(name);
  e.raw_api = body_.wire;
  push(std::move(e));
}

void openai_call::note_event(event_type type) {
  if (type != event_type::error) committed_ = true;
  if (!first_token_seen_ &&
      (type == event_type::delta || type == event_type::tool_call || type == event_type::raw)) {
    first_token_seen_ = true;
    engine_.metrics().first_token.observe_us((engine_.shard().loop().now_ms() - start_ms_) * 1000);
  }
}

void openai_call::push(out_event&& e) {
  note_event(e.type);
  queue_.push_back(std::move(e));
}

void openai_call::drain() {
  if (starting_) {
    arm(timer_use::drain, 0);
    return;
  }
  while (!queue_.empty() && !paused_) {
    out_event& o = queue_.front();
    engine_event e;
    e.type = o.type;
    e.choice = o.choice;
    e.tool_index = o.tool_index;
    e.finish = o.finish;
    e.usage = o.usage;
    e.raw_api = o.raw_api;
    switch (o.type) {
      case event_type::delta:
        e.text = o.text;
        break;
      case event_type::tool_call:
        e.text = o.text;
        e.tool_call_id = o.id;
        e.tool_name = o.name;
        break;
      case event_type::raw:
        e.raw = o.raw;
        e.raw_name = o.raw_name;
        break;
      case event_type::error:
        e.error_code = o.error.code;
        e.error_message = o.error.message;
        e.error_type = o.error.type;
        e.error_param = o.error.param;
        e.http_status = o.error.http_status;
        e.retry_after_ms = o.error.retry_after_ms;
        e.raw = o.error.envelope;
        break;
      case event_type::done:
      case event_type::usage:
        break;
    }
    if (o.type == event_type::usage || o.type == event_type::error) {
      // The last event: the sink ends its task (deleted on a later turn, never inside this call).
      sink_.on_event(e);
      queue_.pop_front();
      return;
    }
    bool more = sink_.on_event(e);
    queue_.pop_front();
    if (!more) {
      paused_ = true;
      handle_.pause_reading();
    }
  }
}

void openai_call::resume() {
  if (!paused_) return;
  paused_ = false;
  drain();
  if (!paused_ && queue_.empty() && phase_ != phase::over) handle_.resume_reading();
}

}  // namespace rc::server
