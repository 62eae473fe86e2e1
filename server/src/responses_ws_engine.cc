// The responses-ws engine: runs on upstream sockets, the store of retained sessions, and the
// engine registry that lets a follow-up find its session's shard (responses_ws_engine.h).
#include "server/responses_ws_engine.h"

#include <deque>

#include "proto/json_reader.h"
#include "server/generation.h"
#include "server/remote_node.h"
#include "server/responses_ws_events.h"
#include "server/responses_ws_internal.h"
#include "server/session_store.h"
#include "server/shard.h"
#include "server/ws_upstream.h"

namespace rc::server {
namespace {

thread_local std::unordered_map<std::string, ws_engine*> registry;

// A socket with what the upstream knows on it: the id of its last response. While it is idle in
// the store it is its socket's handler: a socket that fails (or speaks unasked) is evicted at
// once, so it neither holds a slot nor is handed to a follow-up.
struct ws_session final : retained_session, ws_upstream_handler {
  std::unique_ptr<ws_upstream> conn;
  std::string upstream_id;
  session_store* store = nullptr;  // while idle
  std::string key;                 // while idle
  bool dead = false;

  void on_open() override {}
  void on_text(std::string_view) override { die(); }
  void on_failure(ws_failure, std::string_view) override { die(); }

 private:
  void die() {
    dead = true;
    if (session_store* s = store) {
      store = nullptr;
      s->evict(key);  // destroys this session: nothing may follow
    }
  }
};

}  // namespace

// One response on one upstream socket. It is the engine_stream of a local request, or runs under
// a remote_stream's forwarder on the session's shard.
class ws_run final : public engine_stream, public ws_upstream_handler {
 public:
  ws_run(ws_engine& e, const generation_request& req, engine_sink& sink)
      : engine_(e),
        sink_(sink),
        translator_(translate_options{
            req.original.passthrough && req.original.api == api_kind::responses,
            req.original.stream || req.original.api != api_kind::responses, req.model,
            req.original.response_id, req.original.previous_response_id}) {
    kick_.bind<ws_run, &ws_run::drain>(this);
    silence_.bind<ws_run, &ws_run::on_silence>(this);
  }

  ~ws_run() override {
    engine_.shard().loop().cancel_timer(kick_);
    engine_.shard().loop().cancel_timer(silence_);
    // A socket closed while its reading is paused never finishes closing: resume it first.
    if (upstream_paused_ && session_ && session_->conn) session_->conn->resume();
    if (!finished_) fail_session();
  }

  // Starts: answers `early` if set, else sends the request on `session` (a fresh one if null).
  void start(const generation_request& req, std::unique_ptr<ws_session> session,
             std::string held_key, std::optional<owned_event> early) {
    held_key_ = std::move(held_key);
    starting_ = true;  // nothing reaches the sink from inside generate()
    struct end_start {
      ws_run* r;
      ~end_start() { r->starting_ = false; }
    } guard{this};
    if (early) {
      finished_ = true;
      queue_.push_back(std::move(*early));
      engine_.shard().loop().arm_after_us(kick_, 0);
      return;
    }
    new_key_ = req.original.response_id;
    watch(engine_.options().first_event_timeout_ms);
    started_ns_ = engine_.shard().loop().now_ns();
    upstream_metrics& m = engine_.metrics();
    ++m.requests;
    ++m.endpoint(engine_.endpoint_label()).requests;
    byte_buffer msg;
    build_response_create(engine_.parser(), req, engine_.upstream_model(req.model),
                          session ? session->upstream_id : std::string(), msg);
    request_ = std::string(msg.view());
    if (session) {
      session_ = std::move(session);
      session_->conn->set_handler(this);
      if (!session_->conn->send_text(request_)) fail(502, "upstream_unavailable", "the retained upstream socket is closed");
      return;
    }
    session_ = std::make_unique<ws_session>();
    session_->conn = engine_.connect(this);
  }

  void resume() override {
    paused_ = false;
    drain();
  }

  // ws_upstream_handler
  void on_open() override {
    if (!session_->conn->send_text(request_))
      fail(502, "upstream_unavailable", "the upstream socket closed");
  }
  void on_text(std::string_view message) override {
    if (finished_) return;
    if (!seen_event_)
      engine_.metrics().first_token.observe_us((engine_.shard().loop().now_ns() - started_ns_) / 1000);
    seen_event_ = true;
    watch(engine_.options().idle_timeout_ms);
    std::vector<owned_event> events;
    auto outcome = translator_.on_message(engine_.parser(), message, events);
    for (owned_event& e : events) queue_.push_back(std::move(e));
    switch (outcome) {
      case responses_ws_translator::outcome::more:
        break;
      case responses_ws_translator::outcome::completed:
        finish_well();
        break;
      case responses_ws_translator::outcome::failed:
        count_error(events.empty() || events.back().base.http_status / 100 != 4
                        ? upstream_error_kind::stream
                        : upstream_error_kind::http_4xx);
        finished_ = true;
        engine_.shard().loop().cancel_timer(silence_);
        fail_session();
        break;
      case responses_ws_translator::outcome::protocol_error:
        count_error(upstream_error_kind::stream);
        fail(502, "upstream_protocol_error", translator_.problem());
        return;
    }
    drain();
  }
  void on_failure(ws_failure kind, std::string_view detail) override {
    if (finished_) return;
    uint16_t status = kind == ws_failure::connect ? 503 : kind == ws_failure::timeout ? 504 : 502;
    count_error(kind == ws_failure::connect   ? upstream_error_kind::connect_failed
                : kind == ws_failure::timeout ? upstream_error_kind::timeout_first_byte
                : kind == ws_failure::closed  ? upstream_error_kind::reset
                                              : upstream_error_kind::protocol);
    std::string_view code = kind == ws_failure::connect   ? "upstream_unavailable"
                            : kind == ws_failure::timeout ? "upstream_timeout"
                            : kind == ws_failure::protocol || kind == ws_failure::handshake
                                ? "upstream_protocol_error"
                                : "upstream_connection_closed";
    fail(status, code, detail);
  }

 private:
  // (Re)arms the upstream's silence deadline (0: none).
  void watch(uint64_t ms) {
    if (ms == 0) {
      engine_.shard().loop().cancel_timer(silence_);
    } else {
      engine_.shard().loop().arm_after_ms(silence_, ms);
    }
  }
  void on_silence() {
    if (finished_) return;
    count_error(seen_event_ ? upstream_error_kind::timeout_idle
                            : upstream_error_kind::timeout_first_byte);
    fail(504, "upstream_timeout",
         seen_event_ ? "the upstream stopped sending events" : "the upstream did not answer in time");
  }

  void count_error(upstream_error_kind kind) {
    ++engine_.metrics().errors[static_cast<size_t>(kind)];
  }

  void fail(uint16_t status, std::string_view code, std::string_view message) {
    owned_event e = error_event(std::string(code), std::string(message), status, "server_error",
                                {}, status == 503 ? engine_.options().retry_after_ms : 0);
    finished_ = true;
    engine_.shard().loop().cancel_timer(silence_);
    fail_session();
    queue_.push_back(std::move(e));
    drain();
  }

  // The session is in an unknown state: close it, forget its key.
  void fail_session() {
    session_.reset();
    if (!held_key_.empty()) engine_.store().drop(held_key_);
    held_key_.clear();
  }

  void finish_well() {
    finished_ = true;
    engine_.metrics().duration.observe_us((engine_.shard().loop().now_ns() - started_ns_) / 1000);
    engine_.shard().loop().cancel_timer(silence_);
    if (held_key_.empty() || !session_ || !session_->conn) {
      session_.reset();
      return;
    }
    session_->upstream_id = translator_.upstream_id();
    session_->conn->set_handler(session_.get());
    session_->conn->resume();
    session_->store = &engine_.store();
    session_->key = new_key_;
    note_session_owner(engine_.shard(), new_key_);  // cluster mode: other nodes route here
    engine_.store().put(held_key_, new_key_, std::move(session_));
    held_key_.clear();
  }

  void drain() {
    if (starting_) {
      engine_.shard().loop().arm_after_us(kick_, 0);
      return;
    }
    if (in_drain_) return;
    in_drain_ = true;
    while (!paused_ && !queue_.empty()) {
      owned_event e = std::move(queue_.front());
      queue_.pop_front();
      bool terminal = e.base.type == event_type::usage || e.base.type == event_type::error;
      bool more = sink_.on_event(e.view());
      if (terminal) {
        queue_.clear();
        break;  // the front may delete this stream from now on (in a later turn)
      }
      if (!more) paused_ = true;
    }
    in_drain_ = false;
    // Inbound backpressure: while the client is behind, stop reading the upstream.
    // The upstream's silence is not timed while ringcast itself holds it back.
    if (session_ && session_->conn && !finished_ && paused_ != upstream_paused_) {
      upstream_paused_ = paused_;
      if (paused_) {
        session_->conn->pause();
        engine_.shard().loop().cancel_timer(silence_);
      } else {
        session_->conn->resume();
        watch(seen_event_ ? engine_.options().idle_timeout_ms
                          : engine_.options().first_event_timeout_ms);
      }
    }
  }

  ws_engine& engine_;
  engine_sink& sink_;
  responses_ws_translator translator_;
  std::unique_ptr<ws_session> session_;
  std::string request_;
  std::string held_key_;  // the store key this response holds busy ("" if none)
  std::string new_key_;   // the key it retains its session under
  std::deque<owned_event> queue_;
  timer kick_;
  timer silence_;  // the upstream's first event, then the gap between two, must come in time
  bool seen_event_ = false;
  uint64_t started_ns_ = 0;
  bool upstream_paused_ = false;
  bool paused_ = false;
  bool finished_ = false;
  bool in_drain_ = false;
  bool starting_ = false;
};

ws_engine::ws_engine(shard_server& shard, responses_ws_options options)
    : shard_(shard),
      options_(std::move(options)),
      client_(std::make_unique<http_client>(shard.loop(), shard.sockets())),
      store_(shard.loop().timers(),
             session_store_options{options_.max_retained_sessions, options_.session_idle_ms,
                                   1'000'000 / reactor::tick_ns}) {
  registry[options_.name] = this;
  metrics_index_ = upstream_metrics_index(shard.metrics().upstreams, options_.name);
  endpoint_label_ = url::to_string(options_.endpoint);
  store_.count_into(&shard.metrics().upstream_sessions, &shard.metrics().upstream_sessions_idle);
  pool_options po;
  po.max_connections = options_.connections_max;
  po.max_idle = 0;  // upgraded connections never come back to the pool
  po.tls = options_.tls;
  pool_ = &client_->pool(options_.endpoint, po);
  target_.path = options_.path;
  if (!options_.api_key.empty())
    target_.headers.emplace_back("Authorization", "Bearer " + options_.api_key);
  for (const auto& h : options_.headers) target_.headers.push_back(h);
  target_.connect_timeout_ms = options_.connect_timeout_ms;
  target_.handshake_timeout_ms = options_.connect_timeout_ms;
}

ws_engine::~ws_engine() {
  auto it = registry.find(options_.name);
  if (it != registry.end() && it->second == this) registry.erase(it);
  store_.clear();  // its sockets go before the client they came from
}

upstream_metrics& ws_engine::metrics() { return shard_.metrics().upstreams[metrics_index_]; }

ws_engine* ws_engine::on_this_shard(const std::string& name) {
  auto it = registry.find(name);
  return it == registry.end() ? nullptr : it->second;
}

std::unique_ptr<ws_upstream> ws_engine::connect(ws_upstream_handler* h) {
  return std::make_unique<ws_upstream>(*client_, *pool_, target_, h);
}

std::string ws_engine::upstream_model(const std::string& model) const {
  if (options_.upstream_model) return options_.upstream_model(model);
  return model;
}

uint64_t ws_engine::completion_tokens_max(std::string_view model) const {
  if (options_.max_output_tokens)
    if (auto limit = options_.max_output_tokens(model)) return *limit;
  return options_.completion_tokens_max;
}

std::unique_ptr<engine_stream> ws_engine::run_here(const generation_request& req,
                                                   engine_sink& sink) {
  auto run = std::make_unique<ws_run>(*this, req, sink);
  bool stateful = options_.stateful && req.original.api == api_kind::responses &&
                  !req.original.response_id.empty();
  const std::string& previous = req.original.previous_response_id;
  if (!stateful) {
    run->start(req, nullptr, {}, std::nullopt);
    return run;
  }
  if (previous.empty()) {
    switch (store_.begin(req.original.response_id)) {
      case session_store::begin_status::ok:
        run->start(req, nullptr, req.original.response_id, std::nullopt);
        break;
      case session_store::begin_status::no_capacity:
        run->start(req, nullptr, {}, no_capacity());
        break;
      case session_store::begin_status::duplicate:
        run->start(req, nullptr, {}, error_event("invalid_request", "duplicate response id", 400,
                                                 "invalid_request_error"));
        break;
    }
    return run;
  }
  std::unique_ptr<retained_session> taken;
  switch (store_.take(previous, taken)) {
    case session_store::take_status::ok: {
      std::unique_ptr<ws_session> s(static_cast<ws_session*>(taken.release()));
      s->store = nullptr;
      if (s->dead || !s->conn || !s->conn->open()) {  // it died while idle: as if evicted
        s.reset();
        store_.drop(previous);
        run->start(req, nullptr, {}, not_found(previous));
        break;
      }
      run->start(req, std::move(s), previous, std::nullopt);
      break;
    }
    case session_store::take_status::busy:
      run->start(req, nullptr, {}, in_progress(previous));
      break;
    case session_store::take_status::not_found:
      run->start(req, nullptr, {}, not_found(previous));
      break;
  }
  return run;
}

owned_event ws_engine::not_found(const std::string& id) const {
  return error_event("previous_response_not_found",
                     "Previous response with id '" + id + "' not found.", 400,
                     "invalid_request_error", "previous_response_id");
}

owned_event ws_engine::in_progress(const std::string& id) const {
  return error_event("previous_response_in_progress",
                     "Previous response with id '" + id +
                         "' is still in progress. Wait for it to finish and try again.",
                     409, "invalid_request_error", "previous_response_id");
}

owned_event ws_engine::no_capacity() const {
  return error_event("upstream_sessions_exhausted",
                     "Every upstream session of this server is busy. Retry shortly.", 503,
                     "server_error", {}, options_.retry_after_ms);
}

void ws_engine::embed(const embedding_request&, unique_function<void(embedding_result&&)> done) {
  shard_.loop().post(shard_.id(), [done = std::move(done)]() mutable {
    embedding_result r;
    r.error_code = "unsupported";
    r.error_message = "a responses-ws upstream has no embeddings";
    done(std::move(r));
  });
}

void ws_engine::invoke_tool(std::string_view, std::string_view,
                            unique_function<void(tool_result&&)> done) {
  shard_.loop().post(shard_.id(), [done = std::move(done)]() mutable {
    tool_result r;
    r.error_code = "unsupported";
    r.error_message = "a responses-ws upstream has no built-in tools";
    done(std::move(r));
  });
}

std::unique_ptr<engine> make_responses_ws_engine(shard_server& shard, responses_ws_options options) {
  return std::make_unique<ws_engine>(shard, std::move(options));
}

std::shared_ptr<engine> make_responses_ws_upstream(shard_server& shard,
                                                   std::shared_ptr<const upstream_config> cfg) {
  responses_ws_options o;
  o.name = cfg->name;
  o.endpoint = cfg->endpoints.front();
  // The endpoint is the API's base ("ws://host:port/v1", like an OpenAI base URL) or the
  // Responses URL itself.
  const std::string& base = o.endpoint.base_path;
  o.path = base.size() >= 10 && base.compare(base.size() - 10, 10, "/responses") == 0
               ? base
               : base + "/responses";
  o.api_key = cfg->api_key;
  o.headers = cfg->headers;
  o.tls.ca_file = cfg->ca_file;
  o.tls.verify = cfg->tls_verify;
  o.stateful = cfg->stateful;
  o.max_retained_sessions = cfg->max_retained_sessions;
  o.session_idle_ms = cfg->session_idle_ms;
  o.connect_timeout_ms = cfg->connect_timeout_ms;
  o.first_event_timeout_ms = cfg->first_byte_timeout_ms;
  o.idle_timeout_ms = cfg->idle_timeout_ms;
  o.connections_max = cfg->connections_max;
  // Routes are read when a request comes (the snapshot a reload installs), on the engine's shard.
  o.upstream_model = [&shard](std::string_view model) {
    auto target = shard.routes().find(model);
    return target && !target->upstream_model.empty() ? std::string(target->upstream_model)
                                                     : std::string(model);
  };
  o.max_output_tokens = [&shard](std::string_view model) -> std::optional<uint64_t> {
    auto target = shard.routes().find(model);
    return target ? target->max_output_tokens : std::nullopt;
  };
  for (const model_route& r : shard.routes().routes)
    if (r.upstream == cfg->name) o.models.push_back(r.name);
  return std::make_shared<ws_engine>(shard, std::move(o));
}

}  // namespace rc::server
