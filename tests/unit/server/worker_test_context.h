// A call_context for dialect tests: records what a call sends, the events it emits and whether
// it finished; feed() parses a worker message and hands it to the call, as the worker would.
// Unit tests only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/jsonrpc.h"
#include "server/owned_event.h"
#include "server/worker_dialect.h"

namespace rc::server::test {

struct recording_context final : call_context {
  uint64_t next_id() override { return ++last_id; }
  void expect_response(uint64_t id) override { expected.push_back(id); }
  void route_key(std::string_view key) override { keys.emplace_back(key); }
  void send(std::string_view json) override { sent.emplace_back(json); }
  bool emit(const engine_event& e) override {
    EXPECT_FALSE(finished) << "emit after finish";
    events.emplace_back(e);
    return true;
  }
  void finish() override {
    EXPECT_FALSE(finished) << "finish twice";
    finished = true;
  }
  void handshake_done(bool ok, std::string_view why, std::vector<std::string> m) override {
    ++handshakes;
    handshake_ok = ok;
    reason = why;
    models = std::move(m);
  }

  // Parses `json` as the worker's message and delivers it to `call`.
  void feed(worker_call& call, std::string_view json) {
    jsonrpc::message m;
    std::string error;
    ASSERT_TRUE(parser.parse(json, m, error)) << error << ": " << json;
    call.on_message(*this, m);
  }

  uint64_t last_id = 6;  // the first id a call gets is 7
  std::vector<uint64_t> expected;
  std::vector<std::string> keys, sent, models;
  std::vector<owned_event> events;
  bool finished = false, handshake_ok = false;
  int handshakes = 0;
  std::string reason;
  jsonrpc::parser parser;
};

}  // namespace rc::server::test

namespace rc::server::test {

// One line per event, for readable comparisons.
inline std::vector<std::string> describe(const std::vector<owned_event>& events) {
  std::vector<std::string> out;
  for (const owned_event& o : events) {
    engine_event e = o.view();
    std::string c = std::to_string(e.choice);
    switch (e.type) {
      case event_type::delta:
        out.push_back("delta " + c + " " + std::string(e.text));
        break;
      case event_type::tool_call:
        out.push_back("tool " + c + " #" + std::to_string(e.tool_index) + " " +
                      std::string(e.tool_call_id) + " " + std::string(e.tool_name) + " " +
                      std::string(e.text));
        break;
      case event_type::done:
        out.push_back("done " + c + " " + std::string(openai::to_string(e.finish)));
        break;
      case event_type::usage:
        out.push_back("usage " + std::to_string(e.usage.input_tokens) + " " +
                      std::to_string(e.usage.output_tokens));
        break;
      case event_type::error:
        out.push_back("error " + std::to_string(e.http_status) + " " + std::string(e.error_code));
        break;
      case event_type::raw:
        out.push_back("raw");
        break;
    }
  }
  return out;
}

}  // namespace rc::server::test
