// Private to the openai engine (openai_engine.cc, openai_call*.cc): the engine class, and what a
// stream needs from it (endpoints and breakers, the retry policy, the pools, metrics).
//
// Thread-safety: everything belongs to the engine's shard.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/json_reader.h"
#include "openai_failure.h"
#include "server/engine.h"
#include "server/http_client.h"
#include "server/retry_policy.h"
#include "server/upstream_endpoints.h"
#include "server/upstream_metrics.h"
#include "server/upstreams.h"

namespace rc::server {

class shard_server;

class openai_engine final : public engine {
 public:
  openai_engine(shard_server& shard, std::shared_ptr<const upstream_config> cfg);
  ~openai_engine() override;

  std::string_view name() const override { return cfg_->name; }
  const std::vector<std::string>& models() const override { return models_; }
  uint64_t completion_tokens_max(std::string_view model) const override;
  uint32_t embedding_dimensions(std::string_view model) const override;
  bool ready() const override;
  bool starts_lazily() const override { return true; }
  std::unique_ptr<engine_stream> generate(const generation_request& req,
                                          engine_sink& sink) override;
  void embed(const embedding_request& req,
             unique_function<void(embedding_result&&)> done) override;
  void invoke_tool(std::string_view name, std::string_view arguments_json,
                   unique_function<void(tool_result&&)> done) override;

  // ---- for the engine's streams ----
  shard_server& shard() { return shard_; }
  const upstream_config& config() const { return *cfg_; }
  http_client& client() { return client_; }
  // For the streams' upstream JSON; values live until the next parse (never held across calls).
  json::parser& parser() { return parser_; }
  // The name the upstream knows `model` by (the route's upstream_model, else `model`).
  std::string upstream_model(std::string_view model) const;

  // The endpoints (least-outstanding choice, breakers) and when to try again.
  endpoint_set& endpoints() { return endpoints_; }
  retry_policy& retries() { return retry_; }
  const std::string& endpoint_label(int i) const { return labels_[static_cast<size_t>(i)]; }
  // Picks an endpoint (admitted through its breaker), preferring one other than `avoid`; counts
  // the request. -1 when every breaker is open.
  int pick(int avoid);

  upstream_metrics& metrics();
  void count_error(upstream_error_kind k) { ++metrics().errors[static_cast<size_t>(k)]; }
  // The failure a client gets for a transport error; its detail goes to the log (once a second
  // at most per engine), not to the client.
  upstream_failure transport_failure(client_error kind, std::string_view detail);
  // Copies pool gauges and breaker states into the shard's metrics.
  void update_gauges();

  // Request headers every call sends (authorization, extra headers), in order.
  const std::vector<std::pair<std::string, std::string>>& base_headers() const { return headers_; }

  // How a JSON request outside any stream ended: the upstream's status (0: it did not answer;
  // `error` says why, with `message`, or `no_endpoint` when every breaker was open).
  struct json_outcome {
    int status = 0;
    client_error error = client_error::none;
    bool no_endpoint = false;
    bool got_response_bytes = false;
    std::optional<uint64_t> retry_after_ms;  // the answer's Retry-After
    std::string_view message;
    std::string_view body;
  };
  // A JSON request to `target` (relative to the endpoint's base path) outside any stream: the
  // model list, embeddings. `done` runs on a later turn, never inside call_json.
  void call_json(std::string target, std::string method, std::string body,
                 unique_function<void(const json_outcome&)> done);

 private:
  class json_call;
  struct embed_call;
  void fetch_models();
  // One attempt of an embedding request; retried per the retry policy (openai_engine_embed.cc).
  void embed_attempt(std::unique_ptr<embed_call> call);
  void embed_answered(std::unique_ptr<embed_call> call, const json_outcome& o);

  shard_server& shard_;
  std::shared_ptr<const upstream_config> cfg_;
  http_client client_;
  json::parser parser_;
  endpoint_set endpoints_;
  retry_policy retry_;
  std::vector<std::string> labels_;  // url::to_string of each endpoint
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<std::string> models_;
  // When the model list may be asked for again while it is empty.
  static constexpr uint64_t models_retry_interval_ms = 5000;
  uint64_t models_retry_ms_ = 0;
  size_t metrics_index_ = 0;
  uint64_t failure_logged_ms_ = 0;
  std::vector<std::unique_ptr<json_call>> calls_;
};

// The metrics' kind of a transport error, and of a non-2xx status.
upstream_error_kind error_kind_of(client_error e);
upstream_error_kind error_kind_of_status(int status);

}  // namespace rc::server
