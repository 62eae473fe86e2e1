#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace rc::detail {

void assert_fail(const char* expr, const char* file, int line, const char* func) {
  std::fprintf(stderr, "ringcast: assertion failed: %s\n  at %s:%d in %s\n", expr, file, line,
               func);
  std::fflush(stderr);
  std::abort();
}

}  // namespace rc::detail
