// Assertions that stay on in every build mode.
//
// RC_ASSERT checks a programmer's invariant: if it fails, the process is in a state nobody
// designed for, so it prints where and stops (abort, for a core dump). It is independent of
// NDEBUG on purpose: release builds are the ones that meet real traffic. Operating errors
// (bad input, a peer going away, a full queue) are values, never assertions.
//
// Thread-safety: callable from any thread.
#pragma once

namespace rc::detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* func);
}  // namespace rc::detail

#define RC_ASSERT(expr)                                                  \
  do {                                                                   \
    if (__builtin_expect(!(expr), 0))                                    \
      ::rc::detail::assert_fail(#expr, __FILE__, __LINE__, __func__);    \
  } while (0)

#define RC_LIKELY(x) __builtin_expect(!!(x), 1)
#define RC_UNLIKELY(x) __builtin_expect(!!(x), 0)
