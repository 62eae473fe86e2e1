// Giving memory back to the system.
//
// The process allocator (mimalloc, one heap per shard thread) keeps freed pages for reuse. After
// a spike — a thousand connections that each held a large partial message, then closed — that
// is memory the process no longer needs but the system still counts. release_free_memory() asks
// the allocator to return the calling thread's free pages now: mimalloc's mi_collect(true) when
// mimalloc is the allocator (found at run time, so builds without it, such as the sanitizer
// builds and the unit tests, link too), glibc's malloc_trim otherwise.
//
// Thread-safety: call from the thread whose freed memory should go back (a shard, on its loop).
// It takes milliseconds on a large heap: call it after a spike, not per request.
#pragma once

namespace rc {

void release_free_memory();

}  // namespace rc
