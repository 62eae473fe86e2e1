// The responses-ws engine's parts, shared by its source files (responses_ws_engine.cc: runs and
// the store; responses_ws_remote.cc: follow-ups whose session lives on another shard). Not for
// use elsewhere: the engine's interface is responses_ws_engine.h.
//
// Thread-safety: everything here belongs to one shard.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "proto/json_reader.h"
#include "server/engine.h"
#include "server/owned_event.h"
#include "server/responses_ws_engine.h"
#include "server/http_client.h"
#include "server/session_store.h"
#include "server/upstream_metrics.h"
#include "server/ws_upstream.h"

namespace rc::server {

class ws_engine final : public engine {
 public:
  ws_engine(shard_server& shard, responses_ws_options options);
  ~ws_engine() override;

  // This shard's engine of the upstream `name`, or null.
  static ws_engine* on_this_shard(const std::string& name);

  std::string_view name() const override { return options_.name; }
  const std::vector<std::string>& models() const override { return options_.models; }
  uint64_t completion_tokens_max(std::string_view model) const override;
  uint32_t embedding_dimensions(std::string_view) const override { return 0; }
  bool ready() const override { return true; }
  bool starts_lazily() const override { return true; }
  bool keeps_state() const override { return options_.stateful; }
  std::unique_ptr<engine_stream> generate(const generation_request& req,
                                          engine_sink& sink) override;
  void embed(const embedding_request& req,
             unique_function<void(embedding_result&&)> done) override;
  void invoke_tool(std::string_view name, std::string_view arguments_json,
                   unique_function<void(tool_result&&)> done) override;

  // Runs `req` on this node: on this shard, or on the shard holding its session (generate without
  // the cluster's node routing, remote_node.h).
  std::unique_ptr<engine_stream> generate_here(const generation_request& req, engine_sink& sink);
  // Runs `req` on this shard (its session, if a follow-up, must be here).
  std::unique_ptr<engine_stream> run_here(const generation_request& req, engine_sink& sink);

  shard_server& shard() { return shard_; }
  json::parser& parser() { return parser_; }
  session_store& store() { return store_; }
  const responses_ws_options& options() const { return options_; }
  std::string upstream_model(const std::string& model) const;
  std::unique_ptr<ws_upstream> connect(ws_upstream_handler* h);
  // The upstream's series of the shared upstream metrics (upstream_metrics.h).
  upstream_metrics& metrics();
  const std::string& endpoint_label() const { return endpoint_label_; }

  owned_event not_found(const std::string& id) const;
  owned_event in_progress(const std::string& id) const;
  owned_event no_capacity() const;

 private:
  shard_server& shard_;
  responses_ws_options options_;
  std::unique_ptr<http_client> client_;  // before the store: retained sockets come from it
  client_pool* pool_ = nullptr;
  session_store store_;
  json::parser parser_;
  ws_target target_;
  size_t metrics_index_ = 0;
  std::string endpoint_label_;
};

// A follow-up whose session lives on shard `home`: runs `req` there on the engine of upstream
// `upstream` and brings its events back to `sink` on this shard (responses_ws_remote.cc).
std::unique_ptr<engine_stream> start_remote(shard_server& shard, const std::string& upstream,
                                            unsigned home, const generation_request& req,
                                            engine_sink& sink);

}  // namespace rc::server
