// The openai engine's embeddings: POST {base}/embeddings with attempts and retries (the retry
// policy and breakers the streams use), the answer checked and decoded, failures mapped the way
// a generation's are (openai_failure.h). Runs on the engine's shard only.
#include <algorithm>

#include "openai_engine_impl.h"
#include "openai_failure.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// Holds an engine while a call outside a stream waits on it (a reload may replace the engine
// meanwhile), and lets it go on a later turn: never destroyed inside one of its own callbacks.
class engine_hold {
 public:
  engine_hold(std::shared_ptr<engine> e, reactor& loop) : engine_(std::move(e)), loop_(&loop) {}
  engine_hold(engine_hold&& o) noexcept : engine_(std::move(o.engine_)), loop_(o.loop_) {}
  engine_hold& operator=(engine_hold&&) = delete;
  ~engine_hold() {
    if (engine_) loop_->post(loop_->shard_id(), [e = std::move(engine_)]() mutable { e.reset(); });
  }

 private:
  std::shared_ptr<engine> engine_;
  reactor* loop_;
};

}  // namespace

struct openai_engine::embed_call {
  embed_call(openai_engine& e, engine_hold h) : engine(e), hold(std::move(h)) {}
  openai_engine& engine;
  engine_hold hold;
  std::string body;
  size_t expected = 0;
  uint32_t attempts = 0;
  uint64_t deadline_ms = 0;
  timer retry;
  unique_function<void(embedding_result&&)> done;
};

void openai_engine::embed(const embedding_request& req,
                          unique_function<void(embedding_result&&)> done) {
  byte_buffer body;
  json::writer w(body);
  w.begin_object();
  w.string_member("model", upstream_model(req.model));
  w.key("input");
  w.begin_array();
  for (const std::string& t : req.texts) w.string(t);
  w.end_array();
  if (req.dimensions) w.uint64_member("dimensions", *req.dimensions);
  w.string_member("encoding_format", "float");
  w.end_object();
  auto call = std::make_unique<embed_call>(*this, engine_hold(shard_.share_engine(*this), shard_.loop()));
  call->body.assign(body.view());
  call->expected = req.texts.size();
  call->done = std::move(done);
  uint32_t window = cfg_->total_timeout_ms ? cfg_->total_timeout_ms : cfg_->first_byte_timeout_ms;
  call->deadline_ms = shard_.loop().now_ms() + window;
  embed_attempt(std::move(call));
}

void openai_engine::embed_attempt(std::unique_ptr<embed_call> call) {
  ++call->attempts;
  ++metrics().requests;
  if (call->attempts > 1) ++metrics().retries;
  std::string body = call->body;
  call_json("/embeddings", "POST", std::move(body),
            [this, call = std::move(call)](const json_outcome& o) mutable {
              embed_answered(std::move(call), o);
            });
}

void openai_engine::embed_answered(std::unique_ptr<embed_call> call, const json_outcome& o) {
  embedding_result out;
  auto fail = [&](upstream_failure f) {
    out = {};
    out.error_code = std::move(f.code);
    out.error_message = std::move(f.message);
    out.http_status = f.http_status;
    out.error_type = std::move(f.type);
    out.error_param = std::move(f.param);
    out.retry_after_ms = f.retry_after_ms;
    out.envelope = std::move(f.envelope);
    // An upstream envelope may carry "code": null; the fronts tell a failure by its code.
    if (out.error_code.empty()) out.error_code = out.error_type.empty() ? "upstream_error" : out.error_type;
    call->done(std::move(out));
  };
  if (o.status < 200 || o.status >= 300) {
    upstream_failure f;
    attempt_result r;
    r.got_response_bytes = o.got_response_bytes;
    r.retry_after_ms = o.retry_after_ms;
    if (o.no_endpoint) {
      count_error(upstream_error_kind::no_endpoint);
      f = failure_from_transport(client_error::connect_failed, cfg_->name, o.message);
      uint64_t wait = endpoints_.retry_after_ms(shard_.loop().now_ms());
      f.retry_after_ms = static_cast<uint32_t>(std::clamp<uint64_t>(wait, 1000, UINT32_MAX));
      return fail(std::move(f));
    }
    if (o.status == 0) {
      count_error(error_kind_of(o.error));
      f = transport_failure(o.error, o.message);
      r.error = o.error;
    } else {
      count_error(error_kind_of_status(o.status));
      std::optional<uint32_t> wait;
      if (o.retry_after_ms) wait = static_cast<uint32_t>(std::min<uint64_t>(*o.retry_after_ms, UINT32_MAX));
      f = failure_from_status(o.status, o.body, wait);
      r.status = o.status;
    }
    retry_decision d = retry_.decide(r, call->attempts, shard_.loop().now_ms(), call->deadline_ms);
    if (!d.retry) return fail(std::move(f));
    // The call owns itself while the timer waits; the timer hands it to the next attempt.
    embed_call* c = call.release();
    c->retry.set_callback(
        [](timer&, void* ctx) {
          auto* self = static_cast<embed_call*>(ctx);
          self->engine.embed_attempt(std::unique_ptr<embed_call>(self));
        },
        c);
    shard_.loop().arm_after_ms(c->retry, d.delay_ms);
    return;
  }
  json::parser p;
  json::parse_result r = p.parse(o.body);
  json::value data = r.ok() && r.root.is_object() ? r.root.find("data") : json::value();
  bool ok = data && data.is_array() && data.size() == call->expected;
  if (ok) {
    for (json::value row : data.elements()) {
      json::value v = row.is_object() ? row.find("embedding") : json::value();
      if (!v || !v.is_array() || (out.dimensions && v.size() != out.dimensions)) {
        ok = false;
        break;
      }
      out.dimensions = static_cast<uint32_t>(v.size());
      for (json::value x : v.elements())
        out.vectors.push_back(x.is_number() ? static_cast<float>(x.get_double()) : 0.0f);
    }
  }
  if (!ok) {
    count_error(upstream_error_kind::protocol);
    return fail(protocol_failure("The upstream's embedding answer is malformed."));
  }
  json::value usage = r.root.find("usage");
  json::value prompt = usage && usage.is_object() ? usage.find("prompt_tokens") : json::value();
  if (prompt && prompt.kind() == json::kind::int64) out.prompt_tokens = uint64_t(prompt.get_int64());
  call->done(std::move(out));
}

}  // namespace rc::server
