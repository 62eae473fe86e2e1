// The stored-response routes: GET and DELETE /v1/responses/{id}, GET
// /v1/responses/{id}/input_items, and GET /v1/models/{id}.
//
// A response is stored on its home shard, the one encoded in its id (responses_store.h): the
// request is sent there by message, the answer (status and JSON body, encoded at the home) comes
// back, and the connection's shard writes it if the client is still there.
#include "core/unique_function.h"
#include "proto/openai_models.h"
#include "proto/openai_responses_items.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/query.h"
#include "server/shard.h"

namespace rc::server {
namespace {

struct home_reply {
  std::optional<openai::api_error> error;
  std::string body;  // 200: the JSON body
};

using home_fn = unique_function<home_reply(responses_store&)>;

// Runs `fn` on the home shard of response `id` and answers the request with what it returns.
handler_result ask_home(request_context& ctx, const std::string& id, home_fn fn) {
  int home = shard_of_id(id, "resp_", ctx.shard.shard_count());
  if (home < 0) {
    respond_api_error(ctx.conn, openai::response_not_found(id));
    return handler_result::done;
  }
  unsigned me = ctx.shard.id();
  uint64_t conn_id = ctx.conn.id();
  bool posted = ctx.shard.loop().post(
      static_cast<unsigned>(home), [me, conn_id, fn = std::move(fn)]() mutable {
        home_reply reply = fn(shard_server::current()->responses());
        shard_server::current()->loop().post(me, [conn_id, reply = std::move(reply)] {
          connection* c = shard_server::current()->live_connection(conn_id);
          if (!c) return;
          if (reply.error) {
            respond_api_error(*c, *reply.error);
          } else {
            c->respond(200, "application/json", reply.body);
          }
        });
      });
  if (!posted) {
    respond_api_error(ctx.conn, openai::overloaded(), 1000);
    return handler_result::done;
  }
  return handler_result::async;
}

}  // namespace

handler_result handle_response(request_context& ctx) {
  std::string id(ctx.route.params[0]);
  if (ctx.req.method == http1::method::delete_) {
    return ask_home(ctx, id, [id](responses_store& store) {
      home_reply r;
      if (!store.erase(id)) {
        r.error = openai::response_not_found(id);
        return r;
      }
      byte_buffer b;
      openai::write_response_deleted(b, id);
      r.body = std::string(b.view());
      return r;
    });
  }
  // Streaming a stored response again (OpenAI's background mode) is not something ringcast keeps
  // the events for: say so rather than answer JSON to a client waiting for SSE.
  if (auto stream = query_value(ctx.req.query, "stream"); stream && *stream != "false") {
    respond_api_error(ctx.conn, openai::invalid_request(
                                    "Streaming a stored response is not supported; retrieve it "
                                    "without 'stream'.",
                                    "stream", "unsupported_parameter"));
    return handler_result::done;
  }
  return ask_home(ctx, id, [id](responses_store& store) {
    home_reply r;
    auto found = store.find(id);
    if (!found) {
      r.error = openai::response_not_found(id);
      return r;
    }
    byte_buffer b;
    openai::write_response(b, found->response);
    r.body = std::string(b.view());
    return r;
  });
}

handler_result handle_response_input_items(request_context& ctx) {
  std::string id(ctx.route.params[0]);
  std::string_view q = ctx.req.query;
  auto after = query_value(q, "after"), limit = query_value(q, "limit"),
       order = query_value(q, "order");
  openai::item_page_request page;
  auto view = [](const std::optional<std::string>& s) {
    return s ? std::optional<std::string_view>(*s) : std::nullopt;
  };
  if (auto err = openai::parse_item_page_request(view(after), view(limit), view(order), page)) {
    respond_api_error(ctx.conn, *err);
    return handler_result::done;
  }
  // `include` (extra fields for some item types) is accepted; ringcast's items have none of them.
  return ask_home(ctx, id, [id, page = std::move(page)](responses_store& store) {
    home_reply r;
    auto found = store.find(id);
    if (!found) {
      r.error = openai::response_not_found(id);
      return r;
    }
    byte_buffer b;
    r.error = openai::write_input_item_page(b, found->input, page);
    r.body = std::string(b.view());
    return r;
  });
}

handler_result handle_model(request_context& ctx) {
  std::string id =
      path_segment_decode(ctx.route.params[0]).value_or(std::string(ctx.route.params[0]));
  if (auto m = ctx.shard.engines().describe(id)) {  // what /v1/models lists
    byte_buffer body;
    openai::write_model(body, {m->id, ctx.shard.started_wall_s(), m->owned_by});
    ctx.conn.respond(200, "application/json", body.view());
    return handler_result::done;
  }
  respond_api_error(ctx.conn, openai::model_not_found(id));
  return handler_result::done;
}

}  // namespace rc::server
