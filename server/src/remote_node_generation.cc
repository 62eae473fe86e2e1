// Follow-ups routed to the node that retains their upstream session (remote_node.h): the
// client's side (route_follow_up, generate_on_node). The owner's: remote_node_owner.cc.
#include <deque>
#include <unordered_map>

#include "base/assert.h"
#include "core/log.h"
#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/nats_client.h"
#include "server/node_wire.h"
#include "server/remote_generation.h"
#include "server/remote_node.h"
#include "server/record_codec.h"
#include "server/shard.h"

namespace rc::server {
namespace {

bool is_terminal(event_type t) { return t == event_type::usage || t == event_type::error; }

// Ids we mint are bucket keys (NATS subject tokens); a client's guess might not be.
bool owner_key_ok(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '=';
    if (!ok) return false;
  }
  return true;
}

class node_stream;

// One shard's client side of node-routed streams. Created on first use, destroyed by
// release_node_generations (the shard stopping).
struct node_tables {
  std::unordered_map<std::string, node_stream*> streams;  // by inbox
  ~node_tables();
};

thread_local std::unique_ptr<node_tables> t_node;

node_tables& tables() {
  if (!t_node) t_node = std::make_unique<node_tables>();
  return *t_node;
}

// ---- client side -------------------------------------------------------------------------------

class node_stream final : public engine_stream {
 public:
  node_stream(shard_server& s, cluster& c, std::string owner, unsigned owner_shard,
              engine_sink& sink)
      : shard_(s), cluster_(&c), owner_(std::move(owner)), sink_(sink),
        ctl_(node_subject(owner_, owner_shard, "ctl")) {
    tick_.bind<node_stream, &node_stream::on_tick>(this);
  }

  ~node_stream() override {
    shard_.loop().cancel_timer(tick_);
    if (!cluster_) return;  // released (the shard stopped)
    cluster_->nats().unsubscribe(sid_);
    if (t_node) {
      auto it = t_node->streams.find(inbox_);
      if (it != t_node->streams.end() && it->second == this) t_node->streams.erase(it);
    }
    if (linked_) {  // the client left: the owner cancels its stream
      std::string m = "c" + inbox_;
      cluster_->nats().publish(ctl_, {}, {}, m);
    }
  }

  void start(const std::string& gen_subject, const std::string& upstream,
             const generation_request& req) {
    nats_client& nc = cluster_->nats();
    inbox_ = nc.new_inbox();
    tables().streams[inbox_] = this;
    std::string inbox = inbox_;
    sid_ = nc.subscribe(inbox_, {}, [inbox](const nats_msg& m) {
      if (!t_node) return;
      auto it = t_node->streams.find(inbox);
      if (it != t_node->streams.end()) it->second->on_message(m);
    });
    std::string body;
    encode_node_request(upstream, req, shard_.loop().now_ms(), body);
    heard_ms_ = shard_.loop().now_ms();
    shard_.loop().arm_after_ms(tick_, node_keepalive_ms);
    if (!nc.publish(gen_subject, inbox_, {}, body)) {
      // Refused at once (NATS buffer full, too large): end in a later turn.
      fail_later_ = true;
      shard_.loop().arm_after_ms(tick_, 0);
    }
  }

  void resume() override {
    paused_ = false;
    drain();
  }

  void unlink() {
    linked_ = false;
    cluster_ = nullptr;
  }

  void on_message(const nats_msg& m) {
    if (!linked_) return;
    if (m.status() == 503) {  // no responders: the owner is gone or never served
      end_with(node_unavailable_event(owner_));
      return;
    }
    heard_ms_ = shard_.loop().now_ms();
    std::string_view d = m.data;
    if (d.empty() || d[0] == 'A' || d[0] == 'K') return;
    owned_event e;
    record_error err = d[0] == 'E' ? decode_node_event(d.substr(1), d.size(), e)
                                   : record_error::bad_magic;
    if (err != record_error::none) {
      RC_WARN("node stream from %s: malformed event (%.*s)", owner_.c_str(),
              static_cast<int>(to_string(err).size()), to_string(err).data());
      end_with(error_event("node_protocol_error",
                           "The node holding this conversation sent a malformed event.", 502,
                           "server_error"));
      return;
    }
    push(std::move(e));
    drain();
  }

 private:
  void end_with(owned_event e) {
    if (linked_) {
      linked_ = false;
      std::string m = "c" + inbox_;
      if (cluster_) cluster_->nats().publish(ctl_, {}, {}, m);
    }
    push(std::move(e));
    drain();
  }

  void push(owned_event&& e) {
    if (terminal_queued_) return;
    terminal_queued_ = is_terminal(e.base.type);
    queue_.push_back(std::move(e));
  }

  void drain() {
    while (!paused_ && !queue_.empty()) {
      owned_event e = std::move(queue_.front());
      queue_.pop_front();
      delivered_ = true;
      if (is_terminal(e.base.type)) {
        // The owner forgets the stream by itself. The front may delete this stream from inside
        // on_event: touch nothing after it.
        linked_ = false;
        shard_.loop().cancel_timer(tick_);
        sink_.on_event(e.view());
        return;
      }
      ++unacked_;
      if (!sink_.on_event(e.view())) paused_ = true;
    }
    if (linked_ && unacked_ >= remote_window / 4) send_ack();
  }

  void send_ack() {
    if (!cluster_) return;
    std::string m = "a";
    record_codec::writer{m}.varint(unacked_);
    m += inbox_;
    unacked_ = 0;
    cluster_->nats().publish(ctl_, {}, {}, m);
  }

  void on_tick() {
    if (!linked_) return;
    uint64_t now = shard_.loop().now_ms();
    if (fail_later_ || now - heard_ms_ >= node_silence_ms) {
      RC_WARN("node stream: %s did not answer for %llu ms", owner_.c_str(),
              static_cast<unsigned long long>(now - heard_ms_));
      owned_event e = node_unavailable_event(owner_);
      if (delivered_) e.error_message = "The node holding this conversation (" + owner_ +
                                        ") stopped answering in the middle of the response.";
      end_with(std::move(e));
      return;
    }
    send_ack();  // n may be 0: a keepalive
    shard_.loop().arm_after_ms(tick_, node_keepalive_ms);
  }

  shard_server& shard_;
  cluster* cluster_;
  std::string owner_;
  engine_sink& sink_;
  std::string ctl_, inbox_;
  uint64_t sid_ = 0;
  std::deque<owned_event> queue_;
  timer tick_;
  uint64_t heard_ms_ = 0;
  uint32_t unacked_ = 0;  // delivered, not yet acknowledged
  bool paused_ = false;
  bool linked_ = true;
  bool terminal_queued_ = false;
  bool delivered_ = false;
  bool fail_later_ = false;
};

// Waits for the owner record, then runs the follow-up where it lives.
class routed_stream final : public engine_stream {
 public:
  routed_stream(engine_sink& sink, local_start local) : sink_(sink), local_(std::move(local)) {}
  ~routed_stream() override { *alive_ = nullptr; }

  void resume() override {
    if (inner_) inner_->resume();
  }

  std::shared_ptr<routed_stream*> alive() const { return alive_; }

  void route(shard_server& s, const std::string& upstream, const generation_request& req,
             const std::string& owner, unsigned owner_shard) {
    const std::string& me = s.cluster_link()->node_id();
    if (owner.empty() || owner == me) {
      inner_ = local_(sink_);
    } else {
      inner_ = generate_on_node(s, owner, owner_shard, upstream, req, sink_);
    }
  }

 private:
  engine_sink& sink_;
  local_start local_;
  std::unique_ptr<engine_stream> inner_;
  std::shared_ptr<routed_stream*> alive_ = std::make_shared<routed_stream*>(this);
};

node_tables::~node_tables() {
  for (auto& [inbox, st] : streams) st->unlink();
  streams.clear();
}

}  // namespace

std::unique_ptr<engine_stream> route_follow_up(shard_server& s, const std::string& upstream,
                                               const generation_request& req, engine_sink& sink,
                                               local_start local) {
  cluster* c = s.cluster_link();
  RC_ASSERT(c);
  const std::string& previous = req.original.previous_response_id;
  // Sessions on this node still work without NATS; an id that cannot be a bucket key was never
  // recorded (the local path answers not found).
  if (!c->available() || !owner_key_ok(previous)) return local(sink);
  auto stream = std::make_unique<routed_stream>(sink, std::move(local));
  std::weak_ptr<routed_stream*> alive = stream->alive();
  c->js().kv_get(responses_bucket, std::string(session_owner_key_prefix) + previous,
                 [&s, alive, upstream, req](js_kv_entry&& e) {
                   auto a = alive.lock();
                   if (!a || !*a) return;
                   std::string node;
                   unsigned shard = 0;
                   if (!e.err.ok() || !e.found || !parse_session_owner(e.value, node, shard)) node.clear();
                   (*a)->route(s, upstream, req, node, shard);
                 });
  return stream;
}

std::unique_ptr<engine_stream> generate_on_node(shard_server& s, const std::string& owner,
                                                unsigned owner_shard, const std::string& upstream,
                                                const generation_request& req, engine_sink& sink) {
  cluster* c = s.cluster_link();
  RC_ASSERT(c);
  auto stream = std::make_unique<node_stream>(s, *c, owner, owner_shard, sink);
  stream->start(node_subject(owner, owner_shard, "gen"), upstream, req);
  return stream;
}

owned_event node_unavailable_event(const std::string& owner) {
  return error_event("node_unavailable",
                     "The node holding this conversation's upstream session (" + owner +
                         ") did not answer. Retry shortly.",
                     503, "server_error", {}, 1000);
}

void release_node_generations() {
  t_node.reset();
  release_node_service();
}

}  // namespace rc::server
