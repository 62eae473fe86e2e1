// Private to the openai engine (openai_engine.cc, openai_call*.cc): the engine class, and what a
// stream needs from it (endpoints and breakers, the retry policy, the pools, metrics).
//
// Thread-safety: everything belongs to the engine's shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/json_reader.h"
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
  // Copies pool gauges and breaker states into the shard's metrics.
  void update_gauges();

  // Request headers every call sends (authorization, extra headers), in order.
  const std::vector<std::pair<std::string, std::string>>& base_headers() const { return headers_; }

  // A JSON request to `target` (relative to the endpoint's base path) outside any stream: the
  // model list, embeddings. `done` gets the status (0 on a transport error) and the body.
  void call_json(std::string target, std::string method, std::string body,
                 unique_function<void(int status, std::string_view body)> done);

 private:
  class json_call;
  void fetch_models();

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
  std::vector<std::unique_ptr<json_call>> calls_;
};

}  // namespace rc::server
