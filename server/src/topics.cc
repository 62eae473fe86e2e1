#include "server/topics.h"

#include <algorithm>
#include <charconv>

#include "base/assert.h"
#include "proto/json_writer.h"
#include "proto/sse.h"
#include "server/connection.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"
#include "topics_internal.h"

namespace rc::server {

namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The reset notice: SSE `event: reset` (no id, so Last-Event-ID keeps pointing at what the
// client really has) or a WebSocket `reset` event.
void write_reset_json(byte_buffer& out, std::string_view topic, std::string_view epoch,
                      uint64_t seq, uint64_t oldest) {
  json::writer w(out);
  w.begin_object();
  w.string_member("topic", topic);
  w.string_member("epoch", epoch);
  w.uint64_member("seq", seq);
  w.uint64_member("oldest", oldest);
  w.end_object();
}

}  // namespace

bool parse_topic_since(std::string_view since, std::string_view& epoch, uint64_t& seq) {
  size_t dash = since.rfind('-');
  epoch = dash == std::string_view::npos ? std::string_view() : since.substr(0, dash);
  std::string_view digits = dash == std::string_view::npos ? since : since.substr(dash + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  return ec == std::errc() && p == digits.data() + digits.size() && !digits.empty();
}

// ---- topic_subscription ----

topic_subscription::topic_subscription(topic_registry& reg, connection& c, std::string topic,
                                       subscriber_kind kind, uint64_t id, std::string request_id)
    : registry_(reg),
      conn_(c),
      topic_(std::move(topic)),
      kind_(kind),
      id_(id),
      request_id_(std::move(request_id)) {
  if (kind_ == subscriber_kind::ws) ws_prefix_ = ws_prefix_frame(request_id_);
}

bool topic_subscription::deliver(const topic_event& e) {
  return push_frames(conn_, kind_, ws_prefix_, e);
}

void topic_subscription::on_stream_closed() {
  registry_.remove(*this);
}

void topic_subscription::on_cut(std::string_view code, std::string_view message) {
  connection& c = conn_;
  subscriber_kind kind = kind_;
  std::string request_id = std::move(request_id_);
  std::string topic = topic_;
  registry_.remove(*this);  // deletes this
  end_cut_subscriber(c, kind, request_id, "topic", topic, code, message);
}

// ---- registry: names and homes ----

topic_registry::topic_registry(shard_server& shard) : shard_(shard) {
  outbox_.resize(shard_.shard_count());
  shard_.loop().add_turn_hook([this] { flush_outbox(); });
}

topic_registry::~topic_registry() {
  // Connections are gone before the registry (shard teardown): no subscription is left.
  RC_ASSERT(by_id_.empty());
}

std::string_view topic_registry::check_name(std::string_view name) const {
  if (name.empty()) return "topic name is empty";
  if (name.size() > shard_.config().topic_name_bytes_max) return "topic name is too long";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return "topic names may only contain letters, digits and _ - . :";
  }
  // Across nodes a topic is a NATS subject (rc.t<i>.<epoch>.<topic>): '.' separates its tokens, and
  // none may be empty.
  if (shard_.cluster_link() &&
      (name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos))
    return "with --nats, topic names may not begin or end with '.' nor contain '..'";
  return {};
}

bool topic_registry::answers_later(std::string_view topic) const {
  return !shard_.cluster_link() && home_of(topic) != shard_.id();
}

unsigned topic_registry::home_of(std::string_view name) const {
  return static_cast<unsigned>(fnv1a(name) % shard_.shard_count());
}

topic_registry::home_topic& topic_registry::home(const std::string& name) {
  auto it = homes_.find(name);
  if (it == homes_.end()) {
    if (homes_.size() >= shard_.config().topics_max) evict_idle_topics();
    auto t = std::make_unique<home_topic>();
    t->name = name;
    char id[16];
    shard_.make_token(id);
    t->epoch.assign(id, 8);
    t->shards.assign(shard_.shard_count(), false);
    it = homes_.emplace(name, std::move(t)).first;
    ++shard_.metrics().topics_homed;
  }
  it->second->last_used = ++use_clock_;
  return *it->second;
}

void topic_registry::evict_idle_topics() {
  // Forget the least recently used tenth of the topics nobody is subscribed to. Their history
  // goes; a topic created again gets a new epoch, so old event ids read as a gap (reset).
  std::vector<std::pair<uint64_t, const std::string*>> idle;
  for (auto& [name, t] : homes_) {
    if (t->stream) continue;  // its consumer or a resume is in use (cluster)
    bool subscribed = false;
    for (bool s : t->shards) subscribed |= s;
    if (!subscribed) idle.emplace_back(t->last_used, &name);
  }
  std::sort(idle.begin(), idle.end());
  size_t n = std::max<size_t>(1, homes_.size() / 10);
  std::vector<std::string> victims;
  for (size_t i = 0; i < idle.size() && i < n; ++i) victims.push_back(*idle[i].second);
  for (const auto& v : victims) homes_.erase(v);
  shard_.metrics().topics_homed -= static_cast<int64_t>(victims.size());
}

// ---- publishing ----

void topic_registry::publish(std::string topic, std::string json,
                             unique_function<void(publish_result&&)> done) {
  if (shard_.cluster_link())
    return cluster_publish(std::move(topic), std::move(json), std::move(done));
  unsigned origin = shard_.id();
  unsigned home_shard = home_of(topic);
  if (home_shard == origin) {
    // At home already: answer in this turn, so a pipelined or batched run of publications is
    // handled in one turn and reaches each subscriber as one send.
    done(publish_at_home(std::move(topic), std::move(json)));
    return;
  }
  post_batched(home_shard, [origin, topic = std::move(topic), json = std::move(json),
                            done = std::move(done)]() mutable {
    topic_registry& home = shard_server::current()->topics();
    publish_result res = home.publish_at_home(std::move(topic), std::move(json));
    home.post_batched(
        origin, [done = std::move(done), res = std::move(res)]() mutable { done(std::move(res)); });
  });
}

topic_registry::publish_result topic_registry::publish_at_home(std::string topic,
                                                               std::string json) {
  topic_event e;
  home_publish(topic, std::move(json), e);
  home_topic& t = *homes_[topic];
  publish_result res;
  res.topic = topic;
  res.seq = e.seq;
  res.id = t.epoch + "-" + std::to_string(e.seq);
  // Every shard with subscribers gets the event through its mailbox, this one included: the
  // publisher's handler is still on the stack. This shard's deliveries run after it returns, in
  // this turn, so all of a turn's publications reach a subscriber in one send (topics_outbox.cc).
  fan_out(t, e);
  return res;
}

void topic_registry::home_publish(const std::string& name, std::string json, topic_event& e) {
  home_topic& t = home(name);
  ++shard_.metrics().publications;
  e = encode_event(name, t.epoch, t.seq + 1, json);
  e.prev_seq = t.seq;
  t.seq = e.seq;
  remember(t, e);
}

void topic_registry::publish_result::write_json(byte_buffer& out) const {
  json::writer w(out);
  w.begin_object();
  w.string_member("topic", topic);
  w.uint64_member("seq", seq);
  w.string_member("id", id);
  w.end_object();
}

topic_event topic_registry::encode_event(std::string_view name, std::string_view epoch,
                                         uint64_t seq, std::string_view json) {
  topic_event e;
  e.seq = seq;
  std::string id(epoch);
  id += '-';
  id += std::to_string(seq);

  // The WebSocket continuation: the event's members after the subscriber's "id".
  byte_buffer tail;
  tail.append("\"event\":\"message\",\"data\":{\"topic\":");
  json::write_string(tail, name);
  tail.append(",\"seq\":");
  json::write_uint64(tail, seq);
  tail.append(",\"id\":");
  json::write_string(tail, id);
  tail.append(",\"data\":");
  tail.append(json);
  tail.push_back('}');
  e.encode(id, "message", json, tail.view());
  return e;
}

uint64_t topic_registry::remember(home_topic& t, const topic_event& e) {
  // History, bounded by events and bytes.
  const auto& cfg = shard_.config();
  if (cfg.topic_history == 0) return e.seq;
  uint64_t dropped = 0;
  t.history.push_back(e);
  t.history_bytes += e.bytes();
  while (t.history.size() > cfg.topic_history ||
         (t.history_bytes > cfg.topic_history_bytes_max && t.history.size() > 1)) {
    dropped = t.history.front().seq;
    t.history_bytes -= t.history.front().bytes();
    t.history.pop_front();
  }
  return dropped;
}

// ---- subscribing ----

topic_subscription* topic_registry::subscribe(connection& c, std::string_view topic,
                                              subscriber_kind kind, std::string_view since,
                                              std::string_view request_id) {
  uint64_t id = next_sub_id_++;
  auto* s = new topic_subscription(*this, c, std::string(topic), kind, id, std::string(request_id));
  by_id_.emplace(id, s);
  auto& lt = locals_[s->topic_];
  if (!lt) lt = std::make_unique<local_topic>();
  lt->subs.push_back(*s);
  ++lt->count;
  ++shard_.metrics().subscribers;
  c.attach(*s);
  request_catch_up(*s, std::string(since));
  return s;
}

void topic_registry::request_catch_up(topic_subscription& s, std::string since) {
  s.live_ = false;
  unsigned me = shard_.id();
  uint64_t sub_id = s.id_;
  shard_.loop().post(
      home_of(s.topic_), [me, sub_id, topic = s.topic_, since = std::move(since)]() mutable {
        shard_server::current()->topics().home_catch_up(me, sub_id, topic, std::move(since));
      });
}

void topic_registry::home_catch_up(unsigned shard, uint64_t sub_id, const std::string& name,
                                   std::string since) {
  if (shard_.cluster_link()) return cluster_catch_up(home(name), shard, sub_id, std::move(since));
  send_catch_up(shard, sub_id, home_subscribe(shard, name, since));
}

void topic_registry::send_catch_up(unsigned shard, uint64_t sub_id, catch_up&& c) {
  shard_.loop().post(shard, [sub_id, c = std::move(c)]() mutable {
    shard_server::current()->topics().on_catch_up(sub_id, std::move(c));
  });
}

topic_registry::catch_up topic_registry::home_subscribe(unsigned shard, const std::string& name,
                                                        std::string_view since) {
  home_topic& t = home(name);
  t.shards[shard] = true;
  catch_up c;
  c.epoch = t.epoch;
  c.seq = t.seq;
  c.oldest = t.history.empty() ? t.seq + 1 : t.history.front().seq;
  if (since.empty()) return c;
  std::string_view epoch;
  uint64_t after = 0;
  bool ok = parse_topic_since(since, epoch, after);
  if (!ok || (!epoch.empty() && epoch != t.epoch) || after > t.seq || after + 1 < c.oldest) {
    // Unknown format, another epoch (the history it referred to is gone), a sequence number
    // from the future, or a gap older than the history: start over from what is retained.
    c.reset = true;
    c.events.assign(t.history.begin(), t.history.end());
    return c;
  }
  for (const topic_event& e : t.history)
    if (e.seq > after) c.events.push_back(e);
  return c;
}

void topic_registry::on_catch_up(uint64_t sub_id, catch_up&& c) {
  auto it = by_id_.find(sub_id);
  if (it == by_id_.end()) return;  // gone meanwhile
  topic_subscription& s = *it->second;
  if (!c.error_code.empty()) return end_subscription(s, c.error_code, c.error_message);
  auto& m = shard_.metrics();
  bool ws = s.kind_ == subscriber_kind::ws;
  ws_endpoint* endpoint = ws ? s.conn_.websocket() : nullptr;
  if (ws && !endpoint) return;
  if (ws && s.last_seq_ == 0) {
    byte_buffer msg;
    json::writer w(msg);
    w.begin_object();
    w.string_member("id", s.request_id_);
    w.string_member("event", "subscribed");
    w.key("data");
    w.begin_object();
    w.string_member("topic", s.topic_);
    w.uint64_member("seq", c.seq);
    w.string_member("epoch", c.epoch);
    w.end_object();
    w.end_object();
    if (!endpoint->send_text(msg.view())) return;
  }
  if (c.reset) {
    ++m.topic_resets;
    byte_buffer data;
    write_reset_json(data, s.topic_, c.epoch, c.seq, c.oldest);
    if (ws) {
      byte_buffer msg;
      msg.append("{\"id\":");
      json::write_string(msg, s.request_id_);
      msg.append(",\"event\":\"reset\",\"data\":");
      msg.append(data.view());
      msg.push_back('}');
      if (!endpoint->send_text(msg.view())) return;
    } else {
      byte_buffer frame;
      sse::write_event(frame, sse::event{.type = "reset", .data = data.view()});
      if (!s.conn_.stream_push_sse(frame.view())) return;
    }
  }
  for (const topic_event& e : c.events) {
    if (!s.deliver(e)) return;  // the connection is closing; `s` may be gone
    ++m.topic_replays;
  }
  s.last_seq_ = c.seq;
  s.live_ = true;
  s.epoch_ = std::move(c.epoch);
}

void topic_registry::on_event(const std::string& name, const topic_event& e) {
  auto it = locals_.find(name);
  if (it == locals_.end()) return;  // the last local subscriber left while this was in flight
  local_topic& lt = *it->second;
  // Every local subscriber queues the same bytes (encoded once at the home): whatever is done to
  // an event's bytes once per shard (compressing them, say) belongs here, before the loop.
  lt.delivering = true;
  uint64_t delivered = 0;
  lt.subs.for_each([&](topic_subscription& s) {
    if (!s.live_ || e.seq <= s.last_seq_) return;
    if (e.prev_seq > s.last_seq_) {
      // A publication never reached this shard (a mailbox refused it): resume from history.
      request_catch_up(s, s.epoch_ + "-" + std::to_string(s.last_seq_));
      return;
    }
    s.last_seq_ = e.seq;
    if (s.deliver(e)) ++delivered;
  });
  lt.delivering = false;
  shard_.metrics().deliveries += delivered;
  if (lt.count == 0) {
    locals_.erase(it);
    shard_.loop().post(home_of(name), [me = shard_.id(), name] {
      shard_server::current()->topics().home_unsubscribe(me, name);
    });
  }
}

void topic_registry::home_unsubscribe(unsigned shard, const std::string& name) {
  auto it = homes_.find(name);
  if (it == homes_.end()) return;
  it->second->shards[shard] = false;
  if (it->second->stream) check_idle(*it->second);
}

void topic_registry::end_subscription(topic_subscription& s, std::string_view code,
                                      std::string_view message) {
  connection& c = s.conn_;
  subscriber_kind kind = s.kind_;
  std::string request_id = s.request_id_;
  std::string topic = s.topic_;
  unsubscribe(s);  // deletes s
  end_cut_subscriber(c, kind, request_id, "topic", topic, code, message);
}

void topic_registry::unsubscribe(topic_subscription& s) {
  connection::detach(s);
  remove(s);
}

void topic_registry::unsubscribe(uint64_t subscription_id) {
  auto it = by_id_.find(subscription_id);
  if (it != by_id_.end()) unsubscribe(*it->second);
}

void topic_registry::remove(topic_subscription& s) {
  by_id_.erase(s.id_);
  --shard_.metrics().subscribers;
  auto it = locals_.find(s.topic_);
  RC_ASSERT(it != locals_.end());
  local_topic& lt = *it->second;
  static_cast<list_node<topic_sub_tag>&>(s).unlink();
  --lt.count;
  std::string name = s.topic_;
  delete &s;
  if (lt.count == 0 && !lt.delivering) {
    locals_.erase(it);
    shard_.loop().post(home_of(name), [me = shard_.id(), name] {
      shard_server::current()->topics().home_unsubscribe(me, name);
    });
  }
}

}  // namespace rc::server
