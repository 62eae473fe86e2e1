#include "server/resolver.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <sstream>

#include "base/assert.h"
#include "resolver_lookup.h"

namespace rc {
namespace {

// The whole file, or "" when it cannot be read (the defaults then apply, as in glibc).
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The names to query for `name` (lowercase, no trailing dot), in order: with the search domains
// first when it has fewer than `ndots` dots, as is first otherwise (resolv.conf(5)); an absolute
// name ("name.") only as is. Names that would be too long with a domain are left out.
std::vector<std::string> candidates(const std::string& name, bool absolute,
                                    const resolv_conf& conf) {
  if (absolute || conf.search.empty()) return {name};
  std::vector<std::string> with_domains;
  byte_buffer scratch;
  for (const std::string& domain : conf.search) {
    std::string c = name + "." + domain;
    if (dns::build_query(c, dns::record_type::a, 0, false, scratch))
      with_domains.push_back(std::move(c));
  }
  auto dots = static_cast<uint32_t>(std::count(name.begin(), name.end(), '.'));
  std::vector<std::string> out;
  if (dots >= conf.ndots) out.push_back(name);
  out.insert(out.end(), with_domains.begin(), with_domains.end());
  if (dots < conf.ndots) out.push_back(name);
  return out;
}

}  // namespace

resolver::resolver(reactor& r, resolver_options opts) : reactor_(r), opts_(std::move(opts)) {
  conf_ = parse_resolv_conf(read_file(opts_.resolv_conf_path));
  hosts_ = parse_hosts(read_file(opts_.hosts_path));
  if (!hosts_.contains("localhost")) {
    dns::address v4, v6;
    parse_ip_literal("127.0.0.1", v4);
    parse_ip_literal("::1", v6);
    hosts_["localhost"] = {v4, v6};
  }
  timeout_ms_ = opts_.timeout_ms ? opts_.timeout_ms : conf_.timeout_s * 1000;
  attempts_ = opts_.attempts ? opts_.attempts : conf_.attempts;
  deliver_timer_.bind<resolver, &resolver::on_deliver>(this);
}

resolver::~resolver() {
  ready_.clear();  // dropped without a call (see the header)
  for (auto& [raw, owned] : lookups_)
    if (raw->orphan()) (void)owned.release();  // it frees itself (resolver_lookup.h)
}

void resolver::resolve(std::string_view host, uint16_t port, done_fn done) {
  ++stats_.lookups;
  dns::address literal;
  if (parse_ip_literal(host, literal)) {
    ++stats_.literal_answers;
    answer_later(std::move(done), result::found({literal}), port);
    return;
  }
  std::string name = lowercase(host);
  bool absolute = !name.empty() && name.back() == '.';
  if (absolute) name.pop_back();
  byte_buffer scratch;
  if (!dns::build_query(name, dns::record_type::a, 0, false, scratch)) {
    answer_later(std::move(done), result::failed(EINVAL, "invalid host name"), port);
    return;
  }
  if (auto it = hosts_.find(name); it != hosts_.end()) {
    if (std::vector<dns::address> addrs = filtered(it->second); !addrs.empty()) {
      ++stats_.hosts_answers;
      answer_later(std::move(done), result::found(std::move(addrs)), port);
      return;
    }
  }
  std::string key = absolute ? name + "." : name;
  if (const result* r = cached(key)) {
    ++stats_.cache_hits;
    answer_later(std::move(done), *r, port);
    return;
  }
  if (auto it = by_name_.find(key); it != by_name_.end()) {
    ++stats_.coalesced;
    it->second->waiters().push_back({port, std::move(done)});
    return;
  }
  auto l = std::make_unique<lookup>(*this, key, candidates(name, absolute, conf_));
  lookup* raw = l.get();
  lookups_.emplace(raw, std::move(l));
  by_name_.emplace(std::move(key), raw);
  raw->waiters().push_back({port, std::move(done)});
  raw->start();  // may retire it at once; `raw` stays valid until the next delivery
}

void resolver::cancel_all() {
  std::vector<lookup*> live;
  for (auto& entry : lookups_) live.push_back(entry.first);
  by_name_.clear();
  std::vector<waiter> waiting;
  for (lookup* l : live) {
    for (waiter& w : l->waiters()) waiting.push_back(std::move(w));
    l->cancel();
  }
  std::deque<delivery> ready;
  ready.swap(ready_);
  constexpr std::string_view cancelled = "name resolution cancelled";
  for (delivery& d : ready) {
    ++stats_.failures;
    d.done({}, ECANCELED, cancelled);
  }
  for (waiter& w : waiting) {
    ++stats_.failures;
    w.done({}, ECANCELED, cancelled);
  }
}

std::vector<dns::address> resolver::filtered(const std::vector<dns::address>& addrs) const {
  std::vector<dns::address> out;
  for (bool v6 : {false, true}) {
    if ((v6 && opts_.family == address_family::ipv4) ||
        (!v6 && opts_.family == address_family::ipv6))
      continue;
    for (const dns::address& a : addrs)
      if (a.v6 == v6) out.push_back(a);
  }
  return out;
}

void resolver::answer_later(done_fn done, const result& res, uint16_t port) {
  delivery d{.done = std::move(done), .addrs = {}, .error = res.error, .message = res.message};
  for (const dns::address& a : res.addrs) d.addrs.push_back(to_sockaddr(a, port));
  if (res.error != 0) ++stats_.failures;
  ready_.push_back(std::move(d));
  if (!deliver_timer_.armed()) reactor_.arm_after_ms(deliver_timer_, 0);
}

void resolver::on_deliver() {
  retired_.clear();
  // Only what was ready when the timer fired: a callback's own resolve() answers next turn.
  for (size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
    delivery d = std::move(ready_.front());
    ready_.pop_front();
    d.done(std::move(d.addrs), d.error, d.message);
  }
}

void resolver::finished(lookup& l, result res, uint32_t ttl_s) {
  if (auto it = by_name_.find(l.key()); it != by_name_.end() && it->second == &l)
    by_name_.erase(it);
  res.addrs = filtered(res.addrs);
  remember(l.key(), res, ttl_s);
  for (waiter& w : l.waiters()) answer_later(std::move(w.done), res, w.port);
  l.waiters().clear();
  retire(l);
}

void resolver::retire(lookup& l) {
  auto it = lookups_.find(&l);
  RC_ASSERT(it != lookups_.end());
  retired_.push_back(std::move(it->second));
  lookups_.erase(it);
  if (!deliver_timer_.armed()) reactor_.arm_after_ms(deliver_timer_, 0);
}

const resolver::result* resolver::cached(const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return nullptr;
  if (reactor_.now_ms() >= it->second.expires_ms) {
    cache_.erase(it);
    return nullptr;
  }
  return &it->second.res;
}

void resolver::remember(const std::string& key, const result& res, uint32_t ttl_s) {
  ttl_s = std::min(ttl_s, res.error == 0 ? opts_.cache_ttl_max_s : opts_.negative_ttl_max_s);
  if (ttl_s == 0 || opts_.cache_entries_max == 0) return;
  uint64_t now = reactor_.now_ms();
  if (cache_.size() >= opts_.cache_entries_max && !cache_.contains(key)) {
    std::erase_if(cache_, [&](const auto& e) { return now >= e.second.expires_ms; });
    if (cache_.size() >= opts_.cache_entries_max) {
      auto soonest = std::min_element(
          cache_.begin(), cache_.end(),
          [](const auto& a, const auto& b) { return a.second.expires_ms < b.second.expires_ms; });
      cache_.erase(soonest);
    }
  }
  cache_[key] = cache_entry{.res = res, .expires_ms = now + uint64_t{ttl_s} * 1000};
}

uint16_t resolver::random_id() {
  // Ids are the main defence against forged answers (with the random source port), so they
  // come from the kernel's CSPRNG, 64 at a time.
  if (random_ids_.empty()) {
    random_ids_.resize(64);
    size_t bytes = random_ids_.size() * sizeof(uint16_t);
    if (getrandom(random_ids_.data(), bytes, GRND_NONBLOCK) != static_cast<ssize_t>(bytes)) {
      std::random_device rd;
      for (uint16_t& id : random_ids_) id = static_cast<uint16_t>(rd());
    }
  }
  uint16_t id = random_ids_.back();
  random_ids_.pop_back();
  return id;
}

}  // namespace rc
