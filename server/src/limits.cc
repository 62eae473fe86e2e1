#include "server/limits.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/log.h"
#include "server/shard.h"

namespace rc::server {
namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_address(const std::array<uint8_t, 16>& a) {
  uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, a.data(), 8);
  std::memcpy(&lo, a.data() + 8, 8);
  return mix(hi ^ mix(lo));
}

shard_limits& here() {
  return shard_server::current()->budgets();
}

double burst_of(const limit_rule& r) {
  return std::max(r.burst, 1.0);
}

uint64_t ms_for(double tokens, double rps) {
  return static_cast<uint64_t>(std::ceil(std::max(tokens, 0.0) / rps * 1000));
}

}  // namespace

uint64_t limit_subject::hash() const {
  switch (what) {
    case kind::key:
      return mix(key_index + 1);
    case kind::anonymous:
      return 0;
    case kind::address:
      return hash_address(address);
  }
  return 0;
}

size_t shard_limits::address_hash::operator()(const std::array<uint8_t, 16>& a) const {
  return hash_address(a);
}

shard_limits::shard_limits(reactor& r) : reactor_(r), me_(r.shard_id()), shards_(r.shard_count()) {}

unsigned shard_limits::home_of(const limit_subject& s) const {
  return shards_ == 1 ? 0 : static_cast<unsigned>(s.hash() % shards_);
}

void shard_limits::post(unsigned to, unique_function<void()> m) {
  // A refused post means the mailbox and its backlog are both full (tens of thousands of
  // messages): the process is far past overload; say so rather than fail silently.
  if (!reactor_.post(to, std::move(m))) RC_WARN("limits: message to shard %u dropped", to);
}

shard_limits::entry& shard_limits::find(const limit_subject& s) {
  switch (s.what) {
    case limit_subject::kind::key:
      if (keys_.size() <= s.key_index) keys_.resize(s.key_index + 1);
      return keys_[s.key_index];
    case limit_subject::kind::anonymous:
      return anonymous_;
    case limit_subject::kind::address:
      break;
  }
  if (auto it = addresses_.find(s.address); it != addresses_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.e;
  }
  // Forget the least recently used addresses beyond the cap; one with streams open or leases
  // out is kept (its counts matter), looking at a few candidates at most.
  for (int tries = 0; addresses_.size() >= address_entries_max && tries < 8; ++tries) {
    auto victim = addresses_.find(lru_.back());
    if (victim->second.e.busy()) {
      lru_.splice(lru_.begin(), lru_, victim->second.lru);
      continue;
    }
    lru_.pop_back();
    addresses_.erase(victim);
  }
  lru_.push_front(s.address);
  return addresses_.emplace(s.address, address_slot{entry{}, lru_.begin()}).first->second.e;
}

// ---- the home's bucket ----

uint32_t shard_limits::lease_size(const limit_rule& r) {
  double n = std::min({burst_of(r) / 4, r.rps * 0.05, double{1 << 20}});
  return n >= 1 ? static_cast<uint32_t>(n) : 0;
}

void shard_limits::refill(entry& e, const limit_rule& r, uint64_t now_us) {
  double burst = burst_of(r);
  if (e.tokens < 0) {
    e.tokens = burst;
    e.last_us = now_us;
  }
  // The bucket never refills past burst minus the leases still out; as leases expire (in time
  // order) the ceiling rises, from that moment on.
  for (;;) {
    size_t expiring = e.out.size();
    uint64_t t = now_us;
    double outstanding = 0;
    for (size_t i = 0; i < e.out.size(); ++i) {
      outstanding += e.out[i].count;
      if (e.out[i].until_us <= t) {
        t = e.out[i].until_us;
        expiring = i;
      }
    }
    if (t > e.last_us) {
      double refilled = e.tokens + r.rps * static_cast<double>(t - e.last_us) / 1e6;
      e.tokens = std::max(e.tokens, std::min(burst - outstanding, refilled));
      e.last_us = t;
    }
    e.tokens = std::min(e.tokens, burst - outstanding);
    if (expiring == e.out.size()) break;
    e.out.erase(e.out.begin() + static_cast<ptrdiff_t>(expiring));
  }
}

shard_limits::answer shard_limits::take_home(entry& e, const limit_rule& r, uint64_t now_us,
                                             bool need, uint32_t want) {
  refill(e, r, now_us);
  double burst = burst_of(r);
  answer a;
  a.d.limit = static_cast<uint64_t>(std::llround(r.rps * 60));
  if (need) {
    if (e.tokens >= 1) {
      e.tokens -= 1;
    } else {
      a.d.allowed = false;
      uint64_t retry = ms_for(1 - e.tokens, r.rps);
      // Leases out may hold the ceiling below one token: then the first expiry frees room.
      double outstanding = 0;
      uint64_t first_expiry = UINT64_MAX;
      for (const grant& g : e.out) {
        outstanding += g.count;
        first_expiry = std::min(first_expiry, g.until_us);
      }
      if (burst - outstanding < 1 && first_expiry != UINT64_MAX)
        retry = std::max(retry, (first_expiry - now_us + 999) / 1000);
      a.d.retry_after_ms = std::max<uint64_t>(retry, 1);
    }
  }
  if (a.d.allowed && want > 0) {
    // Lease only from the upper half of the bucket, so a lease never starves the other shards.
    double spare = e.tokens - burst / 2;
    if (spare >= 1) {
      uint32_t g = spare >= want ? want : static_cast<uint32_t>(spare);
      e.tokens -= g;
      a.lease = g;
      a.until_us = now_us + lease_ms * 1000;
      e.out.push_back({g, a.until_us});
    }
  }
  a.d.remaining = static_cast<uint64_t>(std::max(e.tokens, 0.0));
  a.d.reset_ms = ms_for(burst - e.tokens, r.rps);
  a.home_tokens = e.tokens;
  return a;
}

// ---- requests ----

bool shard_limits::can_decide(const limit_subject& s, uint64_t now_us) {
  if (is_home(s)) return true;
  entry& e = find(s);
  if (now_us < e.refused_until_us) return true;  // try_take refuses locally until then
  for (const grant& g : e.lease)
    if (g.count > 0 && g.until_us > now_us) return true;
  return false;
}

std::optional<rate_decision> shard_limits::try_take(const limit_subject& s, const limit_rule& r,
                                                    uint64_t now_us) {
  entry& e = find(s);
  if (is_home(s)) return take_home(e, r, now_us, true, 0).d;
  grant* use = nullptr;
  uint32_t left = 0;
  for (grant& g : e.lease) {
    if (g.until_us <= now_us) g.count = 0;  // expired: the home no longer counts it either
    if (g.count == 0) continue;
    left += g.count;
    if (!use || g.until_us < use->until_us) use = &g;
  }
  if (!use) {
    // The home said no token before refused_until_us; none can appear there sooner (leases out
    // never return early), so refusing here until then is exact and saves the round trips.
    if (now_us >= e.refused_until_us) return std::nullopt;
    rate_decision d;
    d.allowed = false;
    d.limit = static_cast<uint64_t>(std::llround(r.rps * 60));
    d.retry_after_ms = (e.refused_until_us - now_us + 999) / 1000;
    d.reset_ms = ms_for(burst_of(r), r.rps);
    return d;
  }
  --use->count;
  --left;
  double burst = burst_of(r);
  rate_decision d;
  d.limit = static_cast<uint64_t>(std::llround(r.rps * 60));
  // What this shard holds plus what the home had at its last answer, refilled since.
  double home = e.home_tokens + r.rps * static_cast<double>(now_us - e.home_seen_us) / 1e6;
  double remaining = std::min(burst, left + std::max(home, 0.0));
  d.remaining = static_cast<uint64_t>(remaining);
  d.reset_ms = ms_for(burst - remaining, r.rps);
  maybe_refill(s, e, r);
  return d;
}

void shard_limits::maybe_refill(const limit_subject& s, entry& e, const limit_rule& r) {
  uint32_t size = lease_size(r);
  if (size == 0 || e.refilling) return;
  uint32_t left = e.lease[0].count + e.lease[1].count;
  if (left > size / 2) return;
  e.refilling = true;
  unsigned from = me_;
  post(home_of(s), [s, r, from, size] {
    shard_limits& home = here();
    answer a = home.take_home(home.find(s), r, home.reactor_.now_us(), false, size);
    home.post(from, [s, a] { here().on_answer(s, 0, a); });
  });
}

void shard_limits::ask(const limit_subject& s, const limit_rule& r,
                       unique_function<void(const rate_decision&)> done) {
  uint64_t id = next_id_++;
  asks_.emplace(id, std::move(done));
  unsigned from = me_;
  uint32_t want = lease_size(r);
  post(home_of(s), [s, r, from, id, want] {
    shard_limits& home = here();
    answer a = home.take_home(home.find(s), r, home.reactor_.now_us(), true, want);
    home.post(from, [s, id, a] { here().on_answer(s, id, a); });
  });
}

void shard_limits::on_answer(const limit_subject& s, uint64_t ask_id, const answer& a) {
  entry& e = find(s);
  uint64_t now = reactor_.now_us();
  if (a.lease > 0 && a.until_us > now) {
    grant* slot = nullptr;
    for (grant& g : e.lease) {
      if (g.until_us <= now) g.count = 0;
      if (g.count == 0 && !slot) slot = &g;
    }
    if (slot) {
      *slot = {a.lease, a.until_us};
    } else {
      // Both slots live: join the later one, keeping its (earlier) expiry; the home counts these
      // tokens until their own, later, expiry, so stopping earlier is safe.
      grant& later = e.lease[0].until_us > e.lease[1].until_us ? e.lease[0] : e.lease[1];
      later.count += a.lease;
    }
  }
  e.home_tokens = a.home_tokens;
  e.home_seen_us = now;
  if (!a.d.allowed) e.refused_until_us = now + (a.d.retry_after_ms - 1) * 1000;
  if (ask_id == 0) {
    e.refilling = false;
    return;
  }
  auto it = asks_.find(ask_id);
  if (it == asks_.end()) return;
  auto done = std::move(it->second);
  asks_.erase(it);
  rate_decision d = a.d;
  d.remaining += e.lease[0].count + e.lease[1].count;  // what this shard now holds counts too
  done(d);
}

// ---- streams ----

bool shard_limits::try_open_stream(const limit_subject& s, const limit_rule& r) {
  entry& e = find(s);
  if (r.streams_max > 0 && e.streams >= r.streams_max) return false;
  ++e.streams;
  return true;
}

uint64_t shard_limits::open_stream_remote(const limit_subject& s, const limit_rule& r,
                                          unique_function<void(bool)> done) {
  uint64_t id = next_id_++;
  stream_asks_.emplace(id, std::move(done));
  unsigned from = me_;
  post(home_of(s), [s, r, from, id] {
    shard_limits& home = here();
    bool granted = home.try_open_stream(s, r);
    home.post(from, [s, id, granted] {
      shard_limits& self = here();
      auto it = self.stream_asks_.find(id);
      if (it == self.stream_asks_.end()) {
        if (granted) self.close_stream(s);  // the stream ended while it waited
        return;
      }
      auto fn = std::move(it->second);
      self.stream_asks_.erase(it);
      fn(granted);
    });
  });
  return id;
}

void shard_limits::abandon_stream(uint64_t handle) {
  stream_asks_.erase(handle);
}

void shard_limits::close_stream(const limit_subject& s) {
  if (!is_home(s)) {
    post(home_of(s), [s] { here().close_stream(s); });
    return;
  }
  entry& e = find(s);
  if (e.streams > 0) --e.streams;
}

uint32_t shard_limits::streams_open(const limit_subject& s) {
  return find(s).streams;
}

}  // namespace rc::server
