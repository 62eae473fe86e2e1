// owned_event: an engine_event that owns its text, so it can wait in a queue (a paused sink) or
// travel to another shard in a message. view() gives the engine_event to deliver; its views point
// into the owned_event and stay valid while it lives and is not modified.
//
// Thread-safety: a value; moved between shards, never shared.
#pragma once

#include <string>

#include "server/engine.h"

namespace rc::server {

struct owned_event {
  owned_event() = default;
  explicit owned_event(const engine_event& e)
      : base(e),
        text(e.text),
        tool_call_id(e.tool_call_id),
        tool_name(e.tool_name),
        error_code(e.error_code),
        error_message(e.error_message),
        error_type(e.error_type),
        error_param(e.error_param),
        raw(e.raw),
        raw_name(e.raw_name) {}

  engine_event view() const {
    engine_event e = base;
    e.text = text;
    e.tool_call_id = tool_call_id;
    e.tool_name = tool_name;
    e.error_code = error_code;
    e.error_message = error_message;
    e.error_type = error_type;
    e.error_param = error_param;
    e.raw = raw;
    e.raw_name = raw_name;
    return e;
  }

  engine_event base;  // the scalar fields; its views are not used
  std::string text, tool_call_id, tool_name, error_code, error_message, error_type, error_param,
      raw, raw_name;
};

// An error event with an HTTP status, for engines answering before anything was produced.
inline owned_event error_event(std::string code, std::string message, uint16_t status,
                               std::string type = "server_error", std::string param = {},
                               uint32_t retry_after_ms = 0) {
  owned_event o;
  o.base.type = event_type::error;
  o.base.http_status = status;
  o.base.retry_after_ms = retry_after_ms;
  o.error_code = std::move(code);
  o.error_message = std::move(message);
  o.error_type = std::move(type);
  o.error_param = std::move(param);
  return o;
}

}  // namespace rc::server
