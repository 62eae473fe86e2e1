// The broker across nodes (broker_cluster.h): enqueue and cancel at the partition's owner, the
// stored lifecycle log. Takeover: broker_cluster_takeover.cc; watching: broker_cluster_watch.cc;
// leases: broker_leases.cc.
#include "broker_cluster.h"

#include <cerrno>
#include <charconv>
#include <chrono>

#include "core/log.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "proto/nats.h"
#include "server/cluster.h"
#include "server/generation.h"
#include "server/jetstream.h"
#include "server/nats_client.h"
#include "server/shard.h"

#include "broker_internal.h"

namespace rc::server {
namespace {

// How long a node waits for the partition's owner to answer a forwarded enqueue or cancel.
constexpr uint32_t forward_timeout_ms = 5000;
// Between two attempts at storing a terminal event that failed.
constexpr uint32_t terminal_retry_ms = 1000;

uint64_t parse_u64(std::string_view v) {
  uint64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

std::string_view outcome_name(broker::cancel_outcome o) {
  switch (o) {
    case broker::cancel_outcome::cancelled_queued:
      return "cancelled_queued";
    case broker::cancel_outcome::cancelled_processing:
      return "cancelled_processing";
    case broker::cancel_outcome::finished:
      return "finished";
    case broker::cancel_outcome::not_found:
      return "not_found";
    case broker::cancel_outcome::unavailable:
      break;
  }
  return "unavailable";
}

broker::cancel_outcome outcome_of(std::string_view name) {
  for (auto o : {broker::cancel_outcome::cancelled_queued,
                 broker::cancel_outcome::cancelled_processing, broker::cancel_outcome::finished,
                 broker::cancel_outcome::not_found}) {
    if (outcome_name(o) == name) return o;
  }
  return broker::cancel_outcome::unavailable;
}

// The answer to a forwarded enqueue: {"message_id","position"} or {"error":{...},
// "retry_after_ms"}.
std::string encode_result(const broker::enqueue_result& res) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  if (res.error) {
    w.key("error");
    w.begin_object();
    w.uint64_member("status", static_cast<uint64_t>(res.error->status));
    w.string_member("type", res.error->type);
    w.string_member("message", res.error->message);
    if (res.error->param) w.string_member("param", *res.error->param);
    if (res.error->code) w.string_member("code", *res.error->code);
    w.end_object();
    w.uint64_member("retry_after_ms", res.retry_after_ms);
  } else {
    w.string_member("message_id", res.message_id);
    w.uint64_member("position", res.position);
  }
  w.end_object();
  return std::string(out.view());
}

// A non-negative integer member (the reader gives small numbers as int64).
uint64_t uint_member(const json::value& obj, std::string_view key) {
  json::value v = obj.find(key);
  if (!v) return 0;
  if (v.kind() == json::kind::uint64) return v.get_uint64();
  if (v.kind() == json::kind::int64 && v.get_int64() >= 0)
    return static_cast<uint64_t>(v.get_int64());
  return 0;
}

std::optional<broker::enqueue_result> decode_result(json::parser& parser, std::string_view data) {
  json::parse_result r = parser.parse(data);
  if (!r.ok() || !r.root.is_object()) return std::nullopt;
  broker::enqueue_result res;
  if (json::value e = r.root.find("error"); e && e.is_object()) {
    openai::api_error err;
    err.status = static_cast<int>(uint_member(e, "status"));
    if (json::value v = e.find("type"); v && v.is_string()) err.type = v.get_string();
    if (json::value v = e.find("message"); v && v.is_string()) err.message = v.get_string();
    if (json::value v = e.find("param"); v && v.is_string())
      err.param = std::string(v.get_string());
    if (json::value v = e.find("code"); v && v.is_string()) err.code = std::string(v.get_string());
    res.error = std::move(err);
    res.retry_after_ms = uint_member(r.root, "retry_after_ms");
    return res;
  }
  json::value id = r.root.find("message_id");
  if (!id || !id.is_string()) return std::nullopt;
  res.message_id = id.get_string();
  res.position = uint_member(r.root, "position");
  return res;
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

broker_cluster::broker_cluster(broker& b, cluster& c)
    : broker_(b), shard_(b.shard_), cluster_(c) {
  retry_.bind<broker_cluster, &broker_cluster::retry_chains>(this);
  replay_retry_.bind<broker_cluster, &broker_cluster::resume_replays>(this);
  if (shard_.id() == 0) leases_ = std::make_unique<broker_leases>(shard_, cluster_);
}

broker_cluster::~broker_cluster() {
  *alive_ = false;
  shard_.loop().cancel_timer(retry_);
  shard_.loop().cancel_timer(replay_retry_);
  for (auto& [p, part] : parts_) {
    if (part.consumer) cluster_.js().stop_consumer(part.consumer);
    if (part.enqueue_sid) cluster_.nats().unsubscribe(part.enqueue_sid);
    if (part.cancel_sid) cluster_.nats().unsubscribe(part.cancel_sid);
  }
  leases_.reset();
}

uint32_t broker_cluster::partition_of(std::string_view user_id) const {
  uint32_t partitions = std::max<uint32_t>(1, cluster_.broker_partitions());
  return static_cast<uint32_t>(broker_fnv1a(user_id) % partitions);
}

std::string broker_cluster::user_tag(std::string_view user_id) {
  static constexpr char hex[] = "0123456789abcdef";
  uint64_t h = broker_fnv1a(user_id);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = hex[h & 0xf];
  return out;
}

bool broker_cluster::working(uint32_t p) const {
  auto it = parts_.find(p);
  return it != parts_.end() && it->second.working;
}

bool broker_cluster::current(uint32_t p, uint64_t epoch) const {
  auto it = parts_.find(p);
  return it != parts_.end() && it->second.epoch == epoch;
}

broker::enqueue_result broker_cluster::unavailable(std::string message) const {
  broker::enqueue_result res;
  openai::api_error e;
  e.status = 503;
  e.type = "server_error";
  e.code = "broker_unavailable";
  e.message = std::move(message);
  res.error = std::move(e);
  res.retry_after_ms = std::max<uint64_t>(1000, cluster_.retry_after_ms());
  return res;
}

// ---- enqueue ----

void broker_cluster::enqueue(broker_request&& req,
                             unique_function<void(broker::enqueue_result&&)> done) {
  if (!cluster_.available()) {
    done(unavailable("The broker cannot store messages: " +
                     std::string(cluster_.unavailable_reason())));
    return;
  }
  uint32_t p = partition_of(req.user_id);
  if (working(p)) {
    store(p, std::move(req), std::move(done));
  } else {
    forward(p, std::move(req), std::move(done));
  }
}

void broker_cluster::store(uint32_t p, broker_request&& req,
                           unique_function<void(broker::enqueue_result&&)> done) {
  uint64_t pending_for_user = 0;
  for (const pending_store& s : pending_) pending_for_user += s.req.user_id == req.user_id;
  // Refused before storing: a stored message is an accepted one.
  if (auto refused = broker_.refuse_full(req.user_id, pending_for_user)) {
    done(std::move(*refused));
    return;
  }
  pending_store& s = pending_.emplace_back();
  s.partition = p;
  s.epoch = parts_[p].epoch;
  s.id = mint_id(shard_, "msg_");
  s.req = std::move(req);
  s.done = std::move(done);
  uint64_t deadline = s.req.deadline_ms ? unix_ms() + s.req.deadline_ms : 0;
  std::string headers = nats::make_headers({{"Nats-Msg-Id", s.id},
                                            {"Rc-User", user_tag(s.req.user_id)},
                                            {"Rc-Deadline", std::to_string(deadline)}});
  std::string subject = "rc.bq." + std::to_string(p) + "." + s.id;
  cluster_.js().publish(subject, headers, s.req.body,
                        [this, alive = alive_, id = s.id](js_pub_ack&& ack) {
                          if (!*alive) return;
                          on_stored(id, ack.err.ok(), ack.seq);
                        });
}

void broker_cluster::on_stored(const std::string& id, bool ok, uint64_t seq) {
  for (pending_store& s : pending_) {
    if (s.id != id) continue;
    s.st = ok ? pending_store::state::stored : pending_store::state::failed;
    s.work_seq = seq;
    break;
  }
  // Answered (and queued) in the order they were stored: a user's messages keep their order.
  while (!pending_.empty() && pending_.front().st != pending_store::state::publishing) {
    pending_store s = std::move(pending_.front());
    pending_.pop_front();
    if (s.st == pending_store::state::failed) {
      s.done(unavailable("The broker could not store the message (NATS JetStream did not "
                         "acknowledge it); retry later"));
      continue;
    }
    if (!current(s.partition, s.epoch)) {
      // Stored, but the partition moved meanwhile: the next owner runs it.
      broker::enqueue_result res;
      res.message_id = s.id;
      s.done(std::move(res));
      continue;
    }
    broker::accepted a;
    a.id = s.id;
    a.partition = static_cast<int32_t>(s.partition);
    a.work_seq = s.work_seq;
    s.done(broker_.accept(std::move(s.req), std::move(a)));
  }
}

void broker_cluster::forward(uint32_t p, broker_request&& req,
                             unique_function<void(broker::enqueue_result&&)> done) {
  std::string headers = nats::make_headers({{"Rc-Timeout-Ms", std::to_string(req.deadline_ms)}});
  cluster_.nats().request(
      "rc.broker.enqueue." + std::to_string(p), headers, req.body, forward_timeout_ms,
      [this, alive = alive_, done = std::move(done)](nats_reply&& r) mutable {
        if (!*alive) return;
        if (r.error != 0) {
          done(unavailable(r.error == EHOSTUNREACH
                               ? "No node works this user's partition right now; retry later"
                               : "The node working this user's partition did not answer; retry "
                                 "later"));
          return;
        }
        auto res = decode_result(shard_.json_parser(), r.data);
        done(res ? std::move(*res) : unavailable("The partition's owner answered nonsense"));
      });
}

void broker_cluster::on_enqueue_request(uint32_t p, const nats_msg& msg) {
  if (msg.reply.empty()) return;
  std::string reply(msg.reply);
  auto answer = [this, alive = alive_, reply](broker::enqueue_result&& res) {
    if (!*alive) return;
    cluster_.nats().publish(reply, "", "", encode_result(res));
  };
  if (!working(p)) {
    answer(unavailable("This node no longer works the user's partition; retry"));
    return;
  }
  broker_request req;
  req.body = std::string(msg.data);
  json::parse_result r = shard_.json_parser().parse(req.body);
  if (!r.ok()) {
    broker::enqueue_result res;
    res.error = openai::invalid_request("The forwarded message is not JSON");
    answer(std::move(res));
    return;
  }
  if (auto err = parse_broker_request(shard_, r.root, req)) {
    broker::enqueue_result res;
    if (!err->code) err->code = "invalid_request";
    res.error = std::move(*err);
    answer(std::move(res));
    return;
  }
  req.deadline_ms = parse_u64(msg.header("Rc-Timeout-Ms"));
  store(p, std::move(req), std::move(answer));
}

// ---- cancel ----

void broker_cluster::cancel(std::string user_id, std::string message_id,
                            unique_function<void(broker::cancel_outcome)> done) {
  uint32_t p = partition_of(user_id);
  if (working(p)) {
    owner_cancel(user_id, message_id, std::move(done));
    return;
  }
  if (!cluster_.available()) {
    done(broker::cancel_outcome::unavailable);
    return;
  }
  byte_buffer body;
  json::writer w(body);
  w.begin_object();
  w.string_member("user_id", user_id);
  w.string_member("message_id", message_id);
  w.end_object();
  cluster_.nats().request("rc.broker.cancel." + std::to_string(p), "", body.view(),
                          forward_timeout_ms,
                          [alive = alive_, done = std::move(done)](nats_reply&& r) mutable {
                            if (!*alive) return;
                            done(r.error != 0 ? broker::cancel_outcome::unavailable
                                              : outcome_of(r.data));
                          });
}

void broker_cluster::on_cancel_request(uint32_t p, const nats_msg& msg) {
  if (msg.reply.empty()) return;
  std::string reply(msg.reply);
  auto answer = [this, alive = alive_, reply](broker::cancel_outcome o) {
    if (*alive) cluster_.nats().publish(reply, "", "", outcome_name(o));
  };
  json::parse_result r = shard_.json_parser().parse(msg.data);
  json::value user = r.ok() ? r.root.find("user_id") : json::value();
  json::value id = r.ok() ? r.root.find("message_id") : json::value();
  if (!working(p) || !user || !user.is_string() || !id || !id.is_string()) {
    answer(broker::cancel_outcome::unavailable);
    return;
  }
  owner_cancel(std::string(user.get_string()), std::string(id.get_string()), std::move(answer));
}

void broker_cluster::owner_cancel(const std::string& user_id, const std::string& message_id,
                                  unique_function<void(broker::cancel_outcome)> done) {
  broker::cancel_outcome o = broker_.home_cancel(user_id, message_id);
  if (o != broker::cancel_outcome::not_found) {
    done(o);
    return;
  }
  // Not here: it may have finished on a previous owner. Its stored log says.
  cluster_.js().get_last(
      broker_log_stream, "rc.bl." + message_id,
      [alive = alive_, tag = user_tag(user_id), done = std::move(done)](js_stored_msg&& m) mutable {
        if (!*alive) return;
        if (!m.found) {
          done(m.err.error != 0 ? broker::cancel_outcome::unavailable
                                : broker::cancel_outcome::not_found);
          return;
        }
        auto h = nats::header_block::parse(m.headers);
        std::string_view event = h ? h->get("Rc-Event") : std::string_view();
        bool mine = h && h->get("Rc-User") == tag;
        done(mine && (event == "done" || event == "error") ? broker::cancel_outcome::finished
                                                           : broker::cancel_outcome::not_found);
      });
}

// ---- the stored log ----

bool broker_cluster::store_event(broker::message& m, uint64_t seq, std::string_view type,
                                 std::string_view json, bool terminal) {
  uint32_t p = static_cast<uint32_t>(m.partition);
  auto it = parts_.find(p);
  if (it == parts_.end()) return false;  // let go: the next owner writes the rest
  auto [c, fresh] = chains_.try_emplace(m.id);
  log_chain& ch = c->second;
  if (fresh || ch.epoch != it->second.epoch) {
    ch = log_chain();
    ch.partition = p;
    ch.epoch = it->second.epoch;
    ch.last_stored = m.log_stream_seq;
  }
  ch.work_seq = m.work_seq;
  log_event e;
  e.seq = seq;
  e.terminal = terminal;
  e.type = std::string(type);
  e.data = std::string(json);
  e.user = user_tag(m.user_id);
  e.attempts = m.attempts;
  ch.events.push_back(std::move(e));
  send_next(m.id);
  return true;
}

void broker_cluster::send_next(const std::string& id) {
  auto c = chains_.find(id);
  if (c == chains_.end()) return;
  log_chain& ch = c->second;
  if (ch.in_flight || ch.failed || ch.events.empty()) return;
  if (!current(ch.partition, ch.epoch)) {
    chains_.erase(c);
    return;
  }
  const log_event& e = ch.events.front();
  std::string seq_text = std::to_string(e.seq);
  // Nats-Msg-Id: a resend after a lost ack is stored once. The expected last sequence chains
  // the message's events: a write of a stale owner (the partition moved on) is refused.
  std::string headers =
      nats::make_headers({{"Nats-Msg-Id", id + "." + seq_text},
                          {"Nats-Expected-Last-Subject-Sequence", std::to_string(ch.last_stored)},
                          {"Rc-Seq", seq_text},
                          {"Rc-Event", e.type},
                          {"Rc-User", e.user},
                          {"Rc-Attempt", std::to_string(e.attempts)}});
  ch.in_flight = true;
  cluster_.js().publish(
      "rc.bl." + id, headers, e.data,
      [this, alive = alive_, id, epoch = ch.epoch](js_pub_ack&& ack) {
        if (!*alive) return;
        auto at = chains_.find(id);
        if (at == chains_.end() || at->second.epoch != epoch) return;
        log_chain& chain = at->second;
        chain.in_flight = false;
        if (!current(chain.partition, chain.epoch)) {
          chains_.erase(at);
          return;
        }
        if (!ack.err.ok()) {
          if (ack.err.err_code == js_err_wrong_last_sequence) {
            // Another node wrote this message's log: this claim is stale (the lease keeper
            // finds out at its next renewal). Write nothing more.
            RC_WARN("broker: message %s: its stored log moved on (another owner); not storing "
                    "its events here",
                    id.c_str());
            chains_.erase(at);
            return;
          }
          chain.failed = true;  // NATS away or no answer: sent again (same Nats-Msg-Id) shortly
          if (!retry_.armed()) shard_.loop().arm_after_ms(retry_, terminal_retry_ms);
          return;
        }
        chain.last_stored = ack.seq;
        log_event stored = std::move(chain.events.front());
        chain.events.pop_front();
        if (!stored.terminal) {
          broker_.on_event_stored(id, stored.seq);
          send_next(id);
          return;
        }
        // Only now may the work item go: a takeover finds the terminal event first.
        uint64_t work_seq = chain.work_seq;
        chains_.erase(at);
        if (work_seq) cluster_.js().delete_msg(broker_work_stream, work_seq, [](js_error&&) {});
        broker_.on_event_stored(id, stored.seq);
      });
}

void broker_cluster::retry_chains() {
  std::vector<std::string> ids;
  for (auto& [id, ch] : chains_) {
    if (!ch.failed) continue;
    ch.failed = false;
    ids.push_back(id);
  }
  for (const std::string& id : ids) send_next(id);
}

}  // namespace rc::server
