// spawn_process, child_process, pipe_reader and pipe_writer with real children (sh, cat, sleep),
// driven by a one-shard reactor per test, turn by turn with a bounded number of turns. The test
// process is a child subreaper, so orphaned grandchildren are reparented to it and their fate
// (killed by which signal) can be checked with waitpid.
#include "core/process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

namespace rc {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

// 'R', 'S', 'Z'... from /proc/<pid>/stat; 0 when there is no such process.
char proc_state(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? 0 : line[paren + 2];
}

// Waits (bounded) for an orphan reparented to us (the subreaper) and returns its wait status.
int reap_orphan(int pid) {
  for (int i = 0; i < 1000; ++i) {
    int status = 0;
    int rc = waitpid(pid, &status, WNOHANG);
    if (rc == pid) return status;
    if (rc < 0) return -1;
    usleep(10'000);
  }
  return -2;
}

class process_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!uring_usable()) GTEST_SKIP() << "io_uring not usable here";
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    hub_ = std::make_unique<mailbox_hub>(1, 64);
    reactor_options o;
    o.ring.sq_entries = 64;
    o.ring.cq_entries = 256;
    o.buffers.count = 16;
    r_ = std::make_unique<reactor>(0, *hub_, o);
    ASSERT_EQ(r_->init(), "");
  }
  void TearDown() override {
    r_.reset();  // orphans still waiting are freed here (ASan checks)
    hub_.reset();
  }

  // Runs turns until `done` (at most max_turns; a 5 ms ticker keeps turns coming).
  bool run_until(const std::function<bool()>& done, int max_turns = 4000) {
    for (int i = 0; i < max_turns; ++i) {
      if (done()) return true;
      if (!ticker_.armed()) r_->arm_after_ms(ticker_, 5);
      r_->run_turn();
    }
    return done();
  }
  // Runs about `ms` of turns.
  void run_for(int ms) {
    bool fired = false;
    timer t([](timer&, void* c) { *static_cast<bool*>(c) = true; }, &fired);
    r_->arm_after_ms(t, static_cast<uint64_t>(ms));
    run_until([&] { return fired; });
    r_->cancel_timer(t);
  }

  std::unique_ptr<mailbox_hub> hub_;
  std::unique_ptr<reactor> r_;
  timer ticker_{[](timer&, void*) {}, nullptr};
};

// A spawned child with its output collected and its exit status recorded.
struct proc {
  spawned_process sp;
  std::unique_ptr<child_process> child;
  std::unique_ptr<pipe_reader> out_reader, err_reader;
  std::unique_ptr<pipe_writer> in;
  std::string out, err;
  int out_end = -1, err_end = -1, in_error = -1;
  int status = -1;
  int exits = 0;

  bool start(reactor& r, spawn_options o, std::string* error = nullptr) {
    std::string e;
    if (!spawn_process(o, sp, e)) {
      if (error) *error = e;
      return false;
    }
    child = child_process::create(r, sp, [this](int s) {
      status = s;
      ++exits;
    });
    out_reader = pipe_reader::create(
        r, sp.stdout_fd, [this](std::string_view b) { out.append(b); },
        [this](int code) { out_end = code; });
    err_reader = pipe_reader::create(
        r, sp.stderr_fd, [this](std::string_view b) { err.append(b); },
        [this](int code) { err_end = code; });
    in = pipe_writer::create(r, sp.stdin_fd, [this](int code) { in_error = code; });
    return true;
  }
  bool finished() const { return exits > 0 && out_end >= 0 && err_end >= 0; }
};

spawn_options sh(const std::string& script) {
  spawn_options o;
  o.argv = {"sh", "-c", script};
  return o;
}

TEST_F(process_test, ShellRunsAndReportsExitStatus) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("echo hello; echo oops >&2; exit 3")));
  EXPECT_GT(p.sp.pid, 0);
  EXPECT_GE(p.sp.pidfd, 0);
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  EXPECT_EQ(p.out, "hello\n");
  EXPECT_EQ(p.err, "oops\n");
  EXPECT_EQ(p.out_end, 0);
  EXPECT_EQ(p.err_end, 0);
  ASSERT_TRUE(WIFEXITED(p.status));
  EXPECT_EQ(WEXITSTATUS(p.status), 3);
  EXPECT_EQ(p.exits, 1);
  EXPECT_FALSE(p.child->running());
}

TEST_F(process_test, KilledBySignalStatus) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("kill -USR1 $$")));
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  ASSERT_TRUE(WIFSIGNALED(p.status));
  EXPECT_EQ(WTERMSIG(p.status), SIGUSR1);
}

TEST_F(process_test, ExecFailuresAreReportedSynchronously) {
  spawned_process sp;
  std::string error;
  spawn_options o;
  o.argv = {"/nonexistent/ringcast-worker"};
  EXPECT_FALSE(spawn_process(o, sp, error));
  EXPECT_NE(error.find("exec /nonexistent/ringcast-worker: No such file or directory"),
            std::string::npos)
      << error;
  EXPECT_EQ(sp.pid, -1);

  o.argv = {"ringcast-no-such-command-xyz"};
  EXPECT_FALSE(spawn_process(o, sp, error));
  EXPECT_NE(error.find("not found in PATH: ringcast-no-such-command-xyz"), std::string::npos)
      << error;

  // A file without the execute bit: EACCES from execve.
  char path[] = "/tmp/rc_process_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  o.argv = {path};
  EXPECT_FALSE(spawn_process(o, sp, error));
  EXPECT_NE(error.find("Permission denied"), std::string::npos) << error;
  unlink(path);

  o = sh("true");
  o.cwd = "/nonexistent-dir-for-ringcast";
  EXPECT_FALSE(spawn_process(o, sp, error));
  EXPECT_NE(error.find("chdir /nonexistent-dir-for-ringcast: No such file or directory"),
            std::string::npos)
      << error;

  o.argv.clear();
  EXPECT_FALSE(spawn_process(o, sp, error));
}

TEST_F(process_test, EnvironmentOverridesAndWorkingDirectory) {
  char dir[] = "/tmp/rc_process_cwd_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  setenv("RC_PROCESS_TEST_INHERITED", "inherited", 1);
  setenv("RC_PROCESS_TEST_OVERRIDDEN", "old", 1);
  spawn_options o = sh(
      "echo \"$RC_PROCESS_TEST_INHERITED $RC_PROCESS_TEST_OVERRIDDEN $RC_PROCESS_TEST_NEW\"; "
      "env | grep -c '^RC_PROCESS_TEST_OVERRIDDEN='; pwd");
  o.env = {{"RC_PROCESS_TEST_OVERRIDDEN", "new"}, {"RC_PROCESS_TEST_NEW", "added"}};
  o.cwd = dir;
  proc p;
  ASSERT_TRUE(p.start(*r_, o));
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  EXPECT_EQ(p.out, std::string("inherited new added\n1\n") + dir + "\n");
  unsetenv("RC_PROCESS_TEST_INHERITED");
  unsetenv("RC_PROCESS_TEST_OVERRIDDEN");
  rmdir(dir);
}

TEST_F(process_test, ChildGetsDefaultSignalsAndNoExtraDescriptors) {
  // Blocked and ignored here; the child must start with neither.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  signal(SIGUSR2, SIG_IGN);
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("grep -E '^(SigBlk|SigIgn)' /proc/self/status; ls /proc/self/fd")));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  signal(SIGUSR2, SIG_DFL);
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  EXPECT_NE(p.out.find("SigBlk:\t0000000000000000\n"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("SigIgn:\t0000000000000000\n"), std::string::npos) << p.out;
  // ls's own: 0, 1, 2 and the one it opened for /proc/self/fd.
  const std::string fds = "\n0\n1\n2\n3\n";
  ASSERT_GE(p.out.size(), fds.size());
  EXPECT_EQ(p.out.substr(p.out.size() - fds.size()), fds) << p.out;
}

TEST_F(process_test, StdinWritesBeyondPipeCapacityArriveInOrder) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("cat")));
  std::string expected;
  size_t peak_queued = 0;
  for (int i = 0; i < 20000; ++i) {  // ~0.5 MiB in small writes, far beyond the 64 KiB pipe
    std::string line = "line " + std::to_string(i) + " of the stdin test\n";
    expected += line;
    p.in->write(line);
    peak_queued = std::max(peak_queued, p.in->queued_bytes());
  }
  EXPECT_GT(peak_queued, size_t{65536});
  p.in->close_after_flush();
  p.in->write("dropped after close_after_flush");
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  EXPECT_EQ(p.out.size(), expected.size());
  EXPECT_TRUE(p.out == expected);
  EXPECT_EQ(p.in->queued_bytes(), 0u);
  EXPECT_TRUE(p.in->closed());
  EXPECT_EQ(p.in_error, -1);
  ASSERT_TRUE(WIFEXITED(p.status));
  EXPECT_EQ(WEXITSTATUS(p.status), 0);
}

TEST_F(process_test, EofOnStdoutWhenTheChildClosesIt) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("printf partial; exec >&-; sleep 1000")));
  ASSERT_TRUE(run_until([&] { return p.out_end >= 0; }));
  EXPECT_EQ(p.out, "partial");
  EXPECT_EQ(p.out_end, 0);
  EXPECT_TRUE(p.child->running());
}

TEST_F(process_test, WriteToAChildThatClosedStdinFailsWithEpipe) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("exec <&-; echo closed; sleep 1000")));
  ASSERT_TRUE(run_until([&] { return p.out == "closed\n"; }));
  p.in->write("nobody reads this\n");
  ASSERT_TRUE(run_until([&] { return p.in_error >= 0; }));
  EXPECT_EQ(p.in_error, EPIPE);
  EXPECT_TRUE(p.in->closed());
  p.in->write("more");  // dropped, no second error
  run_for(20);
  EXPECT_EQ(p.in_error, EPIPE);
}

TEST_F(process_test, TerminateEndsAPoliteChildWithSigterm) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("echo ready; exec sleep 1000")));
  ASSERT_TRUE(run_until([&] { return p.out == "ready\n"; }));
  p.child->terminate(30000);
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  ASSERT_TRUE(WIFSIGNALED(p.status));
  EXPECT_EQ(WTERMSIG(p.status), SIGTERM);
}

TEST_F(process_test, TerminateKillsAChildIgnoringSigtermAfterTheGrace) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("trap '' TERM; echo ready; while :; do sleep 0.05; done")));
  ASSERT_TRUE(run_until([&] { return p.out == "ready\n"; }));
  p.child->terminate(200);
  run_for(50);
  EXPECT_TRUE(p.child->running());  // SIGTERM ignored, grace not over
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  ASSERT_TRUE(WIFSIGNALED(p.status));
  EXPECT_EQ(WTERMSIG(p.status), SIGKILL);
}

TEST_F(process_test, TerminateReachesGrandchildren) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("sleep 1000 & echo $!; wait")));
  ASSERT_TRUE(run_until([&] { return p.out.find('\n') != std::string::npos; }));
  int grandchild = std::atoi(p.out.c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(getpgid(grandchild), p.child->pid());
  p.child->terminate(30000);
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  int status = reap_orphan(grandchild);  // reparented to us, the subreaper
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST_F(process_test, LeftoversOfAnExitedChildAreKilled) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("sleep 1000 >/dev/null 2>&1 & echo $!")));
  ASSERT_TRUE(run_until([&] { return p.finished(); }));
  EXPECT_EQ(WEXITSTATUS(p.status), 0);
  int status = reap_orphan(std::atoi(p.out.c_str()));
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(process_test, DestroyWhileRunningKillsAndReaps) {
  int pid, grandchild;
  {
    proc p;
    ASSERT_TRUE(p.start(*r_, sh("sleep 1000 & echo $!; wait")));
    ASSERT_TRUE(run_until([&] { return p.out.find('\n') != std::string::npos; }));
    pid = p.child->pid();
    grandchild = std::atoi(p.out.c_str());
    ASSERT_NE(proc_state(pid), 0);
    ASSERT_NE(proc_state(pid), 'Z');
    p.child.reset();
    // Not waited for on the shard (a child in uninterruptible sleep would freeze it): killed,
    // and still there (running or a zombie) until the reactor reaps it.
    EXPECT_NE(proc_state(pid), 0);
    EXPECT_GT(r_->orphans(), 0u);
  }  // readers and writer destroyed with operations in flight
  // A bounded number of turns: the pidfd poll reaps the child (no zombie, no process at all),
  // the cancelled operations complete, and every orphan frees itself.
  ASSERT_TRUE(run_until([&] { return r_->orphans() == 0; }));
  EXPECT_EQ(proc_state(pid), 0);
  // The child is dead, so its child was reparented to us: killed with the group.
  int status = reap_orphan(grandchild);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(process_test, ExitCallbackNeverRunsAfterDestruction) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("exec sleep 1000")));
  int pid = p.child->pid();
  p.child.reset();
  ASSERT_TRUE(run_until([&] { return proc_state(pid) == 0; }));
  EXPECT_EQ(p.exits, 0);
}

TEST_F(process_test, ReactorDestroyedWithOperationsInFlight) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("exec sleep 1000")));
  p.in->write(std::string(1 << 20, 'x'));  // blocks: sleep never reads
  run_for(20);
  EXPECT_GT(p.in->queued_bytes(), 0u);
  // Tear down without running the loop again: the reactor is destroyed with the reads, the
  // write and the pidfd poll still in flight (ASan: no leak, no use after free).
  p.in.reset();
  p.out_reader.reset();
  p.err_reader.reset();
  int pid = p.child->pid();
  p.child.reset();
  EXPECT_GE(r_->orphans(), 4u);  // the child's pidfd poll too: it is not reaped yet
  r_.reset();
  EXPECT_EQ(proc_state(pid), 0);  // reaped at teardown: no zombie
}

TEST_F(process_test, DestroyFromInsideCallbacks) {
  // A reader that destroys itself on its first chunk, a child that destroys itself in on_exit.
  spawned_process sp;
  std::string error;
  ASSERT_TRUE(spawn_process(sh("echo data; exit 7"), sp, error)) << error;
  int data_calls = 0;
  std::unique_ptr<pipe_reader> reader;
  reader = pipe_reader::create(
      *r_, sp.stdout_fd,
      [&](std::string_view) {
        ++data_calls;
        reader.reset();
      },
      [&](int) { ADD_FAILURE() << "on_end after destruction"; });
  std::unique_ptr<child_process> child;
  int status = -1;
  child = child_process::create(*r_, sp, [&](int s) {
    status = s;
    child.reset();
  });
  close(sp.stdin_fd);
  close(sp.stderr_fd);
  ASSERT_TRUE(run_until([&] { return !child && !reader; }));
  EXPECT_EQ(data_calls, 1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  ASSERT_TRUE(run_until([&] { return r_->orphans() == 0; }));
}

TEST_F(process_test, PausedReaderDeliversNothingUntilResumed) {
  proc p;
  ASSERT_TRUE(p.start(*r_, sh("read line; echo \"got $line\"; sleep 1000")));
  p.out_reader->pause();
  run_for(10);
  p.in->write("ping\n");
  run_for(200);
  EXPECT_EQ(p.out, "");
  p.out_reader->resume();
  ASSERT_TRUE(run_until([&] { return p.out == "got ping\n"; }));
}

// PR_SET_PDEATHSIG: a child whose parent process dies is killed. A helper process (forked from
// this one) spawns `sleep`, reports its pid, and is SIGKILLed; the sleep is reparented to us (the
// subreaper) and must have died of SIGKILL.
TEST_F(process_test, ChildDiesWithItsParentProcess) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    spawned_process sp;
    std::string error;
    spawn_options o;
    o.argv = {"sleep", "1000"};
    int pid = spawn_process(o, sp, error) ? sp.pid : -1;
    if (write(report[1], &pid, sizeof pid) != sizeof pid) _exit(1);
    for (;;) pause();
  }
  close(report[1]);
  int grandchild = -1;
  ASSERT_EQ(read(report[0], &grandchild, sizeof grandchild),
            static_cast<ssize_t>(sizeof grandchild));
  close(report[0]);
  ASSERT_GT(grandchild, 0);
  EXPECT_NE(proc_state(grandchild), 0);
  kill(helper, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(helper, &status, 0), helper);
  status = reap_orphan(grandchild);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

}  // namespace
}  // namespace rc
