// Follow-ups routed to the node that retains their upstream session (remote_node.h): the
// owner's side (the shard's service on rc.node.<node>.s<shard>.*, the owner records).
#include <unordered_map>

#include "core/log.h"
#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/nats_client.h"
#include "server/node_wire.h"
#include "server/record_codec.h"
#include "server/remote_generation.h"
#include "server/remote_node.h"
#include "server/responses_ws_internal.h"
#include "server/shard.h"

namespace rc::server {
namespace {

bool is_terminal(event_type t) { return t == event_type::usage || t == event_type::error; }

class node_forwarder;

// One shard's owner side. Created on first use, destroyed by release_node_service.
struct owner_tables {
  std::unordered_map<std::string, std::unique_ptr<node_forwarder>> forwarders;  // by inbox
  cluster* serving = nullptr;  // the cluster whose subjects this shard answers on
};

thread_local std::unique_ptr<owner_tables> t_owner;

owner_tables& tables() {
  if (!t_owner) t_owner = std::make_unique<owner_tables>();
  return *t_owner;
}

// --------------------------------------------------------------------------------

// The sink of the owner's stream: publishes each event to the client's inbox.
class node_forwarder final : public engine_sink {
 public:
  node_forwarder(shard_server& s, cluster& c, std::string inbox)
      : shard_(s), cluster_(c), inbox_(std::move(inbox)) {
    tick_.bind<node_forwarder, &node_forwarder::on_tick>(this);
    heard_ms_ = shard_.loop().now_ms();
    shard_.loop().arm_after_ms(tick_, node_keepalive_ms);
  }
  ~node_forwarder() { shard_.loop().cancel_timer(tick_); }

  void start(std::string upstream, generation_request req) {
    req_ = std::move(req);
    cluster_.nats().publish(inbox_, {}, {}, "A");
    ws_engine* e = ws_engine::on_this_shard(upstream);
    if (!e) {
      owned_event err = error_event("previous_response_not_found",
                                    "Previous response with id '" +
                                        req_.original.previous_response_id + "' not found.",
                                    400, "invalid_request_error", "previous_response_id");
      on_event(err.view());
      return;
    }
    keep_ = shard_.share_engine(*e);
    run_ = e->run_here(req_, *this);
  }

  bool on_event(const engine_event& ev) override {
    if (over_) return false;
    std::string m = "E";
    encode_node_event(ev, m);
    if (!cluster_.nats().publish(inbox_, {}, {}, m)) {
      // The client cannot hear the rest: its silence timer ends its stream with an error.
      RC_WARN("node stream %s: event refused by NATS; cancelling", inbox_.c_str());
      end();
      return false;
    }
    if (is_terminal(ev.type)) {
      end();
      return false;
    }
    if (++unacked_ >= remote_window) {
      paused_ = true;
      return false;
    }
    return true;
  }

  void on_ack(uint64_t n) {
    heard_ms_ = shard_.loop().now_ms();
    unacked_ = n >= unacked_ ? 0 : unacked_ - static_cast<uint32_t>(n);
    if (paused_ && !over_ && run_ && unacked_ < remote_window / 2) {
      paused_ = false;
      run_->resume();
    }
  }

  // Forgets the stream in a later turn (the stream may be on the stack).
  void end() {
    over_ = true;
    std::string inbox = inbox_;
    shard_.loop().post(shard_.id(), [inbox] {
      if (t_owner) t_owner->forwarders.erase(inbox);
    });
  }

 private:
  void on_tick() {
    if (over_) return;
    if (shard_.loop().now_ms() - heard_ms_ >= node_silence_ms) {
      RC_WARN("node stream %s: the client's node is silent; cancelling", inbox_.c_str());
      end();
      return;
    }
    cluster_.nats().publish(inbox_, {}, {}, "K");
    shard_.loop().arm_after_ms(tick_, node_keepalive_ms);
  }

  shard_server& shard_;
  cluster& cluster_;
  std::string inbox_;
  timer tick_;
  uint64_t heard_ms_ = 0;
  uint32_t unacked_ = 0;
  bool paused_ = false;
  bool over_ = false;
  generation_request req_;       // before run_: the stream may refer to it
  std::shared_ptr<engine> keep_;
  std::unique_ptr<engine_stream> run_;
};

void on_request(shard_server& s, cluster& c, const nats_msg& m) {
  if (m.reply.empty()) return;
  std::string inbox(m.reply);
  owner_tables& tb = tables();
  if (tb.forwarders.count(inbox)) return;  // a duplicate
  std::string upstream;
  generation_request req;
  record_error err = decode_node_request(m.data, m.data.size(), s.loop().now_ms(), upstream, req);
  auto fwd = std::make_unique<node_forwarder>(s, c, inbox);
  node_forwarder* f = fwd.get();
  tb.forwarders[inbox] = std::move(fwd);
  if (err != record_error::none) {
    RC_WARN("node request: malformed (%.*s)", static_cast<int>(to_string(err).size()),
            to_string(err).data());
    owned_event e = error_event("node_protocol_error",
                                "The node holding this conversation could not read the request.",
                                502, "server_error");
    f->on_event(e.view());
    return;
  }
  f->start(std::move(upstream), std::move(req));
}

void on_control(const nats_msg& m) {
  if (!t_owner || m.data.empty()) return;
  std::string_view d = m.data;
  char kind = d[0];
  d.remove_prefix(1);
  uint64_t n = 0;
  if (kind == 'a') {
    record_codec::reader r{d};
    n = r.varint();
    if (!r.ok()) return;
    d.remove_prefix(r.pos);
  }
  auto it = t_owner->forwarders.find(std::string(d));
  if (it == t_owner->forwarders.end()) return;
  if (kind == 'a') it->second->on_ack(n);
  if (kind == 'c') t_owner->forwarders.erase(it);
}

void serve(shard_server& s, cluster& c) {
  owner_tables& tb = tables();
  if (tb.serving == &c) return;
  tb.serving = &c;
  c.nats().subscribe(node_subject(c.node_id(), s.id(), "gen"), {},
                     [&s, &c](const nats_msg& m) { on_request(s, c, m); });
  c.nats().subscribe(node_subject(c.node_id(), s.id(), "ctl"), {},
                     [](const nats_msg& m) { on_control(m); });
}

}  // namespace

bool parse_session_owner(std::string_view v, std::string& node, unsigned& shard) {
  if (v.size() < 5 || v.substr(0, 2) != "1 ") return false;
  v.remove_prefix(2);
  size_t sp = v.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return false;
  node = std::string(v.substr(0, sp));
  std::string_view n = v.substr(sp + 1);
  if (n.empty() || n.size() > 6) return false;
  shard = 0;
  for (char ch : n) {
    if (ch < '0' || ch > '9') return false;
    shard = shard * 10 + static_cast<unsigned>(ch - '0');
  }
  return true;
}

void note_session_owner(shard_server& s, const std::string& id) {
  cluster* c = s.cluster_link();
  if (!c) return;
  serve(s, *c);
  std::string value = "1 " + c->node_id() + " " + std::to_string(s.id());
  c->js().kv_put(responses_bucket, std::string(session_owner_key_prefix) + id, value,
                 [id](js_kv_entry&& e) {
                   if (!e.err.ok())
                     RC_WARN("session owner of %s not recorded: %s", id.c_str(),
                             e.err.description.c_str());
                 });
}

std::string node_subject(std::string_view node, unsigned shard, std::string_view what) {
  std::string s = "rc.node.";
  s.append(node).append(".s").append(std::to_string(shard)).append(".").append(what);
  return s;
}

void release_node_service() { t_owner.reset(); }

}  // namespace rc::server
