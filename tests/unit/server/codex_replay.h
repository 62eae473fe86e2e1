// A replaying `codex app-server` for the codex-app-server dialect's unit tests: plays codex's
// side of a transcript recorded from the real app server (fixtures/codex/*.jsonl, written by
// tests/node/codex_record.mjs). When the call sends a request, the transcript's next request of
// the same method is matched and its recorded answer delivered under the call's id; codex's
// notifications are routed by the dialect's routing key, as the supervisor's worker does;
// requests of codex no call claims get the dialect's unrouted answer.
#pragma once

#include "../../../server/src/worker_dialect_codex.h"

#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "proto/jsonrpc.h"
#include "server/owned_event.h"

namespace rc::server::codex_test {


struct line {
  bool to_codex = false;
  std::string json;
};

inline std::vector<line> load(const std::string& name) {
  std::ifstream in(std::string(CODEX_FIXTURES) + "/" + name + ".jsonl");
  EXPECT_TRUE(in.good()) << name;
  std::vector<line> out;
  json::parser p;
  std::string text;
  while (std::getline(in, text)) {
    if (text.empty()) continue;
    json::parse_result r = p.parse(text);
    EXPECT_TRUE(r.ok()) << text;
    out.push_back({r.root.find("dir").get_string() == ">", r.root.find("msg").to_json()});
  }
  return out;
}

// Method and recorded id of a message (the parser's views die at the next parse: copied).
struct head {
  jsonrpc::kind type;
  std::string method;
  std::optional<uint64_t> id;
};
inline head head_of(const std::string& json) {
  jsonrpc::parser p;
  jsonrpc::message m;
  std::string err;
  EXPECT_TRUE(p.parse(json, m, err)) << err << ": " << json;
  return {m.type, std::string(m.method), m.id_number};
}

// codex's side, replayed; also the call_context the dialect's calls run against.
class replay final : public call_context {
 public:
  replay(worker_dialect& d, std::vector<line> script, std::string_view start_at = {})
      : dialect_(d), script_(std::move(script)) {
    if (!start_at.empty()) {  // skip what the recorder sent before the part under test
      while (pos_ < script_.size() &&
             !(script_[pos_].to_codex && head_of(script_[pos_].json).method == start_at))
        ++pos_;
    }
  }

  // Runs `call` until it finished or the transcript has nothing more for it.
  void run(worker_call& call) {
    call_ = &call;
    finished = false;
    call.start(*this);
    pump();
  }
  void pump() {
    for (int guard = 0; guard < 10000 && !finished; ++guard) {
      if (!outbox_.empty()) {
        std::string json = std::move(outbox_.front());
        outbox_.pop_front();
        answer(json);
        continue;
      }
      if (pos_ >= script_.size()) return;
      const line& l = script_[pos_];
      if (l.to_codex) {
        head h = head_of(l.json);
        if (h.type == jsonrpc::kind::request) return;  // wait until the call sends it
        ++pos_;  // the recorder's notifications and answers
        continue;
      }
      ++pos_;
      deliver(l.json);
    }
  }
  // For a call already started (and maybe cancelled) by the test.
  void run_after_start(worker_call& call) {
    call_ = &call;
    pump();
  }
  void cancel_call() {
    call_->cancel(*this);
  }

  // call_context
  uint64_t next_id() override { return ++last_id_; }
  void expect_response(uint64_t id) override { expected_.insert(id); }
  void route_key(std::string_view key) override { keys.insert(std::string(key)); }
  void send(std::string_view json) override {
    sent.emplace_back(json);
    outbox_.emplace_back(json);
    if (on_send) on_send(sent.back());
  }
  bool emit(const engine_event& e) override {
    EXPECT_FALSE(finished) << "emit after finish";
    events.emplace_back(e);
    if (on_emit) on_emit(events.back());
    return true;
  }
  void finish() override { finished = true; }
  void handshake_done(bool ok, std::string_view reason, std::vector<std::string>) override {
    handshake_ok = ok;
    handshake_reason = reason;
  }

  // What the call sent, by method (the params' raw JSON), and answers to codex's requests.
  std::vector<std::string> sent_params(std::string_view method) const {
    std::vector<std::string> out;
    for (const std::string& s : sent) {
      jsonrpc::parser p;
      jsonrpc::message m;
      std::string err;
      if (p.parse(s, m, err) && m.method == method) out.emplace_back(m.params);
    }
    return out;
  }
  std::string text() const {
    std::string t;
    for (const owned_event& e : events)
      if (e.base.type == event_type::delta) t += e.text;
    return t;
  }

  std::vector<std::string> sent;
  std::set<std::string> keys;
  std::vector<owned_event> events;
  std::function<void(const owned_event&)> on_emit;
  std::function<void(const std::string&)> on_send;
  bool finished = false, handshake_ok = false;
  std::string handshake_reason;
  std::map<std::string, std::string> synthetic;  // method → result for requests not recorded

 private:
  // The call sent `json`: a request is matched with the transcript's next one of its method.
  void answer(const std::string& json) {
    head h = head_of(json);
    if (h.type != jsonrpc::kind::request) return;
    for (size_t i = pos_; i < script_.size(); ++i) {
      if (!script_[i].to_codex) continue;
      head r = head_of(script_[i].json);
      if (r.type != jsonrpc::kind::request) continue;
      if (r.method != h.method) break;  // the recording went elsewhere
      // Deliver what codex said before, then remember the id mapping for its answer.
      for (size_t j = pos_; j < i; ++j)
        if (!script_[j].to_codex) deliver(script_[j].json);
      pos_ = i + 1;
      ids_[*r.id] = *h.id;
      return;
    }
    auto it = synthetic.find(h.method);
    ASSERT_NE(it, synthetic.end()) << "unexpected request: " << json;
    std::string out;
    jsonrpc::write_result(out, std::to_string(*h.id), it->second, false);
    deliver_raw(out);
  }
  void deliver(const std::string& recorded) {
    head h = head_of(recorded);
    if ((h.type == jsonrpc::kind::response || h.type == jsonrpc::kind::error) && h.id) {
      auto it = ids_.find(*h.id);
      if (it == ids_.end()) return;  // an answer to the recorder's own request
      // Rewrite the recorded id into the call's.
      jsonrpc::parser p;
      jsonrpc::message m;
      std::string err;
      p.parse(recorded, m, err);
      std::string id = std::to_string(it->second);
      std::string out;
      if (h.type == jsonrpc::kind::error) {
        jsonrpc::write_error(out, id, m.error_code, m.error_message, m.error_data, false);
      } else {
        jsonrpc::write_result(out, id, m.result, false);
      }
      return deliver_raw(out);
    }
    deliver_raw(recorded);
  }
  void deliver_raw(const std::string& json) {
    jsonrpc::parser p;
    jsonrpc::message m;
    std::string err;
    ASSERT_TRUE(p.parse(json, m, err)) << err;
    if (m.type == jsonrpc::kind::response || m.type == jsonrpc::kind::error) {
      if (!m.id_number || !expected_.count(*m.id_number)) return;
      expected_.erase(*m.id_number);
      if (!finished) call_->on_message(*this, m);
      return;
    }
    std::string scratch;
    std::string key(dialect_.routing_key(m, scratch));
    if (!key.empty() && keys.count(key) && !finished) {
      call_->on_message(*this, m);
    } else if (m.type == jsonrpc::kind::request) {
      std::string out;
      dialect_.answer_unrouted_request(m, out);
      sent.push_back(out);
    }
  }

  worker_dialect& dialect_;
  std::vector<line> script_;
  size_t pos_ = 0;
  worker_call* call_ = nullptr;
  uint64_t last_id_ = 100;
  std::set<uint64_t> expected_;
  std::map<uint64_t, uint64_t> ids_;  // recorded id → the call's id
  std::deque<std::string> outbox_;
};

inline generation_request conversation(std::vector<turn> turns) {
  generation_request r;
  r.model = "codex";
  r.conversation = std::move(turns);
  return r;
}

inline turn user(std::string t) { return {openai::message_role::user, std::move(t)}; }

inline std::unique_ptr<worker_call> call_for(worker_dialect& d, const generation_request& r) {
  call_params p;
  p.request = &r;
  p.upstream_model = "ringcast-mock";
  return d.make_call(p);
}

// The recorded agent message text of a transcript (item/completed of the agentMessage).
inline std::string recorded_text(const std::vector<line>& script, size_t nth = 0) {
  json::parser p;
  for (const line& l : script) {
    if (l.to_codex) continue;
    json::parse_result r = p.parse(l.json);
    json::value method = r.root.find("method");
    if (!method || method.get_string() != "item/completed") continue;
    json::value item = r.root.find("params").find("item");
    if (item.find("type").get_string() != "agentMessage") continue;
    if (nth-- == 0) return std::string(item.find("text").get_string());
  }
  return {};
}

inline const owned_event* last_event(const replay& w) {
  return w.events.empty() ? nullptr : &w.events.back();
}

}  // namespace rc::server::codex_test
