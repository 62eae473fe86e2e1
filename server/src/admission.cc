#include "server/admission.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "proto/http1_parser.h"
#include "proto/sha1.h"
#include "proto/topic_pattern.h"

namespace rc::server {
namespace {

std::string digest_key(std::string_view key) {
  auto d = sha1::hash(key);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// Compares without an early exit, so the time taken doesn't depend on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

bool valid_key_text(std::string_view key) {
  if (key.empty() || key.size() > 256) return false;
  for (char c : key)
    if (c <= 0x20 || c > 0x7e) return false;
  return true;
}

bool parse_number(std::string_view s, double& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out) && out >= 0;
}

// subscribe=news.*,chat.room1: comma-separated topic patterns; empty: no topic at all.
std::string parse_permission(std::string_view value, topic_permission& out) {
  out.restricted = true;
  out.patterns.clear();
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view pattern = value.substr(0, comma);
    if (std::string_view why = topic_pattern::check(pattern); !why.empty()) {
      return std::string(why) + " ('" + std::string(pattern) + "')";
    }
    out.patterns.emplace_back(pattern);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
    if (value.empty()) return "a topic pattern is empty (trailing ',')";
  }
  return {};
}

}  // namespace

bool topic_permission::allows(std::string_view topic) const {
  return !restricted || topic_pattern::any_matches(patterns, topic);
}

// ---- keys ----

std::string api_keys::insert(api_key k) {
  std::string digest = digest_key(k.key);
  if (by_digest_.count(digest)) return "duplicate key";
  k.index = static_cast<uint32_t>(keys_.size());
  if (k.name.empty()) k.name = "key-" + std::to_string(k.index + 1);
  index_of_digest_.emplace(digest, k.index);
  by_digest_.emplace(std::move(digest), k.index);
  index_end_ = std::max(index_end_, k.index + 1);
  keys_.push_back(std::move(k));
  return {};
}

void api_keys::carry_indexes(const api_keys& previous) {
  index_of_digest_ = previous.index_of_digest_;
  index_end_ = previous.index_end_;
  for (const auto& [digest, position] : by_digest_) {
    api_key& k = keys_[position];
    auto [it, fresh] = index_of_digest_.emplace(digest, index_end_);
    if (fresh) ++index_end_;
    k.index = it->second;
  }
}

std::string api_keys::add(std::string_view key, bool admin) {
  std::string flag = admin ? "--admin-key: " : "--api-key: ";
  if (!valid_key_text(key)) return flag + "keys are 1 to 256 visible ASCII characters";
  api_key k;
  k.key = std::string(key);
  k.admin = admin;
  std::string err = insert(std::move(k));
  return err.empty() ? err : flag + err;
}

bool api_keys::any_admin() const {
  return std::any_of(keys_.begin(), keys_.end(), [](const api_key& k) { return k.admin; });
}

std::string api_keys::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "cannot read the keys file " + path;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto fail = [&](const std::string& what) {
      return path + ":" + std::to_string(n) + ": " + what;
    };
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) continue;  // blank or comment
    if (!valid_key_text(word)) return fail("a key is 1 to 256 visible ASCII characters");
    api_key k;
    k.key = word;
    while (words >> word) {
      size_t eq = word.find('=');
      if (eq == std::string::npos) return fail("expected name=value, got '" + word + "'");
      std::string_view name(word.data(), eq), value(word.data() + eq + 1, word.size() - eq - 1);
      double v = 0;
      if (name == "name") {
        if (value.empty()) return fail("name= needs a value");
        k.name = std::string(value);
      } else if (name == "rps" || name == "burst" || name == "streams") {
        if (!parse_number(value, v)) return fail(std::string(name) + "= needs a non-negative number");
        if (name == "rps") k.rps = v;
        if (name == "burst") k.burst = v;
        if (name == "streams") k.streams_max = static_cast<uint32_t>(v);
      } else if (name == "subscribe" || name == "publish") {
        std::string err = parse_permission(value, name == "subscribe" ? k.subscribe : k.publish);
        if (!err.empty()) return fail(std::string(name) + "=: " + err);
      } else if (name == "admin") {
        if (value != "yes" && value != "no") return fail("admin= is yes or no");
        k.admin = value == "yes";
      } else {
        return fail("unknown attribute '" + std::string(name) +
                    "' (name, rps, burst, streams, subscribe, publish, admin)");
      }
    }
    if (k.admin && (k.subscribe.restricted || k.publish.restricted)) {
      return fail("an admin key has no topic limits (drop subscribe=/publish= or admin=yes)");
    }
    if (std::string err = insert(std::move(k)); !err.empty()) return fail(err);
  }
  return {};
}

const api_key* api_keys::find(std::string_view presented) const {
  if (presented.empty()) return nullptr;
  auto it = by_digest_.find(digest_key(presented));
  if (it == by_digest_.end()) return nullptr;
  const api_key& k = keys_[it->second];
  return constant_time_equal(k.key, presented) ? &k : nullptr;
}

std::string_view presented_key(const http1::request& req, bool allow_query) {
  std::string_view auth = req.find("authorization");
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    std::string_view key = auth.substr(7);
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    return key;
  }
  if (std::string_view key = req.find("x-api-key"); !key.empty()) return key;
  if (!allow_query) return {};
  std::string_view q = req.query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    if (pair.substr(0, 8) == "api_key=") return pair.substr(8);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return {};
}

// ---- CORS ----

cors_policy::cors_policy(std::vector<std::string> origins) {
  for (auto& o : origins) {
    if (o == "*") {
      any_ = true;
    } else {
      while (!o.empty() && o.back() == '/') o.pop_back();
      origins_.push_back(std::move(o));
    }
  }
}

std::string_view cors_policy::allow_origin(std::string_view origin) const {
  if (origin.empty()) return {};
  for (const auto& o : origins_)
    if (o == origin) return o;
  return any_ ? std::string_view("*") : std::string_view();
}

bool cors_policy::websocket_allowed(std::string_view origin) const {
  if (origin.empty() || !configured()) return true;
  return !allow_origin(origin).empty();
}

std::string format_reset(uint64_t ms) {
  uint64_t s = (ms + 999) / 1000;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m";
  out += std::to_string(s % 60) + "s";
  return out;
}

}  // namespace rc::server
