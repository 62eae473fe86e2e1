// spawn_process() without a fork: the parent's memory is shared with the child until the exec
// (CLONE_VM | CLONE_VFORK), so its page tables are not copied and its pages not made
// copy-on-write. Observed through the calling thread's minor page faults: after a fork, the
// first write to each private page faults (even once the child has exec'd).
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/process.h"

namespace rc {
namespace {

long thread_minor_faults() {
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

TEST(process_spawn_test, SpawningDoesNotMakeTheParentsPagesCopyOnWrite) {
  constexpr size_t bytes = 32u << 20;
  constexpr size_t pages = bytes / 4096;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  madvise(mem, bytes, MADV_NOHUGEPAGE);  // one fault per 4 KiB page when they are COW
  auto* p = static_cast<char*>(mem);
  std::memset(p, 1, bytes);  // populated and writable

  spawned_process sp;
  std::string error;
  spawn_options o;
  o.argv = {"true"};
  ASSERT_TRUE(spawn_process(o, sp, error)) << error;
  long before = thread_minor_faults();
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 2;
  long faults = thread_minor_faults() - before;
  // A fork makes about `pages` of them; a shared-memory spawn almost none.
  EXPECT_LT(faults, static_cast<long>(pages / 8)) << faults << " faults for " << pages << " pages";

  siginfo_t info;
  EXPECT_EQ(waitid(P_PID, static_cast<id_t>(sp.pid), &info, WEXITED), 0);
  for (int fd : {sp.pidfd, sp.stdin_fd, sp.stdout_fd, sp.stderr_fd}) close(fd);
  munmap(mem, bytes);
}

}  // namespace
}  // namespace rc
