// Worker dialects: how ringcast talks to one kind of local worker process over JSON-RPC
// (docs/workers.md). The supervisor's worker (worker_process.cc) owns the process, its pipes,
// the framer and the parser; a dialect only knows the messages: how to shake hands, how to turn
// a generation_request into a call and the worker's answers into typed engine events, how to
// ping, how to cancel, and to which call a notification belongs.
//
// A call (worker_call) is one exchange on one worker: the handshake, a generation, an embedding.
// The worker routes to it the responses whose ids it expects (call_context::expect_response) and
// the notifications whose routing key it claimed (call_context::route_key). A generation call
// emits typed events (delta, tool_call, done per choice, then usage; or error), never `raw`,
// and never emits after an error or usage (engine.h's order). Worker failures are mapped with
// worker_errors.h.
//
// Two dialects: `ringcast` (ours, make_ringcast_dialect, worker_dialect_ringcast.cc) and
// `codex-app-server` (the Codex app server, make_codex_dialect, worker_dialect_codex.cc).
//
// Thread-safety: a dialect, its calls and their call_context belong to the shard that owns the
// worker; make_call copies what it needs from the request (which may live on another shard's
// stack only during the call).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_function.h"
#include "proto/jsonrpc.h"
#include "server/engine.h"
#include "server/upstreams.h"

namespace rc::server {

// What a call can do on its worker (implemented by the supervisor's worker).
class call_context {
 public:
  virtual uint64_t next_id() = 0;                    // a fresh JSON-RPC id on this worker
  virtual void expect_response(uint64_t id) = 0;     // route the response with this id here
  virtual void route_key(std::string_view key) = 0;  // route notifications with this key here
  virtual void send(std::string_view json) = 0;      // one message (the worker frames it)
  virtual bool emit(const engine_event& e) = 0;      // to the client; false: it is paused (the
                                                     // worker buffers; keep going)
  virtual void finish() = 0;  // the call is over (after it emitted usage or error, or after a
                              // cancel was answered); ids and keys are forgotten
  // Handshake calls only: the worker is ready (models it announced, may be empty) or failed.
  virtual void handshake_done(bool ok, std::string_view reason,
                              std::vector<std::string> models) = 0;

 protected:
  ~call_context() = default;
};

class worker_call {
 public:
  virtual ~worker_call() = default;
  virtual void start(call_context& ctx) = 0;  // writes its request(s)
  virtual void on_message(call_context& ctx, const jsonrpc::message& m) = 0;
  virtual void cancel(call_context& ctx) = 0;  // client left / deadline: send the dialect's
                                               // cancel; emit nothing more; finish() when done
};

struct call_params {
  const generation_request* request = nullptr;  // valid during make_call only: copy what you need
  std::string_view upstream_model;              // the name the worker knows the model by
  uint64_t deadline_unix_ms = 0;                // 0: none
  std::string_view request_id;                  // ringcast's request id (x-request-id or minted)
};

class worker_dialect {
 public:
  virtual ~worker_dialect() = default;
  virtual jsonrpc::framing framing() const = 0;
  virtual bool with_jsonrpc_member() const = 0;  // codex: false
  virtual std::unique_ptr<worker_call> make_handshake(std::string_view upstream,
                                                      uint32_t worker_index) = 0;
  // Liveness: a request with this id; any response to it (result or error) proves life.
  virtual void write_ping(std::string& json_out, uint64_t id) = 0;
  // The routing key of a notification (or of a server→client request, e.g. codex approvals);
  // "" when it belongs to no call (logged at debug and dropped).
  virtual std::string_view routing_key(const jsonrpc::message& m, std::string& scratch) = 0;
  // A request from the worker that no call claims (codex approval requests): write the answer.
  virtual void answer_unrouted_request(const jsonrpc::message& m, std::string& json_out) = 0;
  virtual std::unique_ptr<worker_call> make_call(const call_params& p) = 0;
  // Embeddings; nullptr when the dialect has none (the engine answers 400 unsupported).
  virtual std::unique_ptr<worker_call> make_embed_call(
      const embedding_request& r, std::string_view upstream_model,
      unique_function<void(embedding_result&&)> done) = 0;
};

std::unique_ptr<worker_dialect> make_ringcast_dialect(
    std::shared_ptr<const upstream_config> cfg);  // jsonrpc
std::unique_ptr<worker_dialect> make_codex_dialect(
    std::shared_ptr<const upstream_config> cfg);  // codex

}  // namespace rc::server
