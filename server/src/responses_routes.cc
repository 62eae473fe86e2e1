// The stored-response routes: GET and DELETE /v1/responses/{id}, GET
// /v1/responses/{id}/input_items, and GET /v1/models/{id}.
//
// A response is stored on its home shard, the one encoded in its id (responses_store.h): the
// request is sent there by message, the answer (status and JSON body, encoded at the home) comes
// back, and the connection's shard writes it if the client is still there. In cluster mode the
// home reads a response another node stored through from the nodes' bucket first, and DELETE
// deletes it there too (responses_cluster.h).
#include "core/unique_function.h"
#include "proto/openai_models.h"
#include "proto/openai_responses_items.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/query.h"
#include "server/responses_cluster.h"
#include "server/shard.h"

namespace rc::server {
namespace {

struct home_reply {
  std::optional<openai::api_error> error;
  std::string body;             // 200: the JSON body
  uint64_t retry_after_ms = 0;  // 503
};

using answer_fn = unique_function<void(home_reply&&)>;
// Runs on the home shard once the response is local (if any node has it); answers with `answer`.
using home_fn = unique_function<void(shard_server&, const std::string& id, answer_fn answer)>;

home_reply unavailable(shard_server& home) {
  home_reply r;
  r.error = responses_nats_unavailable();
  r.retry_after_ms = responses_retry_after_ms(home);
  return r;
}

// Runs `fn` on the home shard of response `id` and answers the request with what it returns.
// Not found anywhere: 404; not here and the nodes' bucket unreachable: 503.
handler_result ask_home(request_context& ctx, const std::string& id, home_fn fn) {
  int home = response_home(id, ctx.shard.shard_count());
  if (home < 0) {
    respond_api_error(ctx.conn, openai::response_not_found(id));
    return handler_result::done;
  }
  unsigned me = ctx.shard.id();
  uint64_t conn_id = ctx.conn.id();
  bool posted = ctx.shard.loop().post(
      static_cast<unsigned>(home), [me, conn_id, id, fn = std::move(fn)]() mutable {
        shard_server& at_home = *shard_server::current();
        answer_fn answer = [&at_home, me, conn_id](home_reply&& reply) {
          at_home.loop().post(me, [conn_id, reply = std::move(reply)] {
            connection* c = shard_server::current()->live_connection(conn_id);
            if (!c) return;
            if (reply.error) {
              respond_api_error(*c, *reply.error, reply.retry_after_ms);
            } else {
              c->respond(200, "application/json", reply.body);
            }
          });
        };
        responses_localize(at_home, id,
                           [&at_home, id, fn = std::move(fn),
                            answer = std::move(answer)](kv_lookup found) mutable {
                             if (found == kv_lookup::found) {
                               fn(at_home, id, std::move(answer));
                               return;
                             }
                             home_reply r;
                             if (found == kv_lookup::unavailable) {
                               r = unavailable(at_home);
                             } else {
                               r.error = openai::response_not_found(id);
                             }
                             answer(std::move(r));
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
    return ask_home(ctx, id, [](shard_server& home, const std::string& rid, answer_fn answer) {
      responses_delete(home, rid, [&home, rid, answer = std::move(answer)](bool deleted) mutable {
        if (!deleted) {
          answer(unavailable(home));
          return;
        }
        home_reply r;
        byte_buffer b;
        openai::write_response_deleted(b, rid);
        r.body = std::string(b.view());
        answer(std::move(r));
      });
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
  return ask_home(ctx, id, [](shard_server& home, const std::string& rid, answer_fn answer) {
    home_reply r;
    auto found = home.responses().find(rid);
    if (!found) {
      r.error = openai::response_not_found(rid);
    } else {
      byte_buffer b;
      openai::write_response(b, found->response);
      r.body = std::string(b.view());
    }
    answer(std::move(r));
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
  return ask_home(
      ctx, id,
      [page = std::move(page)](shard_server& home, const std::string& rid, answer_fn answer) {
        home_reply r;
        auto found = home.responses().find(rid);
        if (!found) {
          r.error = openai::response_not_found(rid);
        } else {
          byte_buffer b;
          r.error = openai::write_input_item_page(b, found->input, page);
          r.body = std::string(b.view());
        }
        answer(std::move(r));
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
