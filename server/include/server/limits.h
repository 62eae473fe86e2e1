// Per-client budgets that hold across shards: request rates (token buckets with a burst) and
// concurrent stream caps, for API keys and for anonymous clients (per client address, or one
// budget shared by all anonymous clients).
//
// Every budget has a home shard (an API key: a hash of its index; an address: a hash of its
// prefix; modulo the shard count) that holds the authoritative token bucket and stream count.
// Connections are spread over shards by the kernel, so most requests arrive elsewhere:
// * Requests. A non-home shard serves them from a lease: tokens the home granted it, valid for
//   lease_ms. When the lease is empty the request waits for a message round trip to the home,
//   which takes a token (refreshing the lease when the bucket has plenty) or refuses with a
//   Retry-After computed from its own state. A shard whose lease runs low asks for more ahead of
//   time, so a busy key stays local almost always; keys too slow to lease (a lease is at most a
//   quarter of the burst and a twentieth of a second's rate, and only taken from the upper half
//   of the bucket) always ask, which costs little because they are slow.
// * Exactness: the home counts every lease it granted as spent until the lease expires, and its
//   bucket never refills past burst minus those outstanding tokens. Every request admitted
//   anywhere therefore took a token that was in the home's bucket, and the requests admitted in
//   any window of w seconds number at most burst + rate × w, however they are spread. Unused
//   leased tokens simply expire (the home refills past them from then on).
// * Streams. A stream slot is taken from the home (synchronously on the home shard, by a message
//   round trip elsewhere) and released when the stream ends, however it ends. An answer that
//   arrives for a stream that has already ended gives its slot straight back.
// * Single-shard processes: every budget is home; no message is ever sent.
//
// Anonymous addresses are IPv4 /32 or IPv6 /64. Each shard keeps at most address_entries_max of
// them (least recently used forgotten beyond; an entry with streams open is kept).
//
// Thread-safety: one shard_limits per shard, used on its thread; other shards reach it only by
// message (through shard_server::current()).
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/reactor.h"
#include "core/unique_function.h"

namespace rc::server {

// Whose budget.
struct limit_subject {
  enum class kind : uint8_t { key, anonymous, address };
  kind what = kind::anonymous;
  uint32_t key_index = 0;             // kind::key
  std::array<uint8_t, 16> address{};  // kind::address: IPv6 /64 prefix or IPv4-mapped /32
  bool operator==(const limit_subject&) const = default;
  uint64_t hash() const;
};

// What the budget allows. Zero rps: requests are not limited; zero streams_max: no cap.
struct limit_rule {
  double rps = 0;
  double burst = 1;
  uint32_t streams_max = 0;
};

struct rate_decision {
  bool allowed = true;
  uint64_t limit = 0;           // requests per minute (x-ratelimit-limit-requests)
  uint64_t remaining = 0;       // whole tokens left
  uint64_t reset_ms = 0;        // until the bucket is full again
  uint64_t retry_after_ms = 0;  // when refused: until a token is back
};

class shard_limits {
 public:
  static constexpr uint64_t lease_ms = 250;
  static constexpr size_t address_entries_max = 16384;

  explicit shard_limits(reactor& r);

  unsigned home_of(const limit_subject& s) const;
  bool is_home(const limit_subject& s) const { return home_of(s) == me_; }

  // ---- requests ----
  // Takes a token if this shard can decide now (it is the home, or holds a live lease); nullopt:
  // only the home can tell, call ask().
  std::optional<rate_decision> try_take(const limit_subject& s, const limit_rule& r,
                                        uint64_t now_us);
  // Whether try_take() would decide now (without taking anything).
  bool can_decide(const limit_subject& s, uint64_t now_us);
  // Asks the home for a token; `done` runs later on this shard with the decision (the token, if
  // allowed, is taken for the caller).
  void ask(const limit_subject& s, const limit_rule& r,
           unique_function<void(const rate_decision&)> done);

  // ---- streams ----
  // On the home shard: takes a slot if fewer than r.streams_max are open.
  bool try_open_stream(const limit_subject& s, const limit_rule& r);
  // Asks the home (which may be this shard) for a slot by message; `done(granted)` runs in a
  // later turn on this shard unless
  // abandon_stream() was called first (a granted slot is then released at once). Returns a handle.
  uint64_t open_stream_remote(const limit_subject& s, const limit_rule& r,
                              unique_function<void(bool)> done);
  void abandon_stream(uint64_t handle);
  // Gives a slot back (on the home now, or by message).
  void close_stream(const limit_subject& s);
  // Open streams of `s` counted on this shard (the home's count; tests and metrics).
  uint32_t streams_open(const limit_subject& s);

 private:
  struct grant {
    uint32_t count;
    uint64_t until_us;
  };
  struct entry {
    // Home side.
    double tokens = -1;  // < 0: never used (starts full)
    uint64_t last_us = 0;
    uint32_t streams = 0;
    std::vector<grant> out;  // leases granted to other shards, live until their until_us
    // Lease side (a non-home shard): at most two grants, used oldest first.
    grant lease[2] = {{0, 0}, {0, 0}};
    bool refilling = false;
    uint64_t refused_until_us = 0;  // the home's last refusal: no token there before this
    double home_tokens = 0;         // the home's bucket at its last answer (for headers)
    uint64_t home_seen_us = 0;
    bool busy() const { return streams > 0 || !out.empty(); }
  };
  struct answer {
    rate_decision d;
    uint32_t lease = 0;  // extra tokens granted to the asking shard
    uint64_t until_us = 0;
    double home_tokens = 0;
  };
  struct address_hash {
    size_t operator()(const std::array<uint8_t, 16>& a) const;
  };
  struct address_slot {
    entry e;
    std::list<std::array<uint8_t, 16>>::iterator lru;
  };

  entry& find(const limit_subject& s);
  // Home side: refills to now (leases expiring on the way), then takes one token (if `need`) and
  // grants up to `want` more as a lease.
  answer take_home(entry& e, const limit_rule& r, uint64_t now_us, bool need, uint32_t want);
  static void refill(entry& e, const limit_rule& r, uint64_t now_us);
  static uint32_t lease_size(const limit_rule& r);
  void on_answer(const limit_subject& s, uint64_t ask_id, const answer& a);
  void maybe_refill(const limit_subject& s, entry& e, const limit_rule& r);
  void post(unsigned to, unique_function<void()> m);

  reactor& reactor_;
  unsigned me_;
  unsigned shards_;
  std::vector<entry> keys_;
  entry anonymous_;
  std::unordered_map<std::array<uint8_t, 16>, address_slot, address_hash> addresses_;
  std::list<std::array<uint8_t, 16>> lru_;  // most recent first
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, unique_function<void(const rate_decision&)>> asks_;
  std::unordered_map<uint64_t, unique_function<void(bool)>> stream_asks_;
};

}  // namespace rc::server
