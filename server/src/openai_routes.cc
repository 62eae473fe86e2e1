// POST /v1/embeddings, GET /v1/models, and the WebSocket broker's embedding.query and tool.invoke.
#include <memory>
#include <span>
#include <vector>

#include "core/shared_buffer.h"
#include "proto/json_writer.h"
#include "proto/openai_embeddings.h"
#include "proto/openai_models.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_broker.h"

namespace rc::server {
namespace {

// Token-list inputs reach the engine as text: the ids, space-separated.
embedding_request engine_request(const openai::embeddings_request& req) {
  embedding_request e;
  e.model = req.model;
  e.dimensions = req.dimensions;
  if (req.input_kind == openai::embedding_input_kind::text) {
    e.texts = req.texts;
  } else {
    for (const auto& tokens : req.token_lists) {
      std::string text;
      for (uint32_t t : tokens) {
        if (!text.empty()) text += ' ';
        text += std::to_string(t);
      }
      e.texts.push_back(std::move(text));
    }
  }
  return e;
}

// A large embeddings list (2048 inputs of thousands of dimensions is ~100 MB of JSON) is
// serialized a slice per loop turn, so the shard keeps serving its other connections meanwhile;
// about this many values per turn, a few milliseconds of formatting.
constexpr size_t serialize_values_per_turn = 64 * 1024;

struct sliced_embeddings {
  uint64_t conn_id = 0;
  embedding_result res;
  std::string model;
  openai::embedding_encoding encoding = openai::embedding_encoding::float_array;
  // Gets the finished body in parts (one per slice), or nullptr when the connection left.
  unique_function<void(connection*, std::vector<shared_buffer>&&)> done;
  size_t next = 0;
  std::vector<shared_buffer> parts;
};

void serialize_slice(std::unique_ptr<sliced_embeddings> w) {
  shard_server* s = shard_server::current();
  connection* c = s->live_connection(w->conn_id);
  if (!c) {
    w->done(nullptr, {});
    return;
  }
  const size_t dims = w->res.dimensions;
  const size_t count = dims == 0 ? 0 : w->res.vectors.size() / dims;
  byte_buffer slice;
  if (w->next == 0) openai::write_embeddings_begin(slice);
  size_t values = 0;
  for (; w->next < count && values < serialize_values_per_turn; ++w->next, values += dims) {
    std::span<const float> row(w->res.vectors.data() + w->next * dims, dims);
    openai::write_embedding_item(slice, w->next, row, w->encoding);
  }
  if (w->next == count) openai::write_embeddings_end(slice, w->model, w->res.prompt_tokens);
  w->parts.push_back(shared_buffer::copy_of(slice.view()));
  if (w->next < count) {
    s->loop().post(s->id(), [w = std::move(w)]() mutable { serialize_slice(std::move(w)); });
    return;
  }
  w->done(c, std::move(w->parts));
}

void serialize_embeddings(uint64_t conn_id, embedding_result&& res, std::string model,
                          openai::embedding_encoding encoding,
                          unique_function<void(connection*, std::vector<shared_buffer>&&)> done) {
  auto w = std::make_unique<sliced_embeddings>();
  w->conn_id = conn_id;
  w->res = std::move(res);
  w->model = std::move(model);
  w->encoding = encoding;
  w->done = std::move(done);
  serialize_slice(std::move(w));
}

}  // namespace

handler_result handle_embeddings(request_context& ctx) {
  json::value root;
  if (auto err = openai::parse_json_body(ctx.shard.json_parser(), ctx.body.data(),
                                         ctx.body.size(), ctx.body_capacity, root)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  openai::embeddings_request req;
  if (auto err = openai::parse_embeddings_request(root, req)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  engine* e = ctx.shard.engine_for(req.model);
  if (!e) {
    respond_api_error(ctx.conn, openai::model_not_found(req.model));
    return handler_result::done;
  }
  if (auto err = openai::check_embedding_dimensions(req, e->embedding_dimensions(req.model))) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  uint64_t conn_id = ctx.conn.id();
  embedding_request ereq = engine_request(req);
  ereq.deadline_ms = generation_deadline_ms(ctx.shard, ctx.req.find("x-ringcast-timeout-ms"));
  e->embed(ereq, [conn_id, model = req.model, encoding = req.encoding](
                                    embedding_result&& res) {
    connection* c = shard_server::current()->live_connection(conn_id);
    if (!c) return;
    if (!res.error_code.empty()) {  // answered as a generation's error would be
      engine_event ev;
      ev.type = event_type::error;
      ev.error_code = res.error_code;
      ev.error_message = res.error_message;
      ev.error_type = res.error_type;
      ev.error_param = res.error_param;
      ev.http_status = res.http_status;
      ev.retry_after_ms = res.retry_after_ms;
      ev.raw = res.envelope;
      respond_engine_error(*c, ev, shard_server::current()->scheduler().retry_after_ms());
      return;
    }
    serialize_embeddings(conn_id, std::move(res), model, encoding,
                         [](connection* to, std::vector<shared_buffer>&& parts) {
                           if (to) to->respond_parts(200, "application/json", std::move(parts));
                         });
  });
  return handler_result::async;
}

handler_result handle_models(request_context& ctx) {
  std::vector<openai::model_entry> entries;
  for (const engine_table::entry& m : ctx.shard.engines().list())
    entries.push_back({m.id, ctx.shard.started_wall_s(), m.owned_by});
  byte_buffer body;
  openai::write_model_list(body, entries);
  ctx.conn.respond(200, "application/json", body.view());
  return handler_result::done;
}

// ---- WebSocket broker ----

bool start_embedding_ws(ws_endpoint& ws, std::string_view request_id, const json::value& payload,
                        unique_function<void()> on_finished) {
  openai::embeddings_request req;
  auto fail = [&](const openai::api_error& err) {
    broker_ws_handler::send_error(ws, request_id, err.code.value_or(err.type), err.message);
    return false;
  };
  if (!payload) return fail(openai::invalid_request("'payload' is required", "payload"));
  if (auto err = openai::parse_embeddings_request(payload, req)) return fail(*err);
  engine* e = ws.shard().engine_for(req.model);
  if (!e) return fail(openai::model_not_found(req.model));
  if (auto err = openai::check_embedding_dimensions(req, e->embedding_dimensions(req.model))) {
    return fail(*err);
  }
  uint64_t conn_id = ws.connection_id();
  embedding_request ereq = engine_request(req);
  ereq.deadline_ms = generation_deadline_ms(ws.shard(), {});
  e->embed(ereq, [conn_id, id = std::string(request_id), encoding = req.encoding,
                                 model = req.model, on_finished = std::move(on_finished)](
                                    embedding_result&& res) mutable {
    connection* c = shard_server::current()->live_connection(conn_id);
    if (!c || !res.error_code.empty()) {
      if (c && c->websocket()) {
        broker_ws_handler::send_error(*c->websocket(), id, res.error_code, res.error_message);
      }
      on_finished();
      return;
    }
    // The embeddings list object as the event's data: {"object":"list","data":[...],...}.
    serialize_embeddings(conn_id, std::move(res), model, encoding,
                         [id = std::move(id), on_finished = std::move(on_finished)](
                             connection* to, std::vector<shared_buffer>&& parts) mutable {
                           if (to && to->websocket()) {
                             byte_buffer data;
                             for (const shared_buffer& part : parts) data.append(part.view());
                             broker_ws_handler::send_event(*to->websocket(), id, "embedding.result",
                                                           data.view());
                           }
                           on_finished();
                         });
  });
  return true;
}

bool start_tool_ws(ws_endpoint& ws, std::string_view request_id, const json::value& payload,
                   unique_function<void()> on_finished) {
  json::value name = payload ? payload.find("name") : json::value();
  if (!name || !name.is_string()) {
    broker_ws_handler::send_error(ws, request_id, "invalid_request",
                                  "'payload.name' is required and must be a string");
    return false;
  }
  std::string arguments = "{}";
  if (json::value args = payload.find("arguments")) {
    // OpenAI passes tool arguments as a JSON string; an object is accepted as well.
    if (args.is_string()) {
      arguments = std::string(args.get_string());
    } else {
      arguments = args.to_json();
    }
  }
  engine* e = ws.shard().default_engine();
  uint64_t conn_id = ws.connection_id();
  e->invoke_tool(name.get_string(), arguments, [conn_id, id = std::string(request_id),
                                                on_finished = std::move(on_finished)](
                                                   tool_result&& res) mutable {
    connection* c = shard_server::current()->live_connection(conn_id);
    if (c && c->websocket()) {
      if (!res.error_code.empty()) {
        broker_ws_handler::send_error(*c->websocket(), id, res.error_code, res.error_message);
      } else {
        byte_buffer data;
        json::writer w(data);
        w.begin_object();
        w.raw_member("output", res.output);
        w.end_object();
        broker_ws_handler::send_event(*c->websocket(), id, "tool.result", data.view());
      }
    }
    on_finished();
  });
  return true;
}

}  // namespace rc::server
