#include "core/memory.h"

#include <malloc.h>

// mimalloc's entry point, resolved at run time: it exists only when mimalloc is linked in.
extern "C" void mi_collect(bool force) __attribute__((weak));

namespace rc {

void release_free_memory() {
  if (mi_collect != nullptr) {
    mi_collect(true);  // force: also purge (decommit) the freed pages of this thread's heap
  } else {
    malloc_trim(0);
  }
}

}  // namespace rc
