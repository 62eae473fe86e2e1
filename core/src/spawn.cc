// spawn_process(): clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) on a dedicated stack (fork +
// pidfd_open as the fallback), then a child that only makes async-signal-safe calls before
// execve (see process.h).
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "core/process.h"

extern char** environ;

namespace rc {
namespace {

// Written by the child to the error pipe when a step fails: which step, and errno.
struct child_failure {
  int32_t step;
  int32_t err;
};
enum : int32_t { step_chdir = 1, step_exec = 2, step_dup = 3 };

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A pipe whose two ends are at 3 or above (so the child's dup2 onto 0..2 never clobbers one).
bool make_pipe(int fds[2], std::string& error) {
  if (pipe2(fds, O_CLOEXEC) != 0) {
    error = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i] >= 3) continue;
    int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    ::close(fds[i]);
    fds[i] = moved;
    if (moved < 0) {
      close_fd(fds[1 - i]);
      error = std::string("fcntl: ") + std::strerror(saved);
      return false;
    }
  }
  return true;
}

std::string env_value(const std::vector<std::string>& envp, std::string_view key) {
  for (const auto& e : envp)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return {};
}

bool executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] with no '/' is looked up in the child's PATH (as execvp would, but before the clone).
bool resolve_program(const std::string& name, const std::vector<std::string>& envp,
                     std::string& path, std::string& error) {
  if (name.find('/') != std::string::npos) {
    path = name;
    return true;
  }
  std::string search = env_value(envp, "PATH");
  if (search.empty()) search = "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= search.size()) {
    size_t end = search.find(':', start);
    if (end == std::string::npos) end = search.size();
    std::string candidate;
    if (end == start)
      candidate.push_back('.');  // an empty PATH entry is the working directory
    else
      candidate.append(search, start, end - start);
    candidate.push_back('/');
    candidate.append(name);
    if (executable_file(candidate)) {
      path = std::move(candidate);
      return true;
    }
    start = end + 1;
  }
  error = "command not found in PATH: " + name;
  return false;
}

// The child, between the clone and execve. It runs on its own stack but shares the parent's
// memory (CLONE_VM; the parent is suspended until the exec or _exit, CLONE_VFORK): it makes only
// thin system-call wrappers (no allocation, no locks, no stdio) and writes nothing but its own
// locals and the error pipe. errno is the parent thread's slot (same TLS); the parent does not
// read it before its next call. All signals are blocked on entry (see spawn_process).
struct child_args {
  pid_t parent;
  int in_r, out_w, err_w, report_w;
  const char* cwd;
  const char* path;
  char* const* argv;
  char* const* envp;
};

// Raw system calls only: no libc wrapper that a sanitizer intercepts or that keeps state. Not
// instrumented (ASan's bookkeeping assumes the thread's own stack).
#define RC_CHILD_CODE __attribute__((no_sanitize("address"), noinline))

RC_CHILD_CODE long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  return syscall(nr, a, b, c, d);
}

[[noreturn]] RC_CHILD_CODE void child_exit() {
  for (;;) sys(SYS_exit_group, 127);
}

[[noreturn]] RC_CHILD_CODE void run_child(const child_args& a) {
  // Dispositions first, with every signal still blocked: none of the parent's handlers can run
  // here. Then the documented empty mask. (The kernel's sigaction: handler 0 = SIG_DFL.)
  struct {
    unsigned long handler, flags, restorer, mask;
  } dfl = {0, 0, 0, 0};
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP)
      sys(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, NSIG / 8);
  unsigned long none = 0;
  sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&none), 0, NSIG / 8);
  sys(SYS_setpgid, 0, 0);
  sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (sys(SYS_getppid) != a.parent) child_exit();  // the parent died before PDEATHSIG was armed
  // Nothing of ringcast's survives the exec, whatever flags it was opened with.
  sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  child_failure f{0, 0};
  if (sys(SYS_dup3, a.in_r, 0, 0) < 0 || sys(SYS_dup3, a.out_w, 1, 0) < 0 ||
      sys(SYS_dup3, a.err_w, 2, 0) < 0) {
    f = {step_dup, errno};
  } else if (a.cwd[0] != '\0' && sys(SYS_chdir, reinterpret_cast<long>(a.cwd)) != 0) {
    f = {step_chdir, errno};
  } else {
    sys(SYS_execve, reinterpret_cast<long>(a.path), reinterpret_cast<long>(a.argv),
        reinterpret_cast<long>(a.envp));
    f = {step_exec, errno};
  }
  sys(SYS_write, a.report_w, reinterpret_cast<long>(&f), sizeof f);
  child_exit();
}

RC_CHILD_CODE int child_entry(void* arg) {
  run_child(*static_cast<const child_args*>(arg));
}

// The child's stack (CLONE_VM: it cannot run on the parent's). execve and the signal loop need
// little; a guard page below catches an overflow.
constexpr size_t child_stack_bytes = 64 * 1024;
constexpr size_t guard_bytes = 4096;

// posix_spawn-style: CLONE_VM | CLONE_VFORK, so no page table is copied (a fork of a large
// multi-shard process would copy them all and make every shard take copy-on-write faults until
// the exec); the calling thread is suspended until the child execs or exits. CLONE_PIDFD stores
// the pidfd in `pidfd` (clone(2) returns it through parent_tid). No CLONE_SIGHAND: the child's
// sigaction resets do not touch the parent's dispositions. Returns the pid, or -1 with errno.
pid_t clone_vfork_with_pidfd(child_args& a, int& pidfd) {
  void* mem = mmap(nullptr, child_stack_bytes + guard_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED) return -1;
  if (mprotect(mem, guard_bytes, PROT_NONE) != 0) {
    int saved = errno;
    munmap(mem, child_stack_bytes + guard_bytes);
    errno = saved;
    return -1;
  }
  char* top = static_cast<char*>(mem) + guard_bytes + child_stack_bytes;
  pid_t pid = ::clone(child_entry, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a,
                      &pidfd);
  int saved = errno;
  munmap(mem, child_stack_bytes + guard_bytes);  // the child has exec'd or exited
  errno = saved;
  return pid;
}

}  // namespace

int wait_status_of(int code, int status) {
  switch (code) {
    case CLD_EXITED:
      return (status & 0xff) << 8;
    case CLD_DUMPED:
      return (status & 0x7f) | 0x80;
    default:  // CLD_KILLED
      return status & 0x7f;
  }
}

bool spawn_process(const spawn_options& o, spawned_process& out, std::string& error) {
  out = spawned_process{};
  if (o.argv.empty() || o.argv[0].empty()) {
    error = "empty command";
    return false;
  }
  // Everything that allocates happens here, before the clone.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    std::string_view key = entry.substr(0, eq);
    bool overridden = false;
    for (const auto& kv : o.env) overridden = overridden || kv.first == key;
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (const auto& kv : o.env) {
    std::string entry;
    entry.append(kv.first).append("=").append(kv.second);
    env_strings.push_back(std::move(entry));
  }
  std::string path;
  if (!resolve_program(o.argv[0], env_strings, path, error)) return false;
  std::vector<char*> argv, envp;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, outp, errp, report}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  if (!make_pipe(in, error) || !make_pipe(outp, error) || !make_pipe(errp, error) ||
      !make_pipe(report, error)) {
    close_all();
    return false;
  }

  child_args args{getpid(), in[0],        outp[1],     errp[1],     report[1],
                  o.cwd.c_str(), path.c_str(), argv.data(), envp.data()};
  // Every signal blocked around the clone (as posix_spawn does): no handler of ours runs in the
  // child before it has reset the dispositions. Restored in the parent right after.
  sigset_t all, old_mask;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old_mask);
  int pidfd = -1;
  pid_t pid = clone_vfork_with_pidfd(args, pidfd);
  bool forked = false;
  if (pid < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL)) {
    pid = fork();  // CLONE_PIDFD unavailable (old kernel, seccomp): fork, then pidfd_open
    forked = true;
    if (pid == 0) run_child(args);
  }
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (pid < 0) {
    error = std::string("clone: ") + std::strerror(clone_errno);
    close_all();
    return false;
  }
  if (forked) pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  setpgid(pid, pid);  // also from here: the group exists before we may signal it (EACCES after
                      // the exec is fine, the child did it itself)
  close_fd(in[0]);
  close_fd(outp[1]);
  close_fd(errp[1]);
  close_fd(report[1]);

  // EOF (the exec closed the CLOEXEC end) means success; a record means it failed.
  child_failure f{0, 0};
  size_t got = 0;
  while (got < sizeof f) {
    ssize_t n = ::read(report[0], reinterpret_cast<char*>(&f) + got, sizeof f - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close_fd(report[0]);
  if (got == sizeof f || pidfd < 0) {
    if (got == sizeof f) {
      error = f.step == step_chdir ? "chdir " : f.step == step_exec ? "exec " : "dup2 ";
      error.append(f.step == step_chdir ? o.cwd : path).append(": ").append(std::strerror(f.err));
    } else {
      error = std::string("pidfd_open: ") + std::strerror(errno);
      ::kill(pid, SIGKILL);
    }
    siginfo_t info;
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0 && errno == EINTR) {
    }
    close_fd(pidfd);
    close_all();
    return false;
  }
  out.pid = pid;
  out.pidfd = pidfd;
  out.stdin_fd = in[1];
  out.stdout_fd = outp[0];
  out.stderr_fd = errp[0];
  return true;
}

}  // namespace rc
