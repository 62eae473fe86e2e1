// Engine work run on another shard: remote streams, forwarders, embeddings (remote_generation.h).
#include "server/remote_generation.h"
#include "server/remote_node.h"

#include <deque>
#include <unordered_map>
#include <vector>

#include "base/assert.h"
#include "core/log.h"
#include "core/timer_wheel.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// How often notices a full mailbox refused are offered again.
constexpr uint64_t notice_retry_ms = 5;

class remote_stream;
class forwarder;

// A small message that must arrive even if the mailbox is full at first: kept and posted again.
struct notice {
  enum class kind : uint8_t { cancel, failed, embed_failed };
  unsigned to = 0;
  uint64_t key = 0;
  kind what = kind::cancel;
};

// One shard's side of every remote generation. Created on first use, destroyed by
// release_remote_generations (the shard stopping).
struct tables {
  explicit tables(reactor& r) : loop(r) {
    retry.set_callback([](timer&, void* self) { static_cast<tables*>(self)->retry_notices(); },
                       this);
  }
  ~tables();
  void retry_notices();

  reactor& loop;
  uint64_t next_key = 1;
  std::unordered_map<uint64_t, remote_stream*> remotes;                  // client side
  std::unordered_map<uint64_t, std::unique_ptr<forwarder>> forwarders;   // home side
  std::unordered_map<uint64_t, unique_function<void(embedding_result&&)>> embeds;  // client side
  std::vector<notice> notices;  // refused by a full mailbox: offered again by `retry`
  timer retry;
};

thread_local std::unique_ptr<tables> t_tables;

// For work that starts something (created if needed).
tables& here() {
  if (!t_tables) t_tables = std::make_unique<tables>(shard_server::current()->loop());
  RC_ASSERT(&t_tables->loop == &shard_server::current()->loop());  // released with its shard
  return *t_tables;
}

// A key unique across shards: the client shard in the top bits.
uint64_t new_key(unsigned client) { return (uint64_t{client} << 48) | here().next_key++; }

bool is_terminal(event_type t) { return t == event_type::usage || t == event_type::error; }

void on_notice(const notice& n);

bool post_notice(reactor& loop, const notice& n) {
  return loop.post(n.to, [n] { on_notice(n); });
}

// Posts `n`, or keeps it for the retry timer (behind any notice already waiting).
void send_notice(const notice& n) {
  tables& tb = here();
  if (tb.notices.empty() && post_notice(tb.loop, n)) return;
  tb.notices.push_back(n);
  if (!tb.retry.armed()) tb.loop.arm_after_ms(tb.retry, notice_retry_ms);
}

void tables::retry_notices() {
  size_t sent = 0;
  while (sent < notices.size() && post_notice(loop, notices[sent])) ++sent;
  notices.erase(notices.begin(), notices.begin() + static_cast<std::ptrdiff_t>(sent));
  if (!notices.empty()) loop.arm_after_ms(retry, notice_retry_ms);
}

// ---- client side -------------------------------------------------------------------------------

// The engine_stream the front holds. `linked_`: the home runs our stream (we acknowledge what we
// deliver, accept its events, and cancel it when destroyed).
class remote_stream final : public engine_stream {
 public:
  remote_stream(reactor& loop, unsigned home, uint64_t key, engine_sink& sink)
      : loop_(loop), home_(home), key_(key), sink_(sink) {
    here().remotes[key_] = this;
  }
  ~remote_stream() override {
    if (!t_tables) return;  // released (the shard stopped): unlinked already
    auto it = t_tables->remotes.find(key_);
    if (it == t_tables->remotes.end() || it->second != this) return;
    t_tables->remotes.erase(it);
    if (linked_) send_notice({home_, key_, notice::kind::cancel});
  }

  void resume() override {
    paused_ = false;
    drain();
  }

  // An event from the home.
  void receive(owned_event&& e) {
    if (!linked_) return;  // we gave up on it (a refused acknowledgement)
    push(std::move(e));
    drain();
  }

  // Ends the stream with `e` after what it holds; the home no longer runs it (or was cancelled).
  void end_with(owned_event e) {
    linked_ = false;
    push(std::move(e));
    drain();
  }

  void unlink() { linked_ = false; }

 private:
  void drain() {
    for (;;) {
      uint32_t delivered = 0;
      while (!paused_ && !queue_.empty()) {
        owned_event e = std::move(queue_.front());
        queue_.pop_front();
        ++delivered;
        if (is_terminal(e.base.type)) {
          // The home forgets the stream by itself; late messages find nothing. The front may
          // delete this stream from inside on_event: touch nothing after it.
          if (t_tables) t_tables->remotes.erase(key_);
          sink_.on_event(e.view());
          return;
        }
        if (!sink_.on_event(e.view())) paused_ = true;
      }
      if (delivered == 0 || !linked_) return;
      uint64_t key = key_;
      if (loop_.post(home_, [key, delivered] { acknowledge(key, delivered); })) return;
      // The home would wait for this acknowledgement forever: give up on the stream.
      RC_WARN("remote stream %llx: acknowledgement refused (mailbox to shard %u full)",
              static_cast<unsigned long long>(key_), home_);
      send_notice({home_, key_, notice::kind::cancel});
      linked_ = false;
      push(mailbox_refused_event());
    }
  }

  // Queues `e` unless the stream's last event (usage or error) is already queued: a refusal
  // noticed after the home's usage arrived must not add an error after it.
  void push(owned_event&& e) {
    if (terminal_queued_) return;
    terminal_queued_ = is_terminal(e.base.type);
    queue_.push_back(std::move(e));
  }

  static void acknowledge(uint64_t key, uint32_t n);

  reactor& loop_;
  unsigned home_;
  uint64_t key_;
  engine_sink& sink_;
  std::deque<owned_event> queue_;
  bool paused_ = false;
  bool linked_ = true;
  bool terminal_queued_ = false;
};

// Lookups for messages that arrive (nothing is created: after a release they find nothing).
remote_stream* find_remote(uint64_t key) {
  if (!t_tables) return nullptr;
  auto it = t_tables->remotes.find(key);
  return it == t_tables->remotes.end() ? nullptr : it->second;
}

void finish_embed(uint64_t key, embedding_result&& r) {
  if (!t_tables) return;
  auto it = t_tables->embeds.find(key);
  if (it == t_tables->embeds.end()) return;
  auto done = std::move(it->second);
  t_tables->embeds.erase(it);
  done(std::move(r));
}

// ---- home side ---------------------------------------------------------------------------------

// The sink of the home's stream: forwards its events to the client's shard.
class forwarder final : public engine_sink {
 public:
  forwarder(reactor& loop, unsigned client, uint64_t key, remote_start start)
      : loop_(loop), client_(client), key_(key), start_(std::move(start)) {}

  void start(shard_server& home) {
    run_ = start_(home, *this);
    if (!run_ && !over_) {  // nullptr without an error event: the client must still hear
      owned_event e = error_event("internal_error", "The engine ended the request without a result.",
                                  500, "server_error");
      on_event(e.view());
    }
  }

  bool on_event(const engine_event& ev) override {
    if (over_) return false;  // after the end or a refusal nothing more goes out
    uint64_t key = key_;
    bool posted = loop_.post(client_, [key, e = owned_event(ev)]() mutable {
      if (remote_stream* r = find_remote(key)) r->receive(std::move(e));
    });
    if (!posted) {
      // Cancel our stream (destroyed in a later turn: it is on the stack) and tell the client,
      // after the events already on their way.
      RC_WARN("remote stream %llx: event refused (mailbox to shard %u full); cancelling it",
              static_cast<unsigned long long>(key_), client_);
      send_notice({client_, key_, notice::kind::failed});
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

  void on_ack(uint32_t n) {
    unacked_ = n >= unacked_ ? 0 : unacked_ - n;
    if (paused_ && !over_ && run_ && unacked_ < remote_window / 2) {
      paused_ = false;
      run_->resume();
    }
  }

 private:
  // Forgets the stream in a later turn (the stream may be on the stack).
  void end() {
    over_ = true;
    uint64_t key = key_;
    loop_.post(loop_.shard_id(), [key] {
      if (t_tables) t_tables->forwarders.erase(key);
    });
  }

  reactor& loop_;
  unsigned client_;
  uint64_t key_;
  uint32_t unacked_ = 0;
  bool paused_ = false;
  bool over_ = false;
  remote_start start_;  // before run_: what it captured outlives the stream
  std::unique_ptr<engine_stream> run_;
};

void remote_stream::acknowledge(uint64_t key, uint32_t n) {
  if (!t_tables) return;
  auto it = t_tables->forwarders.find(key);
  if (it != t_tables->forwarders.end()) it->second->on_ack(n);
}

void on_notice(const notice& n) {
  switch (n.what) {
    case notice::kind::cancel:
      if (t_tables) t_tables->forwarders.erase(n.key);
      break;
    case notice::kind::failed:
      if (remote_stream* r = find_remote(n.key)) r->end_with(mailbox_refused_event());
      break;
    case notice::kind::embed_failed:
      finish_embed(n.key, mailbox_refused_embedding());
      break;
  }
}

tables::~tables() {
  // Remote streams stay with their owners, unlinked: they send nothing from now on. (First: a
  // forwarder's stream may own one of them and destroy it below.)
  for (auto& [key, r] : remotes) r->unlink();
  remotes.clear();
  // Forwarders' streams are cancelled while the shard's engines still exist.
  forwarders.clear();
}

}  // namespace

owned_event mailbox_refused_event() {
  return error_event("internal_error",
                     "The server could not pass the request between its threads (an internal "
                     "queue is full). Please retry your request later.",
                     503, "server_error", {}, 1000);
}

embedding_result mailbox_refused_embedding() {
  owned_event e = mailbox_refused_event();
  embedding_result r;
  r.error_code = e.error_code;
  r.error_message = e.error_message;
  r.http_status = e.base.http_status;
  r.error_type = e.error_type;
  r.retry_after_ms = e.base.retry_after_ms;
  return r;
}

std::unique_ptr<engine_stream> generate_on_shard(shard_server& self, unsigned home,
                                                 remote_start start, engine_sink& sink) {
  unsigned me = self.id();
  uint64_t key = new_key(me);
  auto stream = std::make_unique<remote_stream>(self.loop(), home, key, sink);
  bool posted = self.loop().post(home, [me, key, start = std::move(start)]() mutable {
    shard_server& h = *shard_server::current();
    auto f = std::make_unique<forwarder>(h.loop(), me, key, std::move(start));
    forwarder* raw = f.get();
    here().forwarders[key] = std::move(f);
    raw->start(h);
  });
  if (!posted) {
    // The request never reached the home: answer here, in a later turn.
    RC_WARN("remote stream %llx: start refused (mailbox to shard %u full)",
            static_cast<unsigned long long>(key), home);
    stream->unlink();
    self.loop().post(me, [key] {
      if (remote_stream* r = find_remote(key)) r->end_with(mailbox_refused_event());
    });
  }
  return stream;
}

void embed_on_shard(shard_server& self, unsigned home, remote_embed start,
                    unique_function<void(embedding_result&&)> done) {
  unsigned me = self.id();
  uint64_t key = new_key(me);
  here().embeds.emplace(key, std::move(done));
  bool posted = self.loop().post(home, [me, key, start = std::move(start)]() mutable {
    shard_server& h = *shard_server::current();
    reactor* loop = &h.loop();
    start(h, [loop, me, key](embedding_result&& r) {
      bool sent = loop->post(me, [key, r = std::move(r)]() mutable {
        finish_embed(key, std::move(r));
      });
      if (!sent) {
        RC_WARN("remote embedding %llx: result refused (mailbox to shard %u full)",
                static_cast<unsigned long long>(key), me);
        send_notice({me, key, notice::kind::embed_failed});
      }
    });
  });
  if (!posted) {
    RC_WARN("remote embedding %llx: request refused (mailbox to shard %u full)",
            static_cast<unsigned long long>(key), home);
    self.loop().post(me, [key] { finish_embed(key, mailbox_refused_embedding()); });
  }
}

void release_remote_generations() {
  release_node_generations();  // remote_node.h: node-routed streams (cluster mode)
  // Destroying a forwarder's stream may use the tables again (a fresh set, released here too).
  for (int round = 0; round < 8 && t_tables; ++round) {
    std::unique_ptr<tables> tb = std::move(t_tables);
    tb.reset();
  }
}

}  // namespace rc::server
