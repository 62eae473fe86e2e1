// The openai engine: endpoints and breakers, the model list, embeddings, and stream creation
// (the streams themselves are in openai_call.cc).
#include "openai_engine_impl.h"

#include "openai_call.h"

#include <algorithm>
#include <ctime>
#include <limits>

#include "core/log.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "server/openai_engine.h"
#include "server/shard.h"
#include "server/upstream_kinds.h"

namespace rc::server {

// ---- requests outside a stream ----

class openai_engine::json_call final : public response_sink {
 public:
  json_call(unique_function<void(const json_outcome&)> done) : done_(std::move(done)) {}
  request_handle handle;
  bool over = false;

  void on_response_head(const http1::response& head) override {
    out_.status = head.status;
    out_.got_response_bytes = true;
    out_.retry_after_ms = retry_after_of(head, std::time(nullptr));
  }
  void on_response_body(std::string_view bytes) override {
    // A model list or an embedding answer: bounded like a request body.
    if (body_.size() + bytes.size() > body_bytes_max) {
      handle.reset();  // the rest is not read
      return fail(client_error::protocol, "The upstream's answer is too large.");
    }
    body_.append(bytes);
  }
  void on_response_end() override { finish(); }
  void on_response_error(client_error kind, std::string_view message) override {
    fail(kind, message);
  }
  // Ends the call as "no endpoint" on a later turn (never inside call_json).
  void fail_later(reactor& loop) {
    later_.bind<json_call, &json_call::on_later>(this);
    loop_ = &loop;
    loop.arm_after_ms(later_, 0);
  }
  ~json_call() {
    if (loop_) loop_->cancel_timer(later_);
  }

 private:
  static constexpr size_t body_bytes_max = 64u << 20;
  void fail(client_error kind, std::string_view message) {
    out_.status = 0;
    out_.error = kind;
    message_.assign(message);
    finish();
  }
  void finish() {
    if (over) return;
    over = true;
    out_.message = message_;
    out_.body = body_;
    auto done = std::move(done_);
    done(out_);
  }
  void on_later() {
    out_.no_endpoint = true;
    fail(client_error::connect_failed, "every endpoint's circuit breaker is open");
  }
  unique_function<void(const json_outcome&)> done_;
  timer later_;
  reactor* loop_ = nullptr;
  json_outcome out_;
  std::string message_;
  std::string body_;
};

namespace {

pool_options pools_of(const upstream_config& cfg) {
  pool_options po;
  po.max_connections = cfg.connections_max == 0 ? UINT32_MAX : cfg.connections_max;
  po.max_idle = cfg.pool_idle_max;
  po.tls.verify = cfg.tls_verify;
  po.tls.ca_file = cfg.ca_file;
  return po;
}

// The client looks names up through the shard's resolver, whose cache every engine shares.
client_options shard_client_options(shard_server& shard) {
  client_options o;
  o.shared_resolver = &shard.names();
  return o;
}

}  // namespace

openai_engine::openai_engine(shard_server& shard, std::shared_ptr<const upstream_config> cfg)
    : shard_(shard),
      cfg_(std::move(cfg)),
      client_(shard.loop(), shard.sockets(), shard_client_options(shard)),
      endpoints_(client_, cfg_->endpoints, pools_of(*cfg_),
                 breaker_options{.failures_to_open = cfg_->breaker_failures,
                                 .cool_down_ms = cfg_->breaker_cooldown_ms}),
      retry_(retry_options{.retries_max = cfg_->retries_max,
                           .backoff_base_ms = cfg_->backoff_base_ms,
                           .backoff_cap_ms = cfg_->backoff_cap_ms,
                           .retry_after_cap_ms = cfg_->retry_after_cap_ms},
             shard.loop().now_ns() ^ (uint64_t{shard.id()} << 32)) {
  metrics_index_ = upstream_metrics_index(shard_.metrics().upstreams, cfg_->name);
  for (const url::endpoint& u : cfg_->endpoints) {
    labels_.push_back(url::to_string(u));
    metrics().endpoint(labels_.back());
  }
  if (!cfg_->api_key.empty()) headers_.emplace_back("authorization", "Bearer " + cfg_->api_key);
  headers_.emplace_back("user-agent", "ringcast");
  for (const auto& h : cfg_->headers) headers_.push_back(h);
  fetch_models();
}

openai_engine::~openai_engine() {
  for (auto& c : calls_) c->handle.reset();
}

std::shared_ptr<engine> make_openai_engine(shard_server& shard,
                                           std::shared_ptr<const upstream_config> cfg) {
  return std::make_shared<openai_engine>(shard, std::move(cfg));
}

upstream_failure openai_engine::transport_failure(client_error kind, std::string_view detail) {
  uint64_t now = shard_.loop().now_ms();
  if (!detail.empty() && now >= failure_logged_ms_ + 1000) {
    failure_logged_ms_ = now;
    RC_WARN("upstream %s: %.*s", cfg_->name.c_str(), static_cast<int>(detail.size()), detail.data());
  }
  return failure_from_transport(kind, cfg_->name, detail);
}

upstream_metrics& openai_engine::metrics() { return shard_.metrics().upstreams[metrics_index_]; }

std::string openai_engine::upstream_model(std::string_view model) const {
  if (auto m = shard_.routes().find(model); m && !m->upstream_model.empty())
    return std::string(m->upstream_model);
  return std::string(model);
}

uint64_t openai_engine::completion_tokens_max(std::string_view model) const {
  if (auto m = shard_.routes().find(model); m && m->max_output_tokens) return *m->max_output_tokens;
  // The upstream enforces its own limit (and answers 400 with its own envelope).
  return std::numeric_limits<uint32_t>::max();
}

uint32_t openai_engine::embedding_dimensions(std::string_view) const {
  // The upstream knows its models' lengths; requests asking for more get its own 400.
  return 1u << 16;
}

bool openai_engine::ready() const {
  uint64_t now = shard_.loop().now_ms();
  auto& set = const_cast<endpoint_set&>(endpoints_);
  for (size_t i = 0; i < set.size(); ++i) {
    if (set.breaker(static_cast<int>(i)).available(now)) return true;
  }
  return false;
}

// ---- endpoints ----

int openai_engine::pick(int avoid) {
  int i = endpoints_.choose(shard_.loop().now_ms(), avoid);
  if (i >= 0) ++metrics().endpoint(endpoint_label(i)).requests;
  return i;
}

void openai_engine::update_gauges() {
  upstream_metrics& m = metrics();
  uint64_t now = shard_.loop().now_ms();
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    int k = static_cast<int>(i);
    upstream_endpoint_metrics& e = m.endpoint(labels_[i]);
    e.idle = endpoints_.pool(k).stats().idle;
    e.busy = endpoints_.pool(k).stats().busy;
    breaker_state state = endpoints_.breaker(k).state(now);
    e.breaker_open = state == breaker_state::open;
    e.breaker_half_open = state == breaker_state::half_open;
  }
}

// ---- calls outside a stream ----

void openai_engine::call_json(std::string target, std::string method, std::string body,
                              unique_function<void(const json_outcome&)> done) {
  std::erase_if(calls_, [](const std::unique_ptr<json_call>& c) { return c->over; });
  int ep = pick(-1);
  if (ep < 0) {
    // Every breaker is open: answer like an unreachable upstream, on a later turn.
    auto call = std::make_unique<json_call>(std::move(done));
    json_call* c = call.get();
    calls_.push_back(std::move(call));
    c->fail_later(shard_.loop());
    return;
  }
  http_request req;
  req.method = std::move(method);
  req.target = cfg_->endpoints[static_cast<size_t>(ep)].base_path + target;
  req.headers = headers_;
  req.headers.emplace_back("accept", "application/json");
  if (!body.empty()) {
    req.headers.emplace_back("content-type", "application/json");
    req.body = shared_buffer::copy_of(body);
  }
  req.timeouts = {.connect_ms = cfg_->connect_timeout_ms,
                  .first_byte_ms = cfg_->first_byte_timeout_ms,
                  .idle_ms = cfg_->idle_timeout_ms,
                  .total_ms = cfg_->total_timeout_ms};
  auto call = std::make_unique<json_call>(
      [this, ep, done = std::move(done)](const json_outcome& o) mutable {
        if (o.status != 0 && o.status < 500) {
          endpoints_.on_success(ep);
        } else {
          endpoints_.on_failure(ep, shard_.loop().now_ms());
        }
        update_gauges();
        done(o);
      });
  call->handle = client_.start(endpoints_.pool(ep), std::move(req), *call);
  calls_.push_back(std::move(call));
}

// GET {base}/models: the upstream's model names, for /v1/models when it is the fallback route.
void openai_engine::fetch_models() {
  models_retry_ms_ = shard_.loop().now_ms() + models_retry_interval_ms;
  call_json("/models", "GET", {}, [this](const json_outcome& o) {
    int status = o.status;
    std::string_view body = o.body;
    if (status != 200) {
      if (status != 0)
        RC_INFO("upstream %s: GET /models answered %d; its models are not listed", cfg_->name.c_str(), status);
      return;
    }
    json::parser p;
    json::parse_result r = p.parse(body);
    if (!r.ok() || !r.root.is_object()) return;
    json::value data = r.root.find("data");
    if (!data || !data.is_array()) return;
    models_.clear();
    for (json::value m : data.elements()) {
      json::value id = m.is_object() ? m.find("id") : json::value();
      if (id && id.is_string()) models_.emplace_back(id.get_string());
    }
  });
}

std::unique_ptr<engine_stream> openai_engine::generate(const generation_request& req,
                                                      engine_sink& sink) {
  // An upstream that was down at start-up gets its model list asked again, now and then.
  if (models_.empty() && shard_.loop().now_ms() >= models_retry_ms_) fetch_models();
  return std::make_unique<openai_call>(*this, req, sink);
}

void openai_engine::invoke_tool(std::string_view name, std::string_view,
                                unique_function<void(tool_result&&)> done) {
  refuse_builtin_tool(shard_, cfg_->name, name, std::move(done));
}

}  // namespace rc::server
