// uws_peer: a uWebSockets (uWS::App, uSockets' epoll loop) server that speaks the subset of
// ringcast's protocol ringcast-load uses, so both run under the same client in the same run.
// Written by us against uWS's public API; bench/peers/uws.py builds it from a user's uWS
// checkout into a temporary directory (nothing of uWS is committed).
//
//   uws_peer [--port N] [--deflate | --deflate-prepared]
//
// * `/echo`: WebSocket echo of every message (text/binary kept).
// * `/ws`: `{"id":I,"action":"subscribe","payload":{"topic":T,...}}` → `{"id":I,"event":
//   "subscribed","data":{"topic":T,"seq":S,"epoch":E}}`, then per publication `{"id":I,"event":
//   "message","data":{"topic":T,"seq":N,"id":"E-N","data":<publication>}}`; `publish` →
//   `{"id":I,"event":"published","data":{"topic":T,"seq":N,"id":"E-N"}}`; `unsubscribe` →
//   `unsubscribed`; anything else → an `error` event. The fan-out is uWS's own pub/sub
//   (ws->subscribe, app.publish). A uWS publication is the same bytes for every subscriber, but
//   ringcast's event carries the subscriber's request id, so a subscription is a uWS topic per
//   (topic, request id): a publication is formatted once per distinct request id (ringcast-load's
//   subscribers all use "s": once per publication).
// * `POST /v1/topics/<t>` → `{"topic":T,"seq":N,"id":"E-N"}`; `GET /v1/topics/<t>/events` → SSE
//   `id: E-N` / `event: message` / `data: <publication>`, formatted once per publication. Like
//   uWS's TopicTree does for WebSockets, the events of a loop iteration are gathered per topic
//   and written at its end (a loop post handler), one corked res->write per stream (uncorked,
//   uWS's chunked write is four send calls); a stream whose socket is full queues (onWritable
//   drains it), and one whose queue passes 4 MiB is closed (a slow consumer).
// * `/healthz` → 200 `ok`.
// No history: `since` is accepted and ignored (subscribers see publications made after they
// subscribed; the subscribed reply's `seq` is the topic's last). Publications are stored as
// compact JSON (whitespace outside strings dropped), like ringcast does.
// --deflate: uWS::SHARED_COMPRESSOR on both WebSocket routes and every send asks for compression
// (uWS compresses per send with its shared compressor); --deflate-prepared also: publications
// are compressed once (loop.prepareMessage + app.publishPrepared, uWS's experimental path).
//
// Thread-safety: one thread, one uWS::App, one event loop; nothing is shared.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "App.h"
#include "uws_peer_json.h"

namespace {

using namespace uws_peer;

// ---- state ----

struct sse_stream;

struct topic_state {
  uint64_t seq = 0;
  std::unordered_map<std::string, unsigned> ws_ids;  // raw JSON request id → subscribers
  std::vector<sse_stream*> sse;
  std::string sse_batch;  // the events of this loop iteration, written at its end
};

struct ws_data {
  std::vector<std::pair<std::string, std::string>> subs;  // (topic, raw request id)
};

using app_t = uWS::App;
using ws_t = uWS::WebSocket<false, true, ws_data>;
using res_t = uWS::HttpResponse<false>;

constexpr size_t sse_queue_max = 4 << 20;

struct sse_stream {
  res_t* res;
  std::string topic;
  size_t index = 0;  // in topic_state::sse
  bool blocked = false;
  std::string queued;  // written once the socket takes more (onWritable)
};

app_t* g_app = nullptr;
std::string g_epoch;
bool g_compress = false, g_prepared = false;
std::unordered_map<std::string, topic_state> g_topics;
std::vector<std::string> g_sse_dirty;  // topics with an sse_batch

std::string uws_topic(std::string_view topic, std::string_view raw_id) {
  std::string t(topic);
  t.push_back('\n');  // never in a topic name
  t.append(raw_id);
  return t;
}

void sse_remove(sse_stream* s) {
  auto& list = g_topics[s->topic].sse;
  list[s->index] = list.back();
  list[s->index]->index = s->index;
  list.pop_back();
  delete s;
}

// Writes SSE events to a stream; false if the stream must be closed (its queue overflowed).
bool sse_write(sse_stream* s, std::string_view events) {
  if (s->blocked) {  // the socket is full: wait for onWritable
    s->queued.append(events);
    return s->queued.size() <= sse_queue_max;
  }
  s->blocked = !s->res->write(events);  // uWS keeps what the socket did not take
  return true;
}

// The stream's onWritable (registered for its whole life: a handler that uWS finds absent makes
// it drain by itself and then arm its 10 s HTTP idle timeout, which would cut a quiet stream).
// With nothing queued, an SSE comment line makes the write that drains what uWS holds.
bool sse_writable(sse_stream* s) {
  std::string out = std::move(s->queued);
  s->queued.clear();
  if (out.empty()) out = ":\n";
  s->blocked = !s->res->write(out);
  return !s->blocked;
}

// Publishes `json` (compact) on `topic`: returns the event id "E-N", sets `seq`.
std::string publish(std::string_view topic, const std::string& json, uint64_t& seq) {
  topic_state& t = g_topics[std::string(topic)];
  seq = ++t.seq;
  std::string id = g_epoch + "-" + std::to_string(seq);
  // WebSocket: one message per distinct request id; uWS sends it to every subscriber.
  std::string tail;
  if (!t.ws_ids.empty()) {
    tail = ",\"event\":\"message\",\"data\":{\"topic\":\"" + std::string(topic) +
           "\",\"seq\":" + std::to_string(seq) + ",\"id\":\"" + id + "\",\"data\":" + json + "}}";
  }
  for (auto& [raw_id, count] : t.ws_ids) {
    if (count == 0) continue;
    std::string msg = "{\"id\":" + raw_id + tail;
    if (g_prepared) {
      uWS::PreparedMessage p = uWS::Loop::get()->prepareMessage(msg, uWS::OpCode::TEXT, true);
      g_app->publishPrepared(uws_topic(topic, raw_id), p);
    } else {
      g_app->publish(uws_topic(topic, raw_id), msg, uWS::OpCode::TEXT, g_compress);
    }
  }
  // SSE: one event, gathered for the end of the loop iteration (drain_sse).
  if (!t.sse.empty()) {
    if (t.sse_batch.empty()) g_sse_dirty.emplace_back(topic);
    t.sse_batch += "id: " + id + "\nevent: message\ndata: " + json + "\n\n";
  }
  return id;
}

// Writes the loop iteration's SSE events: per topic, one corked write per stream.
void drain_sse() {
  std::vector<sse_stream*> overflowed;
  for (const std::string& name : g_sse_dirty) {
    topic_state& t = g_topics[name];
    std::string batch = std::move(t.sse_batch);
    t.sse_batch.clear();
    for (sse_stream* s : t.sse) {
      s->res->cork([&] {
        if (!sse_write(s, batch)) overflowed.push_back(s);
      });
    }
  }
  g_sse_dirty.clear();
  for (sse_stream* s : overflowed) s->res->close();  // onAborted removes it
}

void send_error(ws_t* ws, std::string_view raw_id, std::string_view code, std::string_view msg) {
  std::string out = "{\"id\":" + std::string(raw_id.empty() ? "null" : raw_id) +
                    ",\"event\":\"error\",\"error\":{\"code\":\"" + std::string(code) +
                    "\",\"message\":\"" + std::string(msg) + "\"}}";
  ws->send(out, uWS::OpCode::TEXT, g_compress);
}

void forget_subscription(std::string_view topic, const std::string& raw_id) {
  auto it = g_topics.find(std::string(topic));
  if (it == g_topics.end()) return;
  auto c = it->second.ws_ids.find(raw_id);
  if (c != it->second.ws_ids.end() && --c->second == 0) it->second.ws_ids.erase(c);
}

void on_ws_request(ws_t* ws, std::string_view m) {
  std::optional<std::string_view> id = member(m, "id");
  std::string raw_id(id && !id->empty() && ((*id)[0] == '"' || std::isdigit((*id)[0]))
                         ? *id
                         : std::string_view());
  std::optional<std::string_view> action = member(m, "action");
  std::optional<std::string_view> payload = member(m, "payload");
  if (!action || !payload || (*payload)[0] != '{')
    return send_error(ws, raw_id, "invalid_request", "expected {id, action, payload}");
  if (raw_id.empty()) return send_error(ws, raw_id, "invalid_request", "'id' is required");
  std::string_view topic = topic_of(member(*payload, "topic"));
  if (*action == "\"subscribe\"" || *action == "\"unsubscribe\"") {
    if (topic.empty()) return send_error(ws, raw_id, "invalid_topic", "bad 'payload.topic'");
    auto& subs = ws->getUserData()->subs;
    if (*action == "\"unsubscribe\"") {  // the socket's subscriptions to the topic, whatever id
      std::erase_if(subs, [&](auto& p) {
        if (p.first != topic) return false;
        ws->unsubscribe(uws_topic(topic, p.second));
        forget_subscription(topic, p.second);
        return true;
      });
      std::string out = "{\"id\":" + raw_id + ",\"event\":\"unsubscribed\",\"data\":{\"topic\":\"" +
                        std::string(topic) + "\"}}";
      ws->send(out, uWS::OpCode::TEXT, g_compress);
      return;
    }
    topic_state& t = g_topics[std::string(topic)];
    auto mine = std::find_if(subs.begin(), subs.end(),
                             [&](auto& p) { return p.first == topic && p.second == raw_id; });
    if (mine == subs.end()) {
      ws->subscribe(uws_topic(topic, raw_id));
      ++t.ws_ids[raw_id];
      subs.emplace_back(topic, raw_id);
    }
    std::string out = "{\"id\":" + raw_id + ",\"event\":\"subscribed\",\"data\":{\"topic\":\"" +
                      std::string(topic) + "\",\"seq\":" + std::to_string(t.seq) +
                      ",\"epoch\":\"" + g_epoch + "\"}}";
    ws->send(out, uWS::OpCode::TEXT, g_compress);
    return;
  }
  if (*action == "\"publish\"") {
    if (topic.empty()) return send_error(ws, raw_id, "invalid_topic", "bad 'payload.topic'");
    std::optional<std::string_view> data = member(*payload, "data");
    if (!data) return send_error(ws, raw_id, "invalid_request", "'payload.data' is required");
    std::optional<std::string> json = compact_value(*data);
    if (!json) return send_error(ws, raw_id, "invalid_request", "'payload.data' is not JSON");
    uint64_t seq = 0;
    std::string event_id = publish(topic, *json, seq);
    std::string out = "{\"id\":" + raw_id + ",\"event\":\"published\",\"data\":{\"topic\":\"" +
                      std::string(topic) + "\",\"seq\":" + std::to_string(seq) + ",\"id\":\"" +
                      event_id + "\"}}";
    ws->send(out, uWS::OpCode::TEXT, g_compress);
    return;
  }
  send_error(ws, raw_id, "invalid_request",
             "the uWS peer implements only subscribe, unsubscribe and publish");
}

void json_error(res_t* res, std::string_view status, std::string_view code,
                std::string_view msg) {
  res->writeStatus(status)
      ->writeHeader("Content-Type", "application/json")
      ->end("{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"" +
            std::string(msg) + "\"}}");
}

void on_publish(res_t* res, uWS::HttpRequest* req) {
  std::string topic(req->getParameter(0));
  auto body = std::make_shared<std::string>();
  auto aborted = std::make_shared<bool>(false);
  res->onAborted([aborted] { *aborted = true; });
  res->onData([res, topic = std::move(topic), body, aborted](std::string_view chunk, bool last) {
    if (*aborted) return;
    body->append(chunk);
    if (body->size() > (1 << 20)) {
      *aborted = true;
      return json_error(res, "413 Payload Too Large", "too_large", "body over 1 MiB");
    }
    if (!last) return;
    if (!valid_topic(topic))
      return json_error(res, "400 Bad Request", "invalid_topic", "bad topic name");
    std::optional<std::string> json = compact_value(*body);
    if (!json) return json_error(res, "400 Bad Request", "invalid_json", "body is not JSON");
    uint64_t seq = 0;
    std::string id = publish(topic, *json, seq);
    res->writeHeader("Content-Type", "application/json")
        ->end("{\"topic\":\"" + topic + "\",\"seq\":" + std::to_string(seq) + ",\"id\":\"" + id +
              "\"}");
  });
}

void on_events(res_t* res, uWS::HttpRequest* req) {
  std::string_view topic = req->getParameter(0);
  if (!valid_topic(topic))
    return json_error(res, "400 Bad Request", "invalid_topic", "bad topic name");
  auto& list = g_topics[std::string(topic)].sse;
  auto* s = new sse_stream{res, std::string(topic), list.size(), false, {}};
  list.push_back(s);
  res->onAborted([s] { sse_remove(s); });
  res->onWritable([s](uintmax_t) { return sse_writable(s); });
  res->writeHeader("Content-Type", "text/event-stream")->writeHeader("Cache-Control", "no-cache");
  res->write(":\n\n");  // a comment: the head and the chunked framing leave now
}

template <typename Behaviour>
Behaviour settings() {
  Behaviour b{};
  b.compression = g_compress ? uWS::SHARED_COMPRESSOR : uWS::DISABLED;
  b.maxPayloadLength = 16 << 20;
  b.maxBackpressure = 4 << 20;        // like ringcast's per-stream budget: past it, ...
  b.closeOnBackpressureLimit = true;  // ... the subscriber is closed, never silently skipped
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (a == "--deflate") {
      g_compress = true;
    } else if (a == "--deflate-prepared") {
      g_compress = g_prepared = true;
    } else {
      std::fprintf(stderr, "usage: uws_peer [--port N] [--deflate | --deflate-prepared]\n");
      return 2;
    }
  }
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  char epoch[32];
  std::snprintf(epoch, sizeof epoch, "%lx", static_cast<unsigned long>(now.tv_sec));
  g_epoch = epoch;

  app_t app;
  g_app = &app;
  auto echo = settings<app_t::WebSocketBehavior<ws_data>>();
  echo.message = [](ws_t* ws, std::string_view m, uWS::OpCode op) { ws->send(m, op, g_compress); };
  auto broker = settings<app_t::WebSocketBehavior<ws_data>>();
  broker.message = [](ws_t* ws, std::string_view m, uWS::OpCode) { on_ws_request(ws, m); };
  broker.close = [](ws_t* ws, int, std::string_view) {
    for (auto& [topic, raw_id] : ws->getUserData()->subs) forget_subscription(topic, raw_id);
  };
  bool listening = false;
  uWS::Loop::get()->addPostHandler(&g_sse_dirty, [](uWS::Loop*) { drain_sse(); });
  app.ws<ws_data>("/echo", std::move(echo))
      .ws<ws_data>("/ws", std::move(broker))
      .get("/healthz", [](res_t* res, uWS::HttpRequest*) { res->end("ok"); })
      .post("/v1/topics/:topic", on_publish)
      .get("/v1/topics/:topic/events", on_events)
      .any("/*", [](res_t* res, uWS::HttpRequest*) {
        json_error(res, "404 Not Found", "not_found", "the uWS peer does not serve this");
      })
      .listen("127.0.0.1", port, [&](us_listen_socket_t* ls) {
        if (!ls) return;
        listening = true;
        std::fprintf(stderr, "uws_peer listening on 127.0.0.1:%d%s\n",
                     us_socket_local_port(0, reinterpret_cast<us_socket_t*>(ls)),
                     g_prepared ? " (deflate, prepared)" : g_compress ? " (deflate)" : "");
      });
  if (!listening) {
    std::fprintf(stderr, "uws_peer: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  app.run();
  return 0;
}
