// pipe_reader / pipe_writer: IORING_OP_READ / IORING_OP_WRITE on one end of a pipe.
#include <errno.h>
#include <unistd.h>

#include <cstring>

#include "core/process.h"

namespace rc {
namespace {

void cancel_op(reactor& r, io_handler* h) {
  io_uring_sqe* sqe = r.ring().get_sqe();
  io_uring_prep_cancel64(sqe, make_user_data(h, 0), 0);
  io_uring_sqe_set_data64(sqe, ignored_user_data);
}

}  // namespace

// Owned by the pipe_reader; an orphan after it while a read is in flight (the kernel may still
// write into `buf`).
struct pipe_reader::state final : io_handler, orphan {
  reactor& r;
  int fd;
  std::unique_ptr<char[]> buf;
  size_t chunk;
  unique_function<void(std::string_view)> on_data;
  unique_function<void(int)> on_end;
  bool in_flight = false;
  bool paused = false;
  bool ended = false;
  bool detached = false;
  bool dispatching = false;

  state(reactor& re, int f, size_t c, unique_function<void(std::string_view)> d,
        unique_function<void(int)> e)
      : r(re), fd(f), buf(new char[c]), chunk(c), on_data(std::move(d)), on_end(std::move(e)) {}
  ~state() override {
    if (fd >= 0) ::close(fd);
  }

  void arm() {
    if (in_flight || paused || ended || detached) return;
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_read(sqe, fd, buf.get(), static_cast<unsigned>(chunk), static_cast<uint64_t>(-1));
    io_uring_sqe_set_data64(sqe, make_user_data(this, 0));
    in_flight = true;
  }

  void on_completion(uint8_t, int32_t res, uint32_t) override {
    in_flight = false;
    if (detached) {
      delete this;
      return;
    }
    if (res > 0) {
      dispatching = true;
      on_data(std::string_view(buf.get(), static_cast<size_t>(res)));
      dispatching = false;
      if (detached) return finish_detached();
      arm();
      return;
    }
    if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {  // pause(), or retry
      arm();
      return;
    }
    ended = true;
    dispatching = true;
    on_end(res == 0 ? 0 : -res);
    dispatching = false;
    if (detached) finish_detached();
  }

  void finish_detached() {
    on_data = nullptr;
    on_end = nullptr;
    if (!in_flight) {
      delete this;
      return;
    }
    cancel_op(r, this);
    r.adopt_orphan(*this);
  }
};

std::unique_ptr<pipe_reader> pipe_reader::create(reactor& r, int fd,
                                                 unique_function<void(std::string_view)> on_data,
                                                 unique_function<void(int)> on_end,
                                                 size_t chunk_bytes) {
  if (chunk_bytes == 0) chunk_bytes = 65536;
  auto* s = new state(r, fd, chunk_bytes, std::move(on_data), std::move(on_end));
  s->arm();
  return std::unique_ptr<pipe_reader>(new pipe_reader(s));
}

pipe_reader::~pipe_reader() {
  s_->detached = true;
  if (!s_->dispatching) s_->finish_detached();
}

void pipe_reader::pause() {
  if (s_->paused) return;
  s_->paused = true;
  if (s_->in_flight) cancel_op(s_->r, s_);
}

void pipe_reader::resume() {
  if (!s_->paused) return;
  s_->paused = false;
  s_->arm();
}

// Owned by the pipe_writer; an orphan after it while a write is in flight (the kernel may still
// read `sending`).
struct pipe_writer::state final : io_handler, orphan {
  reactor& r;
  int fd;
  unique_function<void(int)> on_error;
  std::string sending;  // the buffer of the write in flight
  size_t sent = 0;      // of `sending`, already written
  std::string pending;  // queued behind it
  bool in_flight = false;
  bool close_requested = false;
  bool failed = false;
  bool detached = false;
  bool dispatching = false;

  state(reactor& re, int f, unique_function<void(int)> e) : r(re), fd(f), on_error(std::move(e)) {}
  ~state() override {
    if (fd >= 0) ::close(fd);
  }

  void close_fd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void kick() {
    if (in_flight || failed || fd < 0 || detached) return;
    if (sent == sending.size()) {
      sending.clear();
      sent = 0;
      sending.swap(pending);
    }
    if (sending.empty()) {
      if (close_requested) close_fd();
      return;
    }
    io_uring_sqe* sqe = r.ring().get_sqe();
    io_uring_prep_write(sqe, fd, sending.data() + sent, static_cast<unsigned>(sending.size() - sent),
                        static_cast<uint64_t>(-1));
    io_uring_sqe_set_data64(sqe, make_user_data(this, 0));
    in_flight = true;
  }

  void on_completion(uint8_t, int32_t res, uint32_t) override {
    in_flight = false;
    if (detached) {
      delete this;
      return;
    }
    if (res >= 0 || res == -EINTR || res == -EAGAIN) {
      if (res > 0) sent += static_cast<size_t>(res);
      kick();
      return;
    }
    failed = true;
    sending.clear();
    pending.clear();
    sent = 0;
    close_fd();
    dispatching = true;
    on_error(-res);
    dispatching = false;
    if (detached) finish_detached();
  }

  void finish_detached() {
    on_error = nullptr;
    if (!in_flight) {
      delete this;
      return;
    }
    cancel_op(r, this);
    r.adopt_orphan(*this);
  }
};

std::unique_ptr<pipe_writer> pipe_writer::create(reactor& r, int fd,
                                                 unique_function<void(int)> on_error) {
  return std::unique_ptr<pipe_writer>(new pipe_writer(new state(r, fd, std::move(on_error))));
}

pipe_writer::~pipe_writer() {
  s_->detached = true;
  if (!s_->dispatching) s_->finish_detached();
}

void pipe_writer::write(std::string_view bytes) {
  if (s_->failed || s_->close_requested || s_->fd < 0 || bytes.empty()) return;
  s_->pending.append(bytes);
  s_->kick();
}

size_t pipe_writer::queued_bytes() const {
  return s_->sending.size() - s_->sent + s_->pending.size();
}

void pipe_writer::close_after_flush() {
  if (s_->close_requested) return;
  s_->close_requested = true;
  s_->kick();
}

bool pipe_writer::closed() const {
  return s_->fd < 0;
}

}  // namespace rc
