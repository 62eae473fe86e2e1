#include "server/access_log.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "base/assert.h"
#include "core/clock.h"
#include "core/log.h"
#include "proto/json_writer.h"

namespace rc::server {
namespace {

constexpr int open_flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
constexpr mode_t open_mode = 0644;

std::string_view cut(std::string_view s, size_t max) {
  return s.substr(0, max);
}

void put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// Microseconds as milliseconds with three decimals ("12.345"): exact, no floating point.
std::string_view format_ms(uint64_t us, char (&buf)[32]) {
  char* end = buf + sizeof buf;
  char* p = end;
  for (int i = 0; i < 3; ++i, us /= 10) *--p = static_cast<char>('0' + us % 10);
  *--p = '.';
  do {
    *--p = static_cast<char>('0' + us % 10);
    us /= 10;
  } while (us > 0);
  return std::string_view(p, static_cast<size_t>(end - p));
}

}  // namespace

std::string_view close_reason_label(close_reason r) {
  switch (r) {
    case close_reason::none:
    case close_reason::complete:
      return "complete";
    case close_reason::client_closed:
      return "client_closed";
    case close_reason::deadline:
      return "deadline";
    case close_reason::slow_consumer:
      return "slow_consumer";
    case close_reason::drain:
      return "drain";
    case close_reason::timeout:
      return "timeout";
    case close_reason::error:
      return "error";
  }
  return "error";
}

void format_rfc3339_ms(int64_t wall_ms, char* out) {
  // The date and time of day change once a second: gmtime_r (which takes glibc's time zone lock)
  // runs once per second per thread, not per line.
  thread_local int64_t cached_s = INT64_MIN;
  thread_local char cached[19];
  int64_t s = wall_ms / 1000;
  if (s != cached_s) {
    time_t t_s = static_cast<time_t>(s);
    tm t;
    gmtime_r(&t_s, &t);
    unsigned year = static_cast<unsigned>(t.tm_year + 1900) % 10000;
    put2(cached, year / 100);
    put2(cached + 2, year % 100);
    cached[4] = '-';
    put2(cached + 5, static_cast<unsigned>(t.tm_mon + 1));
    cached[7] = '-';
    put2(cached + 8, static_cast<unsigned>(t.tm_mday));
    cached[10] = 'T';
    put2(cached + 11, static_cast<unsigned>(t.tm_hour));
    cached[13] = ':';
    put2(cached + 14, static_cast<unsigned>(t.tm_min));
    cached[16] = ':';
    put2(cached + 17, static_cast<unsigned>(t.tm_sec));
    cached_s = s;
  }
  std::memcpy(out, cached, sizeof cached);
  out[19] = '.';
  auto ms = static_cast<unsigned>(wall_ms % 1000);
  out[20] = static_cast<char>('0' + ms / 100);
  put2(out + 21, ms % 100);
  out[23] = 'Z';
}

namespace {

// `,"name":` then the value, escaped. Names are constants; every value is escaped (labels too:
// the encoder trusts no caller).
void member(byte_buffer& out, std::string_view name_json, std::string_view value, size_t max) {
  out.append(name_json);
  json::write_string(out, cut(value, max));
}

void number(byte_buffer& out, std::string_view name_json, std::string_view digits) {
  out.append(name_json);
  out.append(digits);
}

}  // namespace

void encode_access_line(byte_buffer& out, const access_record& r) {
  out.reserve(out.size() + 512);
  char time[24];
  format_rfc3339_ms(r.wall_ms, time);
  out.append(R"({"time":")");
  out.append(time, sizeof time);
  out.push_back('"');
  member(out, R"(,"request_id":)", r.request_id, access_request_id_bytes_max);
  if (!r.ws_id.empty()) member(out, R"(,"ws_id":)", r.ws_id, access_request_id_bytes_max);
  if (!r.client.empty()) member(out, R"(,"client":)", r.client, access_short_bytes_max);
  if (!r.key.empty()) member(out, R"(,"key":)", r.key, access_key_bytes_max);
  if (!r.method.empty()) member(out, R"(,"method":)", r.method, access_short_bytes_max);
  member(out, R"(,"route":)", r.route, access_short_bytes_max);
  if (!r.path.empty()) member(out, R"(,"path":)", r.path, access_path_bytes_max);
  member(out, R"(,"protocol":)", r.protocol, access_short_bytes_max);
  out.append(R"(,"status":)");
  json::write_int64(out, r.status);
  out.append(R"(,"bytes_in":)");
  json::write_uint64(out, r.bytes_in);
  out.append(R"(,"bytes_out":)");
  json::write_uint64(out, r.bytes_out);
  char num[32];
  number(out, R"(,"duration_ms":)", format_ms(r.duration_us, num));
  if (r.first_byte_us >= 0)
    number(out, R"(,"first_byte_ms":)", format_ms(static_cast<uint64_t>(r.first_byte_us), num));
  if (r.first_token_us >= 0)
    number(out, R"(,"first_token_ms":)", format_ms(static_cast<uint64_t>(r.first_token_us), num));
  member(out, R"(,"close_reason":)", close_reason_label(r.reason), access_short_bytes_max);
  out.append("}\n");
}

int64_t access_log::wall_ms(uint64_t monotonic_ns) {
  // The wall clock follows the monotonic one with an offset read again once a second: one
  // clock read per line (the caller's, shared with the metrics), and NTP's slewing is
  // negligible over a second.
  if (monotonic_ns - synced_ns_ >= 1'000'000'000 || synced_ns_ == 0) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    synced_ns_ = rc::monotonic_ns();
    wall_offset_ns_ = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec -
                      static_cast<int64_t>(synced_ns_);
  }
  return (static_cast<int64_t>(monotonic_ns) + wall_offset_ns_) / 1'000'000;
}

// ---- the writer ----

access_log::access_log(reactor& r, std::string path) : reactor_(r), path_(std::move(path)) {
  flush_timer_.bind<access_log, &access_log::on_flush_timer>(this);
  give_up_timer_.bind<access_log, &access_log::give_up>(this);
}

access_log::~access_log() {
  // REQUIRES: settled() (the shard waits for it before stopping), so nothing is in flight.
  RC_ASSERT(!in_flight_ && !opening_);
  reactor_.cancel_timer(flush_timer_);
  reactor_.cancel_timer(give_up_timer_);
  if (owns_fd_ && fd_ >= 0) close(fd_);
}

std::string access_log::open() {
  if (path_.empty()) return {};
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
  } else {
    fd_ = ::open(path_.c_str(), open_flags, open_mode);
    if (fd_ < 0) return "cannot open " + path_ + ": " + std::strerror(errno);
    owns_fd_ = true;
  }
  // A write of at most PIPE_BUF bytes to a pipe is atomic; files take any size whole.
  struct stat st;
  bool pipe_like = fstat(fd_, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
  write_chunk_max_ = pipe_like ? PIPE_BUF : SIZE_MAX;
  static_assert(access_line_bytes_max <= PIPE_BUF);
  return {};
}

void access_log::write(const access_record& r) {
  if (fd_ < 0) return;
  if (filling_.size() + access_line_bytes_max > buffer_bytes_max) {
    // The file can't keep up (or a reopen hangs): drop rather than block or grow.
    ++stats_.dropped;
    return;
  }
  bool was_empty = filling_.empty();
  size_t before = filling_.size();
  encode_access_line(filling_, r);
  RC_ASSERT(filling_.size() - before <= access_line_bytes_max);
  ++stats_.lines;
  ++filling_lines_;
  if (filling_.size() >= flush_bytes) {
    flush();
  } else if (was_empty) {
    reactor_.arm_after_ms(flush_timer_, flush_interval_ms);
  }
}

void access_log::flush() {
  if (fd_ < 0 || in_flight_ || opening_ || retry_wanted_) return;
  if (reopen_wanted_) {
    start_reopen();
    return;
  }
  if (filling_.empty()) return;
  reactor_.cancel_timer(flush_timer_);
  std::swap(filling_, writing_);
  filling_.clear();
  writing_lines_ = filling_lines_;
  filling_lines_ = 0;
  write_offset_ = 0;
  submit_write();
}

void access_log::submit_write() {
  size_t end = writing_.size();
  if (end - write_offset_ > write_chunk_max_) {
    // A pipe: write whole lines, at most PIPE_BUF bytes at a time.
    std::string_view part(writing_.data() + write_offset_, write_chunk_max_);
    end = write_offset_ + part.rfind('\n') + 1;
  }
  write_end_ = end;
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  // Offset -1: the file position, which O_APPEND moves to the end for every write.
  io_uring_prep_write(sqe, fd_, writing_.data() + write_offset_,
                      static_cast<unsigned>(end - write_offset_), static_cast<uint64_t>(-1));
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_write));
  in_flight_ = true;
}

void access_log::on_completion(uint8_t op, int32_t res, uint32_t) {
  if (op == op_write) {
    on_write(res);
  } else {
    on_open(res);
  }
}

void access_log::on_write(int32_t res) {
  in_flight_ = false;
  if (res == -EINTR && !giving_up_) {
    submit_write();
    return;
  }
  if (res == -EAGAIN && !giving_up_) {
    // A non-blocking pipe is full: try again with the flush timer, not at once (a spin).
    retry_wanted_ = true;
    reactor_.arm_after_ms(flush_timer_, flush_interval_ms);
    return;
  }
  if (giving_up_) {
    // Shutting down and past finish_ms_max (the write was cancelled, or ended short).
    if (res > 0) write_offset_ += static_cast<size_t>(res);
    if (write_offset_ < writing_.size()) stats_.dropped += writing_lines_;
    write_offset_ = writing_.size();
  } else if (res < 0) {
    // Errors per write, not per line: a full disk must not flood stderr from every shard.
    if (stats_.write_errors++ == 0)
      RC_WARN("access log %s: write failed: %s (lines are dropped and counted)", path_.c_str(),
              std::strerror(-res));
    stats_.dropped += writing_lines_;
    write_offset_ = writing_.size();
  } else {
    // A short write (a full disk, a signal) continues where it stopped.
    write_offset_ += static_cast<size_t>(res);
  }
  if (write_offset_ < writing_.size()) {
    submit_write();
    return;
  }
  writing_.clear();
  writing_lines_ = 0;
  // Lines that arrived meanwhile leave now if they are many (or a reopen waits or the shard is
  // stopping), else with the flush timer (which a retry may have used: armed again).
  if (reopen_wanted_ || finishing_ || filling_.size() >= flush_bytes) {
    flush();
  } else if (!filling_.empty()) {
    reactor_.arm_after_ms(flush_timer_, flush_interval_ms);
  }
}

void access_log::on_flush_timer() {
  if (retry_wanted_) {
    retry_wanted_ = false;
    submit_write();
  } else {
    flush();
  }
}

void access_log::finish() {
  if (!finishing_) {
    finishing_ = true;
    reactor_.arm_after_ms(give_up_timer_, finish_ms_max);
  }
  flush();
}

void access_log::give_up() {
  giving_up_ = true;
  reactor_.cancel_timer(flush_timer_);
  stats_.dropped += filling_lines_;
  filling_.clear();
  filling_lines_ = 0;
  if (retry_wanted_) {
    retry_wanted_ = false;
    stats_.dropped += writing_lines_;
    writing_.clear();
    writing_lines_ = 0;
    write_offset_ = 0;
  }
  if (in_flight_) {
    // Its completion (-ECANCELED, or what it wrote) ends the wait; on_write drops the rest.
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_cancel64(sqe, make_user_data(this, op_write), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  }
}

void access_log::reopen() {
  if (fd_ < 0 || !owns_fd_) return;
  reopen_wanted_ = true;
  flush();  // starts the reopen now unless a write is in flight (then after it)
}

void access_log::start_reopen() {
  reopen_wanted_ = false;
  opening_ = true;
  io_uring_sqe* sqe = reactor_.ring().get_sqe();
  io_uring_prep_openat(sqe, AT_FDCWD, path_.c_str(), open_flags, open_mode);
  io_uring_sqe_set_data64(sqe, make_user_data(this, op_open));
}

void access_log::on_open(int32_t res) {
  opening_ = false;
  if (res < 0) {
    RC_WARN("access log: cannot reopen %s: %s (still writing to the old file)", path_.c_str(),
            std::strerror(-res));
  } else {
    // Nothing is in flight on the old descriptor (reopens wait for writes), so it closes now.
    io_uring_sqe* sqe = reactor_.ring().get_sqe();
    io_uring_prep_close(sqe, fd_);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ignored_user_data);
    fd_ = res;
    ++stats_.reopens;
  }
  flush();
}

}  // namespace rc::server
