// The access log (--access-log PATH): one JSON line per request, SSE stream, WebSocket connection
// and generation request over a WebSocket. docs/operations.md ("Logs") describes the fields.
//
// encode_access_line() is the pure line encoder: a record in, one line of JSON (ending in '\n')
// out. Every string is escaped by the JSON writer (control bytes escaped, invalid UTF-8 replaced
// by U+FFFD) and cut to a bound, so a line is always valid JSON, never contains a raw newline,
// and is shorter than access_line_bytes_max (less than PIPE_BUF: a line written to a pipe in one
// write never interleaves with another shard's).
//
// access_log is one shard's writer. Lines are appended to an in-memory buffer; the buffer goes to
// the file in one IORING_OP_WRITE when it passes flush_bytes, flush_interval_ms after its first
// line, and when the shard stops. The shard thread never blocks on the file: one write is in
// flight at a time, and while it is, new lines collect in the other buffer up to buffer_bytes_max;
// lines beyond that are dropped and counted (never blocking, never growing without bound). Each
// shard opens the path itself with O_APPEND and writes whole lines only, so lines from different
// shards never interleave mid-line. reopen() (SIGUSR1, SIGHUP) opens the path again with
// IORING_OP_OPENAT once the write in flight is done, and closes the old descriptor: after
// logrotate renames the file, new lines go to a new file at the path. "-" writes to stdout
// (reopen does nothing then).
//
// Thread-safety: an access_log belongs to its shard.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "core/reactor.h"
#include "core/timer_wheel.h"

namespace rc::server {

// Why a request or stream ended (the close_reason field).
enum class close_reason : uint8_t {
  none,           // not decided yet: the context picks the default when the line is written
  complete,       // answered in full (also error statuses: the response itself is complete)
  client_closed,  // the client went away (or closed its WebSocket) first
  deadline,       // the generation's deadline passed
  slow_consumer,  // dropped for not reading its stream
  drain,          // ended by shutdown
  timeout,        // a header, write or idle timeout
  error,          // an engine failure, a protocol error, a failed socket
};
std::string_view close_reason_label(close_reason r);

// Bounds on the strings of a line (longer values are cut), so a line stays under
// access_line_bytes_max even when every byte needs a 6-byte escape.
inline constexpr size_t access_request_id_bytes_max = 64;
inline constexpr size_t access_path_bytes_max = 256;
inline constexpr size_t access_key_bytes_max = 64;
inline constexpr size_t access_short_bytes_max = 32;  // method, route, client, protocol
inline constexpr size_t access_line_bytes_max = 4096;

struct access_record {
  int64_t wall_ms = 0;  // the time the line describes (its end), Unix ms
  std::string_view request_id;
  std::string_view ws_id;     // a request over a WebSocket: the client's id for it
  std::string_view client;    // "address:port"; empty: absent
  std::string_view key;       // the API key's name, never the key; empty: anonymous
  std::string_view method;    // empty: absent (a request that could not be parsed)
  std::string_view route;     // the route pattern, as in metrics
  std::string_view path;      // the path without its query; empty: absent
  std::string_view protocol;  // "http", "sse", "ws"
  int status = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t duration_us = 0;
  int64_t first_byte_us = -1;   // < 0: absent
  int64_t first_token_us = -1;  // < 0: absent
  close_reason reason = close_reason::complete;
};

// Appends one line (JSON object + '\n') describing `r`.
void encode_access_line(byte_buffer& out, const access_record& r);
// "2026-12-04T14:25:33.123Z": RFC 3339, UTC, milliseconds. `out` must hold 24 bytes.
void format_rfc3339_ms(int64_t wall_ms, char* out);

struct access_log_stats {
  uint64_t lines = 0;         // lines accepted into the buffer
  uint64_t dropped = 0;       // lines dropped: the buffer was full or a write failed
  uint64_t write_errors = 0;  // failed writes (their lines are counted in dropped)
  uint64_t reopens = 0;       // completed reopens
};

class access_log final : public io_handler {
 public:
  static constexpr size_t flush_bytes = 64 * 1024;
  static constexpr size_t buffer_bytes_max = 1024 * 1024;
  static constexpr uint32_t flush_interval_ms = 200;
  // Shutdown: what has not left this long after finish() is dropped (and counted).
  static constexpr uint32_t finish_ms_max = 1000;

  // `path` empty: off (every call is a cheap no-op). Nothing is opened until open().
  access_log(reactor& r, std::string path);
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;
  ~access_log();

  // Opens the path (at shard start, before any request). Empty on success, else the reason.
  std::string open();
  bool enabled() const { return fd_ >= 0; }

  // Encodes and buffers one line (or counts it as dropped).
  void write(const access_record& r);
  // Starts writing what is buffered, unless a write or a reopen is in flight.
  void flush();
  // Opens the path again (after the write in flight), then writes to the new file.
  void reopen();
  // Shutdown: starts writing what is buffered; what has not left finish_ms_max later (a pipe
  // nobody reads) is dropped and counted, and the write in flight is cancelled.
  void finish();
  // Nothing buffered and nothing in flight: safe to stop the shard.
  bool settled() const { return !in_flight_ && !opening_ && !retry_wanted_ && filling_.empty(); }

  const access_log_stats& stats() const { return stats_; }
  // The wall clock (Unix ms) at a monotonic_ns() reading, for the time of a line.
  int64_t wall_ms(uint64_t monotonic_ns);

 private:
  enum op_code : uint8_t { op_write = 1, op_open = 2 };
  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;
  void on_write(int32_t res);
  void on_open(int32_t res);
  void submit_write();
  void start_reopen();
  void on_flush_timer();
  void give_up();

  reactor& reactor_;
  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;        // false for stdout
  size_t write_chunk_max_ = 0;  // pipes: PIPE_BUF, so a write is atomic; files: no bound
  byte_buffer filling_;         // lines waiting for the next write
  byte_buffer writing_;         // the write in flight (from write_offset_ on)
  size_t write_offset_ = 0;
  size_t write_end_ = 0;  // end of the part of writing_ submitted
  uint64_t writing_lines_ = 0;
  uint64_t filling_lines_ = 0;
  bool in_flight_ = false;
  bool opening_ = false;
  bool reopen_wanted_ = false;
  bool retry_wanted_ = false;  // a write found the pipe full: writing_ is retried on flush_timer_
  bool finishing_ = false;     // finish() was called
  bool giving_up_ = false;     // past finish_ms_max: what has not left is dropped
  timer flush_timer_;
  timer give_up_timer_;
  access_log_stats stats_;
  uint64_t synced_ns_ = 0;  // wall_ms(): when the offset was read
  int64_t wall_offset_ns_ = 0;
};

}  // namespace rc::server
