// Follow-ups whose retained session lives on another shard (responses_ws_engine.h) or, in
// cluster mode, on another node (remote_node.h): where a request runs.
//
// The request runs on the session's shard on that shard's engine of the same upstream, through
// generate_on_shard (remote_generation.h: flow control, cancel, mailbox refusals). The start
// function keeps the engine it ran on (a reload may replace it meanwhile, as for a generation) and
// the request for as long as the run lives. If the upstream is gone from that shard (a reload),
// nothing is retained: the follow-up gets previous_response_not_found.
#include "server/generation.h"
#include "server/remote_generation.h"
#include "server/remote_node.h"
#include "server/responses_ws_internal.h"
#include "server/shard.h"

namespace rc::server {

std::unique_ptr<engine_stream> start_remote(shard_server& shard, const std::string& upstream,
                                            unsigned home, const generation_request& req,
                                            engine_sink& sink) {
  remote_start start = [upstream, req, keep = std::shared_ptr<engine>()](
                           shard_server& here,
                           engine_sink& out) mutable -> std::unique_ptr<engine_stream> {
    ws_engine* e = ws_engine::on_this_shard(upstream);
    if (!e) {
      owned_event err = error_event("previous_response_not_found",
                                    "Previous response with id '" +
                                        req.original.previous_response_id + "' not found.",
                                    400, "invalid_request_error", "previous_response_id");
      out.on_event(err.view());
      return nullptr;
    }
    keep = here.share_engine(*e);
    return e->run_here(req, out);
  };
  return generate_on_shard(shard, home, std::move(start), sink);
}

std::unique_ptr<engine_stream> ws_engine::generate(const generation_request& req,
                                                   engine_sink& sink) {
  const std::string& previous = req.original.previous_response_id;
  bool follow_up = options_.stateful && req.original.api == api_kind::responses &&
                   !req.original.response_id.empty() && !previous.empty();
  if (follow_up && shard_.cluster_link()) {
    // The session may live on another node (remote_node.h); else as below, later.
    local_start local = [this, keep = shard_.share_engine(*this), req](engine_sink& s) {
      return generate_here(req, s);
    };
    return route_follow_up(shard_, options_.name, req, sink, std::move(local));
  }
  return generate_here(req, sink);
}

std::unique_ptr<engine_stream> ws_engine::generate_here(const generation_request& req,
                                                        engine_sink& sink) {
  const std::string& previous = req.original.previous_response_id;
  bool follow_up = options_.stateful && req.original.api == api_kind::responses &&
                   !req.original.response_id.empty() && !previous.empty();
  if (follow_up) {
    // An id not minted here is in no store: run_here answers not found.
    int home = shard_of_id(previous, "resp_", shard_.shard_count());
    if (home >= 0 && static_cast<unsigned>(home) != shard_.id())
      return start_remote(shard_, options_.name, static_cast<unsigned>(home), req, sink);
  }
  return run_here(req, sink);
}

}  // namespace rc::server
