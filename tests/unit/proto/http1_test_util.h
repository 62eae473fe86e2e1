// Helpers for the HTTP/1.1 parser tests: input placed against a PROT_NONE guard page, a printable
// summary of a parsed request (so whole and split parses can be compared by value), and parsing
// a request fed one byte at a time.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "proto/http1_parser.h"

namespace rc::http1::test {

// Two pages, the second PROT_NONE: place() copies bytes so that they end exactly at the guard,
// so reading one byte past them faults.
class guard_page {
 public:
  guard_page() {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = 8 * page_;  // room for inputs up to 7 pages (the 16 KiB head limit and a bit)
    void* m =
        mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(m);
    if (mprotect(base_ + size_, page_, PROT_NONE) != 0) std::abort();
  }
  ~guard_page() { munmap(base_, size_ + page_); }
  guard_page(const guard_page&) = delete;
  guard_page& operator=(const guard_page&) = delete;

  const char* place(std::string_view s) {
    if (s.size() > size_) std::abort();
    char* p = base_ + size_ - s.size();
    std::memcpy(p, s.data(), s.size());
    return p;
  }

 private:
  size_t page_ = 0;
  size_t size_ = 0;
  char* base_ = nullptr;
};

inline std::string describe(const request& r) {
  std::string s;
  auto add = [&](std::string_view k, std::string_view v) {
    s.append(k).append("=[").append(v).append("] ");
  };
  add("method", std::to_string(static_cast<int>(r.method)));
  add("version", std::to_string(static_cast<int>(r.version)));
  add("method_name", r.method_name);
  add("target", r.target);
  add("form", std::to_string(static_cast<int>(r.form)));
  add("path", r.path);
  add("query", r.query);
  add("authority", r.authority);
  add("host", r.host);
  for (uint32_t i = 0; i < r.header_count; ++i) add(r.headers[i].name, r.headers[i].value);
  add("body", std::to_string(static_cast<int>(r.body)));
  add("length", std::to_string(r.content_length));
  add("keep_alive", r.keep_alive ? "1" : "0");
  add("expect", r.expect_continue ? "1" : "0");
  add("upgrade", r.upgrade ? "1" : "0");
  add("head_bytes", std::to_string(r.head_bytes));
  return s;
}

inline std::string describe(const result& r) {
  return std::to_string(static_cast<int>(r.status)) + "/" + std::string(name_of(r.error)) + "/" +
         (r.status == status::complete ? std::to_string(r.consumed) : std::string("-"));
}

// The outcome of parsing a head: the result and, when complete, the request summary.
struct parsed {
  result res;
  std::string request;
  std::string summary() const { return describe(res) + " " + request; }
};

// Parses `s` placed against the guard page.
inline parsed parse(std::string_view s, const limits& lim = {}) {
  static guard_page guard;
  request req;
  parsed p;
  p.res = parse_head(guard.place(s), s.size(), lim, req);
  if (p.res.status == status::complete) p.request = describe(req);
  return p;
}

// Splitting at every byte of a long input costs quadratic time; long inputs are split at every
// byte near both ends and at a stride in between.
inline size_t split_step(size_t k, size_t size) {
  return size <= 2048 || k < 512 || k + 512 > size ? 1 : 61;
}

// Feeds `s` one byte more at a time, each prefix placed against the guard page and parsed with
// the previous call's hint, and returns the first non-incomplete outcome (or the last
// incomplete one). Every prefix result must be consistent with the final one.
inline parsed parse_bytewise(std::string_view s, const limits& lim = {}) {
  static guard_page guard;
  request req;
  parsed p;
  size_t hint = 0;
  for (size_t n = 0; n <= s.size(); n += split_step(n, s.size())) {
    p.res = parse_head(guard.place(s.substr(0, n)), n, lim, req, hint);
    if (p.res.status != status::incomplete) break;
    EXPECT_LE(p.res.consumed, n);
    hint = p.res.consumed;
  }
  if (p.res.status == status::complete) p.request = describe(req);
  return p;
}

// Checks that parsing `s` whole, one byte at a time, and split once at every position (prefix
// without hint, then the whole with the prefix's hint) all agree.
inline void expect_split_invariant(std::string_view s, const limits& lim = {}) {
  parsed whole = parse(s, lim);
  EXPECT_EQ(parse_bytewise(s, lim).summary(), whole.summary()) << s;
  static guard_page guard;
  for (size_t k = 0; k < s.size(); k += split_step(k, s.size())) {
    request req;
    result first = parse_head(guard.place(s.substr(0, k)), k, lim, req);
    if (first.status != status::incomplete) {
      // Only possible when `s` holds more than one head's bytes (a body, a next request).
      parsed p{first, first.status == status::complete ? describe(req) : std::string()};
      EXPECT_EQ(p.summary(), whole.summary()) << "split at " << k << ": " << s;
      continue;
    }
    result second = parse_head(guard.place(s), s.size(), lim, req, first.consumed);
    parsed p{second, second.status == status::complete ? describe(req) : std::string()};
    EXPECT_EQ(p.summary(), whole.summary()) << "split at " << k << ": " << s;
  }
}

}  // namespace rc::http1::test
