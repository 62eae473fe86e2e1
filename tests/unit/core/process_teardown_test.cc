// Reactor teardown with orphans still waiting (core/reactor.h): the cancels queued after the
// loop stopped are submitted, the orphans' completions arrive and free them within a bounded
// wait, and an orphan whose operation never completes is leaked, not freed under the kernel.
// A test orphan reads a pipe this test holds the other end of.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>

#include "core/process.h"

namespace rc {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

struct record {
  bool completed = false;
  int32_t res = 0;
  bool deleted = false;
  bool completed_before_delete = false;
};

struct reading_orphan final : io_handler, orphan {
  reactor& r;
  int fd;
  record& rec;
  char buf[64];

  reading_orphan(reactor& re, int f, record& rc) : r(re), fd(f), rec(rc) {
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_read(sqe, fd, buf, sizeof buf, static_cast<uint64_t>(-1));
    io_uring_sqe_set_data64(sqe, make_user_data(this, 0));
  }
  ~reading_orphan() override {
    rec.deleted = true;
    rec.completed_before_delete = rec.completed;
  }
  void cancel() {
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, 0), 0);
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }
  void on_completion(uint8_t, int32_t res, uint32_t) override {
    rec.completed = true;
    rec.res = res;
    delete this;
  }
};

class process_teardown_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!uring_usable()) GTEST_SKIP() << "io_uring not usable here";
    hub_ = std::make_unique<mailbox_hub>(1, 64);
    reactor_options o;
    o.ring.sq_entries = 64;
    o.ring.cq_entries = 256;
    o.buffers.count = 16;
    r_ = std::make_unique<reactor>(0, *hub_, o);
    ASSERT_EQ(r_->init(), "");
    ASSERT_EQ(pipe2(fds_, O_CLOEXEC), 0);
  }
  void TearDown() override {
    r_.reset();
    hub_.reset();
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }

  std::unique_ptr<mailbox_hub> hub_;
  std::unique_ptr<reactor> r_;
  int fds_[2] = {-1, -1};
};

TEST_F(process_teardown_test, CancelQueuedAfterTheLoopIsSubmittedAndCompletesBeforeTheFree) {
  record rec;
  auto* o = new reading_orphan(*r_, fds_[0], rec);
  r_->ring().submit_nowait();  // the read is in flight (a pipe with no data: it waits)
  EXPECT_FALSE(rec.completed);
  o->cancel();  // queued, as a destructor after run() would: nothing submits it but teardown
  r_->adopt_orphan(*o);
  r_.reset();
  EXPECT_TRUE(rec.deleted);
  EXPECT_TRUE(rec.completed_before_delete);
  EXPECT_EQ(rec.res, -ECANCELED);
}

// Kept reachable (no LSan report): the kernel may still write into it after the ring is gone.
reading_orphan* g_leaked = nullptr;

TEST_F(process_teardown_test, OrphanWhoseOperationNeverCompletesIsLeaked) {
  record* rec = new record;  // outlives the test: the leaked orphan refers to it
  g_leaked = new reading_orphan(*r_, fds_[0], *rec);
  r_->ring().submit_nowait();
  r_->adopt_orphan(*g_leaked);  // no cancel: the read waits for data that never comes
  r_.reset();                   // bounded: returns after the grace period
  EXPECT_FALSE(rec->deleted);
  EXPECT_FALSE(rec->completed);
}

}  // namespace
}  // namespace rc
