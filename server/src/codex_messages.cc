// The codex-app-server dialect's messages: what ringcast writes to `codex app-server`
// (thread/start, thread/resume, thread/inject_items, turn/start, turn/interrupt, declines of its
// approval requests) and how a failed turn's error maps onto ringcast's worker errors. Shapes
// follow the pinned Codex's `app-server generate-ts` output (tests/node: @openai/codex 0.171.0).
//
// Thread-safety: pure functions (a thread-local JSON parser).
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "worker_dialect_codex.h"

namespace rc::server::codex {
namespace {

json::parser& scratch_parser() {
  thread_local json::parser p;
  return p;
}

bool is_instruction(openai::message_role r) {
  return r == openai::message_role::system || r == openai::message_role::developer;
}

// thread_params as an object (invalid when absent or not an object: config validates it).
json::value extra_params(const settings& s) {
  if (s.thread_params.empty()) return {};
  json::parse_result p = scratch_parser().parse(s.thread_params);
  return p.ok() && p.root.is_object() ? p.root : json::value();
}

bool has(json::value obj, std::string_view key) { return obj && obj.find(key); }

std::string joined_instructions(json::value extra, std::string_view instructions) {
  std::string out;
  if (extra) {
    json::value v = extra.find("developerInstructions");
    if (v && v.is_string()) out = v.get_string();
  }
  if (!instructions.empty()) {
    if (!out.empty()) out += "\n\n";
    out += instructions;
  }
  return out;
}

std::string to_string(const byte_buffer& b) { return std::string(b.view()); }

}  // namespace

std::string instructions_of(const std::vector<turn>& conversation) {
  std::string out;
  for (const turn& t : conversation) {
    if (!is_instruction(t.role) || t.text.empty()) continue;
    if (!out.empty()) out += "\n\n";
    out += t.text;
  }
  return out;
}

std::vector<turn> dialogue_of(const std::vector<turn>& conversation) {
  std::vector<turn> out;
  for (const turn& t : conversation)
    if (!is_instruction(t.role)) out.push_back(t);
  return out;
}

size_t input_turns(const std::vector<turn>& dialogue) {
  size_t n = 0;
  while (n < dialogue.size() && dialogue[dialogue.size() - 1 - n].role == openai::message_role::user)
    ++n;
  return n == 0 && !dialogue.empty() ? 1 : n;
}

std::string thread_start_params(const settings& s, std::string_view model,
                                std::string_view instructions, bool ephemeral) {
  json::value extra = extra_params(s);
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("model", model);
  if (!has(extra, "approvalPolicy")) w.string_member("approvalPolicy", "never");
  if (!has(extra, "sandbox")) w.string_member("sandbox", "read-only");
  w.boolean_member("ephemeral", ephemeral);
  std::string dev = joined_instructions(extra, instructions);
  if (!dev.empty()) w.string_member("developerInstructions", dev);
  if (extra) {
    for (json::member m : extra.members()) {
      if (m.key == "model" || m.key == "developerInstructions" || m.key == "ephemeral") continue;
      w.raw_member(m.key, m.value.to_json());
    }
  }
  w.end_object();
  return to_string(out);
}

std::string thread_resume_params(const settings& s, std::string_view thread_id,
                                 std::string_view model, std::string_view instructions) {
  // The overrides thread/resume takes (ThreadResumeParams); other thread_params keys only
  // apply when a thread starts.
  static constexpr std::string_view resumable[] = {
      "modelProvider", "serviceTier", "cwd",         "approvalPolicy", "approvalsReviewer",
      "sandbox",       "config",      "baseInstructions", "personality"};
  json::value extra = extra_params(s);
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("threadId", thread_id);
  w.string_member("model", model);
  if (!has(extra, "approvalPolicy")) w.string_member("approvalPolicy", "never");
  if (!has(extra, "sandbox")) w.string_member("sandbox", "read-only");
  std::string dev = joined_instructions(extra, instructions);
  if (!dev.empty()) w.string_member("developerInstructions", dev);
  w.boolean_member("excludeTurns", true);
  if (extra) {
    for (json::member m : extra.members()) {
      for (std::string_view k : resumable) {
        if (m.key == k) {
          w.raw_member(m.key, m.value.to_json());
          break;
        }
      }
    }
  }
  w.end_object();
  return to_string(out);
}

std::string inject_items_params(std::string_view thread_id, const std::vector<turn>& dialogue,
                                size_t from, size_t to) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("threadId", thread_id);
  w.key("items");
  w.begin_array();
  for (size_t i = from; i < to && i < dialogue.size(); ++i) {
    // Tool results were folded into text by the fronts; codex sees them as user-side text.
    bool assistant = dialogue[i].role == openai::message_role::assistant;
    w.begin_object();
    w.string_member("type", "message");
    w.string_member("role", assistant ? "assistant" : "user");
    w.key("content");
    w.begin_array();
    w.begin_object();
    w.string_member("type", assistant ? "output_text" : "input_text");
    w.string_member("text", dialogue[i].text);
    w.end_object();
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return to_string(out);
}

std::string turn_start_params(std::string_view thread_id, const std::vector<turn>& dialogue,
                              size_t from) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("threadId", thread_id);
  w.key("input");
  w.begin_array();
  for (size_t i = from; i < dialogue.size(); ++i) {
    w.begin_object();
    w.string_member("type", "text");
    w.string_member("text", dialogue[i].text);
    w.key("text_elements");
    w.begin_array();
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return to_string(out);
}

std::string thread_only_params(std::string_view thread_id) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("threadId", thread_id);
  w.end_object();
  return to_string(out);
}

std::string interrupt_params(std::string_view thread_id, std::string_view turn_id) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("threadId", thread_id);
  w.string_member("turnId", turn_id);
  w.end_object();
  return to_string(out);
}

void write_decline(const jsonrpc::message& m, std::string& json_out) {
  std::string_view method = m.method;
  std::string_view result;
  if (method == "item/commandExecution/requestApproval" ||
      method == "item/fileChange/requestApproval") {
    result = R"({"decision":"decline"})";
  } else if (method == "execCommandApproval" || method == "applyPatchApproval") {
    result = R"x({"decision":{"denied":{"rejection":"declined by ringcast (no one to approve)"}}})x";
  } else if (method == "mcpServer/elicitation/request") {
    result = R"({"action":"decline","content":null,"_meta":null})";
  } else if (method == "item/tool/call") {
    result = R"({"contentItems":[],"success":false})";
  }
  if (!result.empty()) {
    jsonrpc::write_result(json_out, m.id, result, false);
  } else {
    // No way to decline (user input, permission grants, auth refresh, attestation): refuse.
    std::string message = "ringcast does not answer ";
    message += method;
    jsonrpc::write_error(json_out, m.id, -32601, message, {}, false);
  }
}

worker_failure failure_from_turn_error(std::string_view turn_error_json) {
  std::string message = "the codex turn failed";
  std::string info;
  int64_t http_status = 0;
  json::parse_result p = scratch_parser().parse(turn_error_json.empty() ? "{}" : turn_error_json);
  if (p.ok() && p.root.is_object()) {
    json::value msg = p.root.find("message");
    if (msg && msg.is_string() && !msg.get_string().empty()) message = msg.get_string();
    json::value ci = p.root.find("codexErrorInfo");
    if (ci && ci.is_string()) {
      info = ci.get_string();
    } else if (ci && ci.is_object()) {
      for (json::member m : ci.members()) {  // {"httpConnectionFailed":{"httpStatusCode":503}}
        info = m.key;
        json::value st = m.value.is_object() ? m.value.find("httpStatusCode") : json::value();
        if (st && st.kind() == json::kind::int64) http_status = st.get_int64();
        break;
      }
    }
  }
  if (info == "modelNotFound") return failure_from_rpc_error(-32004, message, {});
  if (info == "serverOverloaded" || info == "rateLimitExceeded" || info == "usageLimitExceeded" ||
      http_status == 429 || http_status == 503)
    return failure_from_rpc_error(-32001, message, {});
  if (info == "contextWindowExceeded")
    return failure_from_rpc_error(-32602, message, R"({"code":"context_length_exceeded"})");
  if (info == "badRequest") return failure_from_rpc_error(-32602, message, {});
  return failure_from_rpc_error(-32603, message, {});
}

}  // namespace rc::server::codex
