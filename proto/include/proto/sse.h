// Server-Sent Events (WHATWG HTML §9.2): the encoder for the streams ringcast serves and an
// incremental decoder for the streams it reads from upstreams (OpenAI-compatible engines).
//
// Encoder. An event becomes `id:`, `event:`, `retry:` and `data:` lines and a blank line. Data
// is split at every line end (LF, CRLF or CR) into one `data:` line per line, so a receiver
// reconstructs the same text with LF line ends; empty data still yields one `data:` line (an
// event without one would not be dispatched). encoded_size() + encode() write straight into a
// region the caller sized, so the server can put an HTTP chunk header in front and fan-out can
// encode an event once for every subscriber. id and event type are single-line fields: the
// caller checks untrusted values with valid_field() first; encoding an invalid one is a
// programmer error (RC_ASSERT).
//
// Decoder. The event-stream interpretation of §9.2.6, byte for byte: LF, CRLF and CR line
// ends (a CR ending one chunk and an LF starting the next are one line end), a UTF-8 BOM at the
// start of the stream is skipped, comment lines (`:`) are ignored, a line without a colon is a
// field with an empty value, one space after the colon is stripped, `id` containing NUL is
// ignored, `retry` takes only ASCII digits, a blank line dispatches, the type defaults to
// "message" and the last LF of the data is removed. An event without data is not dispatched, and
// an event cut off by the end of the stream is never dispatched. Bytes are passed through
// unchanged: invalid UTF-8 is not replaced by U+FFFD here (the JSON parser that consumes the
// data rejects it). Any split of the input into chunks decodes to the same events.
//
// The decoder copies what it keeps (partial lines, the data of the event being built) into its
// own buffers, so the caller may reuse its network buffers after each call; capacity is kept
// across events. Memory is bounded by decoder_limits: a longer line or larger event is an error
// (a hostile upstream must not grow memory without bound), after which the decoder stays failed.
//
// Thread-safety: the encoder functions are pure; a decoder belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::sse {

// ---- encoder ----

struct event {
  // `id:` line. Absent: no line. Present and empty: resets the client's Last-Event-ID.
  std::optional<std::string_view> id = {};
  // `event:` line; empty means the default type ("message") and writes no line.
  std::string_view type = {};
  // One `data:` line per line of text, at least one.
  std::string_view data = {};
  // `retry:` line: the client's reconnection delay.
  std::optional<uint32_t> retry_ms = {};
};

// True if s may be sent as an id, event type or comment: no CR, LF or NUL.
bool valid_field(std::string_view s);

// Exact number of bytes encode() writes for e.
size_t encoded_size(const event& e);

// Writes e to dst and returns the end of what was written (dst + encoded_size(e)).
// REQUIRES: dst has room for encoded_size(e) bytes; valid_field(*e.id) and valid_field(e.type).
char* encode(const event& e, char* dst);

// Appends e to out. Same REQUIRES as encode().
void write_event(byte_buffer& out, const event& e);

// Appends a comment block, ": text\n\n" (":\n\n" when text is empty). Clients ignore it; it keeps
// idle streams and intermediaries alive (heartbeats). REQUIRES: valid_field(text).
void write_comment(byte_buffer& out, std::string_view text);

// Appends "retry: <ms>\n\n": sets the reconnection delay without dispatching an event.
void write_retry(byte_buffer& out, uint32_t retry_ms);

// ---- decoder ----

struct decoder_limits {
  // Longest line, without its line end.
  size_t line_bytes_max = 1 << 20;
  // Most data bytes (the joined `data:` values plus their LFs) one event may gather.
  size_t event_bytes_max = 4 << 20;
};

enum class decode_error : uint8_t {
  none,
  line_too_long,    // a line longer than line_bytes_max
  event_too_large,  // an event with more than event_bytes_max bytes of data
};

// A dispatched event. The views point into the decoder and stay valid until its next call.
struct decoded_event {
  std::string_view type;  // "message" unless an `event:` field set it
  std::string_view data;
  std::string_view id;  // the last event ID string at dispatch (possibly from earlier events)
};

class decoder {
 public:
  enum class step : uint8_t { need_more, event, error };

  explicit decoder(decoder_limits limits = {});

  // Consumes bytes from the front of `in` until an event is dispatched (returns event;
  // current() holds it and `in` has been advanced past the blank line), `in` is exhausted
  // (need_more), or the input breaks a limit (error; see error()). Call again with the rest.
  step next(std::string_view& in);
  const decoded_event& current() const { return event_; }

  // Decodes all of `in`, calling on_event(const decoded_event&) for each event dispatched.
  // Returns decode_error::none, or the error that stopped decoding. Events dispatched before an
  // error are delivered.
  template <class OnEvent>
  decode_error feed(std::string_view in, OnEvent&& on_event) {
    for (;;) {
      step s = next(in);
      if (s != step::event) return error_;
      on_event(static_cast<const decoded_event&>(event_));
    }
  }

  decode_error error() const { return error_; }
  // The last event ID string (what a reconnect sends as Last-Event-ID).
  std::string_view last_event_id() const { return last_id_; }
  // The reconnection time from the last valid `retry:` field, if any (saturates at UINT64_MAX).
  std::optional<uint64_t> retry_ms() const { return retry_ms_; }

  // Starts a new stream (after a reconnect): discards partial lines and the event being built,
  // empties the stream's buffers (§9.2.6) and expects a BOM again; keeps last_event_id() and
  // retry_ms(), which belong to the event source, not the stream. Clears a failed state.
  void restart();

 private:
  void skip_bom(std::string_view& in);
  // Handles one complete line; returns true if it dispatched an event.
  bool process_line(std::string_view line);
  void process_field(std::string_view field, std::string_view value);
  bool dispatch();
  step fail(decode_error e);

  decoder_limits limits_;
  decode_error error_ = decode_error::none;
  uint8_t bom_matched_ = 0;  // bytes of the BOM seen so far at stream start
  bool bom_done_ = false;    // past the point where a BOM may appear
  bool skip_lf_ = false;     // the previous chunk ended with CR: an LF now is part of that line end
  bool dispatched_ = false;  // event_ is live: clear the buffers on the next call
  byte_buffer line_;         // a line that started in an earlier chunk
  byte_buffer data_;         // the data buffer (values joined with LF, with a trailing LF)
  std::string type_;         // the event type buffer
  std::string id_;           // the last event ID buffer
  std::string last_id_;      // the last event ID string
  std::optional<uint64_t> retry_ms_;
  decoded_event event_;
};

// True if data is OpenAI's end-of-stream sentinel: the chat completions stream ends with
// `data: [DONE]`, which is not JSON and must not be parsed as a chunk.
inline bool is_openai_done(std::string_view data) {
  return data == "[DONE]";
}

}  // namespace rc::sse
