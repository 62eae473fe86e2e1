// The `ringcast` worker dialect (worker_dialect.h; the wire format is docs/workers.md): the
// handshake (initialize → protocol_version 1 → initialized), pings, the routing of generate/*
// notifications by params.id, the embed call, and the generate params encoder. The generate
// call itself is worker_ringcast_generate.cc.
#include <cmath>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_splice.h"
#include "proto/json_writer.h"
#include "proto/jsonrpc.h"
#include "server/worker_errors.h"
#include "worker_ringcast.h"

namespace rc::server {

namespace ringcast_wire {

json::parser& wire_parser() {
  // Workers' messages are bounded by max_line_bytes before they get here.
  thread_local json::parser p(json::parse_limits{.document_bytes_max = size_t{1} << 32,
                                                 .depth_max = jsonrpc::parser::depth_max});
  return p;
}

json::value parse_object(std::string_view text) {
  if (text.empty()) return {};
  json::parse_result r = wire_parser().parse(text);
  if (!r.ok() || !r.root.is_object()) return {};
  return r.root;
}

std::optional<uint64_t> uint_member(json::value obj, std::string_view key, bool& bad) {
  json::value v = obj.find(key);
  bad = false;
  if (!v) return std::nullopt;
  if (v.kind() == json::kind::uint64) return v.get_uint64();
  if (v.kind() == json::kind::int64 && v.get_int64() >= 0) {
    return static_cast<uint64_t>(v.get_int64());
  }
  bad = true;
  return std::nullopt;
}

}  // namespace ringcast_wire

namespace {

using namespace ringcast_wire;

jsonrpc::framing framing_of(const upstream_config& c) {
  return c.framing == "content-length" ? jsonrpc::framing::content_length
                                       : jsonrpc::framing::lines;
}

class handshake_call final : public worker_call {
 public:
  handshake_call(std::string_view upstream, uint32_t index) : upstream_(upstream), index_(index) {}

  void start(call_context& ctx) override {
    id_ = ctx.next_id();
    ctx.expect_response(id_);
    byte_buffer b;
    json::writer w(b);
    w.begin_object();
    w.int64_member("protocol_version", protocol_version);
    w.key("client");
    w.begin_object();
    w.string_member("name", "ringcast");
    w.string_member("version", RINGCAST_VERSION_STRING);
    w.end_object();
    w.key("worker");
    w.begin_object();
    w.string_member("upstream", upstream_);
    w.uint64_member("index", index_);
    w.end_object();
    w.key("capabilities");
    w.begin_object();
    w.key("cancel");
    w.boolean(true);
    w.key("ping");
    w.boolean(true);
    w.end_object();
    w.end_object();
    std::string out;
    jsonrpc::write_request(out, id_, "initialize", b.view());
    ctx.send(out);
  }

  void on_message(call_context& ctx, const jsonrpc::message& m) override {
    if (over_) return;
    if (m.type == jsonrpc::kind::error) {
      return fail(ctx, "initialize failed: " + std::string(m.error_message) + " (" +
                           std::to_string(m.error_code) + ")");
    }
    if (m.type != jsonrpc::kind::response) return;
    json::value r = parse_object(m.result);
    if (!r) return fail(ctx, "the initialize result is not an object");
    json::value v = r.find("protocol_version");
    if (!v || v.kind() != json::kind::int64 || v.get_int64() != protocol_version) {
      return fail(ctx, "the worker speaks protocol_version " + (v ? v.to_json() : "(none)") +
                           ", ringcast speaks 1");
    }
    std::vector<std::string> models;
    json::value list = r.find("models");
    if (list && !list.is_null()) {
      if (!list.is_array()) return fail(ctx, "models is not an array of strings");
      for (json::value name : list.elements()) {
        if (!name.is_string() || name.get_string().empty()) {
          return fail(ctx, "models is not an array of strings");
        }
        models.emplace_back(name.get_string());
      }
    }
    std::string out;
    jsonrpc::write_notification(out, "initialized", "{}");
    ctx.send(out);
    over_ = true;
    ctx.handshake_done(true, "", std::move(models));
    ctx.finish();
  }

  void cancel(call_context& ctx) override {
    if (over_) return;
    over_ = true;
    ctx.finish();
  }

 private:
  void fail(call_context& ctx, std::string reason) {
    over_ = true;
    ctx.handshake_done(false, reason, {});
    ctx.finish();
  }

  std::string upstream_;
  uint32_t index_;
  uint64_t id_ = 0;
  bool over_ = false;
};

// An `embed` request; its result becomes the embedding_result. After cancel() (the request's
// deadline passed), `done` is never called and the worker gets a `cancel` for the embed.
class embed_call final : public worker_call {
 public:
  embed_call(std::string params, size_t texts, unique_function<void(embedding_result&&)> done)
      : params_(std::move(params)), texts_(texts), done_(std::move(done)) {}

  void start(call_context& ctx) override {
    id_ = ctx.next_id();
    ctx.expect_response(id_);
    std::string out;
    // The engine's embed has no request id of its own: the worker sees one per call.
    std::string params =
        "{\"request_id\":\"embed-" + std::to_string(id_) + "\"," + params_.substr(1);
    jsonrpc::write_request(out, id_, "embed", params);
    params_ = std::string();
    ctx.send(out);
  }

  void on_message(call_context& ctx, const jsonrpc::message& m) override {
    if (over_ || m.type == jsonrpc::kind::notification || m.type == jsonrpc::kind::request) return;
    over_ = true;
    embedding_result res;
    if (m.type == jsonrpc::kind::error) {
      fail(res, failure_from_rpc_error(m.error_code, m.error_message, m.error_data));
    } else if (std::string why = decode(m.result, res); !why.empty()) {
      fail(res, worker_failure_of("worker_protocol_error",
                                  "The worker sent an invalid embed result: " + why + "."));
    }
    auto done = std::move(done_);
    if (!cancelled_) done(std::move(res));
    ctx.finish();
  }

  void cancel(call_context& ctx) override {
    if (over_ || cancelled_) return;
    cancelled_ = true;
    std::string params = "{\"id\":" + std::to_string(id_) + "}", out;
    jsonrpc::write_notification(out, "cancel", params);
    ctx.send(out);
  }

 private:
  static void fail(embedding_result& res, worker_failure f) {
    res = embedding_result{};
    res.error_code = std::move(f.code);
    res.error_message = std::move(f.message);
    res.http_status = f.http_status;
    res.error_type = std::move(f.type);
    res.error_param = std::move(f.param);
    res.retry_after_ms = f.retry_after_ms;
  }

  // "" when `text` is a valid result for texts_ inputs.
  std::string decode(std::string_view text, embedding_result& res) const {
    json::value r = parse_object(text);
    if (!r) return "the result is not an object";
    json::value data = r.find("data");
    if (!data || !data.is_array() || data.size() != texts_) {
      return "data is not an array of one vector per input";
    }
    for (json::value row : data.elements()) {
      if (!row.is_array() || row.size() == 0 ||
          (res.dimensions != 0 && row.size() != res.dimensions)) {
        return "the vectors are not non-empty arrays of one length";
      }
      res.dimensions = static_cast<uint32_t>(row.size());
      for (json::value x : row.elements()) {
        if (!x.is_number() || !std::isfinite(x.get_double())) return "a vector holds a non-number";
        res.vectors.push_back(static_cast<float>(x.get_double()));
      }
    }
    bool bad = false;
    std::optional<uint64_t> tokens = uint_member(r, "prompt_tokens", bad);
    if (bad) return "prompt_tokens is not a non-negative integer";
    res.prompt_tokens = tokens.value_or(0);
    return {};
  }

  std::string params_;
  size_t texts_;
  unique_function<void(embedding_result&&)> done_;
  uint64_t id_ = 0;
  bool over_ = false, cancelled_ = false;
};

class ringcast_dialect final : public worker_dialect {
 public:
  explicit ringcast_dialect(std::shared_ptr<const upstream_config> cfg)
      : cfg_(std::move(cfg)), framing_(framing_of(*cfg_)) {}

  jsonrpc::framing framing() const override { return framing_; }
  bool with_jsonrpc_member() const override { return true; }

  std::unique_ptr<worker_call> make_handshake(std::string_view upstream,
                                              uint32_t worker_index) override {
    return std::make_unique<handshake_call>(upstream, worker_index);
  }

  void write_ping(std::string& json_out, uint64_t id) override {
    jsonrpc::write_request(json_out, id, "ping", "{}");
  }

  // A notification's params.id, when it is a non-negative integer: the decimal text the call
  // registered. Requests from the worker belong to no call (the dialect has none: -32601).
  std::string_view routing_key(const jsonrpc::message& m, std::string&) override {
    if (m.type != jsonrpc::kind::notification || m.params.empty()) return {};
    std::optional<std::string_view> id = json::find_member(m.params, "id");
    if (!id || id->empty() || id->find_first_not_of("0123456789") != std::string_view::npos) {
      return {};
    }
    return *id;
  }

  void answer_unrouted_request(const jsonrpc::message& m, std::string& json_out) override {
    jsonrpc::write_error(json_out, m.id, -32601,
                         "ringcast serves no method " + std::string(m.method) + " to workers");
  }

  std::unique_ptr<worker_call> make_call(const call_params& p) override {
    std::string params;
    encode_generate(p, params);
    return make_generate_call(std::move(params), p.request->choices);
  }

  std::unique_ptr<worker_call> make_embed_call(
      const embedding_request& r, std::string_view upstream_model,
      unique_function<void(embedding_result&&)> done) override {
    byte_buffer b;
    json::writer w(b);
    w.begin_object();
    w.string_member("model", upstream_model);
    w.key("input");
    w.begin_array();
    for (const std::string& t : r.texts) w.string(t);
    w.end_array();
    nullable_member(w, "dimensions", r.dimensions);
    w.end_object();
    return std::make_unique<embed_call>(std::string(b.view()), r.texts.size(), std::move(done));
  }

 private:
  std::shared_ptr<const upstream_config> cfg_;
  jsonrpc::framing framing_;
};

}  // namespace

std::unique_ptr<worker_dialect> make_ringcast_dialect(std::shared_ptr<const upstream_config> cfg) {
  return std::make_unique<ringcast_dialect>(std::move(cfg));
}

}  // namespace rc::server
