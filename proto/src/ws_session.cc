#include "proto/ws_session.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>

#include "base/assert.h"
#include "proto/utf8.h"
#include "proto/ws_deflate.h"

namespace rc::ws {
namespace {

// A message buffer grown past this is released after delivery, so one large message does not
// pin its memory to an idle connection.
constexpr size_t message_capacity_kept_bytes = 64 * 1024;

// Where the fast path unmasks a message, shared by the thread's sessions so that a session between
// messages holds no buffer. A handler that feeds another session from inside its call (nothing
// does today) makes that one unmask into its own buffer instead.
thread_local byte_buffer unmask_scratch;
thread_local bool unmask_scratch_busy = false;

bool is_control(uint8_t op) {
  return (op & 0x8) != 0;
}

// Length of the header whose second byte is b1 (see parse_frame_header).
size_t header_size(uint8_t b1) {
  uint8_t len7 = b1 & 0x7f;
  size_t n = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
  return (b1 & 0x80) ? n + 4 : n;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

}  // namespace

// wslay's callbacks, forwarding to the session passed as user data.
struct session_callbacks {
  static session& self(void* user) { return *static_cast<session*>(user); }

  // Hands wslay the next bytes of the caller's input; "would block" when none are left (or the
  // input is held back at a close frame or an error), which makes wslay_event_recv() return.
  static ssize_t recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
    size_t n = self(user).fill(buf, len);
    if (n == 0) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    return static_cast<ssize_t>(n);
  }

  // Never blocks: everything goes to the caller's output buffer.
  static ssize_t send(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
    self(user).out_.append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }

  static int genmask(wslay_event_context_ptr, uint8_t* buf, size_t len, void* user) {
    session& s = self(user);
    for (size_t i = 0; i < len; i += 8) {
      uint64_t r = splitmix64(s.mask_state_);
      std::memcpy(buf + i, &r, std::min<size_t>(8, len - i));
    }
    return 0;
  }

  static void frame_start(wslay_event_context_ptr, const wslay_event_on_frame_recv_start_arg* arg,
                          void* user) {
    session& s = self(user);
    s.frame_opcode_ = arg->opcode;
    s.frame_fin_ = arg->fin != 0;
    s.frame_bytes_ = arg->payload_length;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
      s.message_opcode_ = arg->opcode;
      s.message_.clear();
      s.direct_ = {};
    }
  }

  // Payload of data frames (wslay buffers control frames itself). A single-frame message that
  // arrives in one piece is kept as a view into wslay's buffer; the message callback follows
  // before wslay reads again.
  static void frame_chunk(wslay_event_context_ptr, const wslay_event_on_frame_recv_chunk_arg* arg,
                          void* user) {
    session& s = self(user);
    if (is_control(s.frame_opcode_) || arg->data_length == 0) return;
    const char* p = reinterpret_cast<const char*>(arg->data);
    if (s.frame_opcode_ != WSLAY_CONTINUATION_FRAME && s.frame_fin_ &&
        arg->data_length == s.frame_bytes_) {
      s.direct_ = {p, arg->data_length};
    } else {
      s.message_.append(p, arg->data_length);
    }
  }

  static void message(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
    session& s = self(user);
    std::string_view control(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
    switch (arg->opcode) {
      case WSLAY_TEXT_FRAME:
      case WSLAY_BINARY_FRAME: {
        std::string_view payload = s.direct_.data() ? s.direct_ : s.message_.view();
        if (arg->rsv & WSLAY_RSV1_BIT) {  // permessage-deflate; wslay skips its UTF-8 check
          s.deliver_compressed(arg->opcode == WSLAY_TEXT_FRAME, payload);
        } else {
          s.deliver(arg->opcode == WSLAY_TEXT_FRAME ? message_kind::text : message_kind::binary,
                    payload);
        }
        s.direct_ = {};
        s.message_.clear();
        if (s.message_.capacity() > message_capacity_kept_bytes) s.message_.reset();
        break;
      }
      case WSLAY_PING:  // wslay has queued the pong
        s.deliver(message_kind::ping, control);
        break;
      case WSLAY_PONG:
        s.deliver(message_kind::pong, control);
        break;
      default:  // close frames are handled by the session and never reach wslay
        break;
    }
    // Send the pong now rather than when feed() ends: wslay drops queued control frames once
    // a close frame is queued, so the output would otherwise depend on how the input was split.
    s.flush();
  }
};

session::session(role r, message_handler on_message, byte_buffer& out, session_options options)
    : role_(r), handler_(on_message), out_(out), options_(options), mask_state_(options.mask_seed) {
  RC_ASSERT(handler_.fn != nullptr);
}

session::~session() {
  if (ctx_) wslay_event_context_free(ctx_);
}

// wslay's context, made when a frame needs it. A fresh one continues the stream exactly where the
// last one was let go: both happen between messages, at a frame boundary, with nothing queued.
wslay_event_context* session::context() {
  if (ctx_) return ctx_;
  stage_ = std::make_unique<uint8_t[]>(stage_bytes_max);
  wslay_event_callbacks callbacks = {
      session_callbacks::recv,        session_callbacks::send,        session_callbacks::genmask,
      session_callbacks::frame_start, session_callbacks::frame_chunk, nullptr,
      session_callbacks::message,
  };
  int rv = role_ == role::server ? wslay_event_context_server_init(&ctx_, &callbacks, this)
                                 : wslay_event_context_client_init(&ctx_, &callbacks, this);
  if (rv != 0) throw std::bad_alloc();  // its only failure is WSLAY_ERR_NOMEM
  wslay_event_config_set_no_buffering(ctx_, 1);
  // permessage-deflate: wslay lets RSV1 through (check_header allows it only on a data message's
  // first frame), skips UTF-8 validation of such a message and reports the bit with it.
  if (options_.inflate) wslay_event_config_set_allowed_rsv_bits(ctx_, WSLAY_RSV1_BIT);
  // The session enforces the limit on whole messages first; wslay's own check (per frame in
  // unbuffered mode, and on control frames too) must never be the tighter one.
  wslay_event_config_set_max_recv_msg_length(
      ctx_, std::max<uint64_t>(options_.message_bytes_max, control_payload_bytes_max));
  return ctx_;
}

// Lets wslay's context go once nothing depends on it: between messages (every byte handed to
// wslay processed, no frame or message open), open both ways, nothing queued to send.
void session::release_context_if_idle() {
  if (!ctx_ || !between_messages() || !wslay_event_get_read_enabled(ctx_) ||
      wslay_event_get_close_sent(ctx_) || wslay_event_want_write(ctx_)) {
    return;
  }
  wslay_event_context_free(ctx_);
  ctx_ = nullptr;
  stage_.reset();
  message_.reset();
}

bool session::read_enabled() const {
  return !ctx_ || wslay_event_get_read_enabled(ctx_);
}

session_state session::feed(std::string_view in) {
  if (read_enabled() && in_ != input_state::blocked) {
    in = take_whole_messages(in);
    if (in.empty()) {
      if (error_code_ != 0) flush();  // a compressed message failed on the fast path
      return state();
    }
    input_ = in;
    int rv = wslay_event_recv(context());
    input_ = {};
    if (rv != 0) {
      fail(close_code::internal_error, "internal error");  // out of memory
    } else if (in_ == input_state::blocked && read_enabled()) {
      // wslay has consumed every byte before the held-back frame: act on it now.
      if (pending_error_ != 0) {
        std::string_view reason = "protocol error";
        if (pending_error_ == close_code::message_too_big) reason = options_.too_big_reason;
        if (pending_error_ == close_code::policy_violation) reason = "too many fragments";
        fail(pending_error_, reason);
      } else {
        handle_close_frame();
      }
    }
  }
  flush();
  if (error_code_ == 0 && !close_received_ && !read_enabled()) {
    // wslay stopped reading on its own. Every check it makes is made earlier here except
    // UTF-8 validation of text messages, so this is invalid UTF-8 (wslay sent 1007).
    error_code_ = close_code::invalid_payload;
  }
  release_context_if_idle();
  return state();
}

// The common case without wslay: between messages, a data frame that is a whole message and is
// all in the input is checked, unmasked and delivered here (wslay would do the same work through
// three layers of callbacks and copies). Anything else — control frames, fragments, a frame cut
// by the end of the input, a header check that fails, text that is not UTF-8 — stops the loop and
// goes through wslay, which then sees a stream starting at a frame boundary, exactly as if it had
// processed the frames taken here itself. Returns the input left for wslay.
std::string_view session::take_whole_messages(std::string_view in) {
  while (!in.empty() && between_messages() && !close_sent() && read_enabled()) {
    frame_header h;
    if (parse_frame_header(in.data(), in.size(), h) != parse_status::complete) break;
    if (!h.fin || (h.opcode != WSLAY_TEXT_FRAME && h.opcode != WSLAY_BINARY_FRAME)) break;
    if (in.size() - h.header_bytes < h.payload_bytes || check_header(h) != 0) break;
    std::string_view payload = in.substr(h.header_bytes, h.payload_bytes);
    byte_buffer* unmasked = nullptr;
    if (h.masked) {
      unmasked = unmask_scratch_busy ? &message_ : &unmask_scratch;
      unmasked->clear();
      char* p = unmasked->prepare(payload.size());
      copy_masked(p, payload.data(), payload.size(), h.mask);
      payload = {p, payload.size()};
    }
    bool text = h.opcode == WSLAY_TEXT_FRAME;
    if (h.rsv != 0) {  // permessage-deflate (check_header allowed it)
      in.remove_prefix(h.header_bytes + h.payload_bytes);
      // The inflater's output is delivered: the unmasked bytes are free again at once.
      bool ok = deliver_compressed(text, payload);
      if (unmasked == &message_) message_.reset();
      if (unmask_scratch.capacity() > message_capacity_kept_bytes) unmask_scratch.reset();
      if (!ok) return {};
      continue;
    }
    if (text && !utf8::valid(payload)) break;  // wslay fails it with 1007
    in.remove_prefix(h.header_bytes + h.payload_bytes);
    if (unmasked == &unmask_scratch) {
      unmask_scratch_busy = true;
      deliver(text ? message_kind::text : message_kind::binary, payload);
      unmask_scratch_busy = false;
      if (unmask_scratch.capacity() > message_capacity_kept_bytes) unmask_scratch.reset();
    } else {
      deliver(text ? message_kind::text : message_kind::binary, payload);
      if (unmasked) message_.reset();
    }
  }
  return in;
}

// Fills wslay's buffer from the input, splitting it into frames on the way: headers are checked
// before wslay sees them, payloads pass through, close frames are kept back whole.
size_t session::fill(uint8_t* buf, size_t len) {
  size_t n = 0;
  while (n < len) {
    if (stage_released_ < release_bytes_) {  // a checked header not yet handed over
      size_t k = std::min(len - n, release_bytes_ - stage_released_);
      std::memcpy(buf + n, stage_.get() + stage_released_, k);
      n += k, stage_released_ += k;
    } else if (in_ == input_state::payload) {
      if (payload_left_ == 0) {
        in_ = input_state::header;
        stage_bytes_ = release_bytes_ = stage_released_ = 0;
        continue;
      }
      if (input_.empty()) break;
      size_t k = std::min<uint64_t>({len - n, payload_left_, input_.size()});
      std::memcpy(buf + n, input_.data(), k);
      input_.remove_prefix(k);
      n += k, payload_left_ -= k;
    } else if (in_ == input_state::header) {
      if (!take_header()) break;
    } else if (in_ == input_state::close_frame) {
      size_t total = header_.header_bytes + header_.payload_bytes;
      size_t k = std::min(total - stage_bytes_, input_.size());
      std::memcpy(stage_.get() + stage_bytes_, input_.data(), k);
      input_.remove_prefix(k);
      stage_bytes_ += k;
      if (stage_bytes_ == total) in_ = input_state::blocked;
      break;
    } else {
      break;  // blocked
    }
  }
  return n;
}

// Takes the next frame header into stage_ and checks it. Returns true if the state moved on (to
// payload or close_frame), false if more input is needed or the input is now blocked by an error.
bool session::take_header() {
  frame_header h;
  parse_status st = parse_status::incomplete;
  if (stage_bytes_ == 0) {  // usually the whole header is in the input: parse it there
    st = parse_frame_header(input_.data(), input_.size(), h);
    if (st == parse_status::complete) {
      std::memcpy(stage_.get(), input_.data(), h.header_bytes);
      stage_bytes_ = h.header_bytes;
      input_.remove_prefix(h.header_bytes);
    }
  }
  // A header split across reads is gathered in stage_, asking only for the bytes it needs.
  while (st == parse_status::incomplete) {
    if (input_.empty()) return false;
    size_t need = stage_bytes_ < 2 ? 2 : header_size(stage_[1]);
    size_t k = std::min(need - stage_bytes_, input_.size());
    std::memcpy(stage_.get() + stage_bytes_, input_.data(), k);
    input_.remove_prefix(k);
    stage_bytes_ += k;
    st = parse_frame_header(reinterpret_cast<const char*>(stage_.get()), stage_bytes_, h);
  }
  // A parse error is a length not in minimal form.
  uint16_t code = st == parse_status::error ? close_code::protocol_error : check_header(h);
  if (code != 0) {
    pending_error_ = code;
    in_ = input_state::blocked;
    return false;
  }
  accept_header(h);
  return true;
}

// RFC 6455 §5.2-5.5 for a frame arriving at role_: returns the close code it violates, or 0.
uint16_t session::check_header(const frame_header& h) const {
  // RSV1 marks a compressed message (RFC 7692 §6.1): on its first frame only, if negotiated.
  bool first_data = h.opcode == WSLAY_TEXT_FRAME || h.opcode == WSLAY_BINARY_FRAME;
  if (h.rsv != 0 && !(h.rsv == 4 && first_data && options_.inflate != nullptr)) {
    return close_code::protocol_error;
  }
  switch (h.opcode) {
    case WSLAY_CONTINUATION_FRAME:
      if (!in_message_) return close_code::protocol_error;
      break;
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
      if (in_message_) return close_code::protocol_error;
      break;
    case WSLAY_CONNECTION_CLOSE:
    case WSLAY_PING:
    case WSLAY_PONG:
      if (!h.fin || h.payload_bytes > control_payload_bytes_max) return close_code::protocol_error;
      // A close payload is empty or starts with a two-byte code (§5.5.1).
      if (h.opcode == WSLAY_CONNECTION_CLOSE && h.payload_bytes == 1) {
        return close_code::protocol_error;
      }
      break;
    default:
      return close_code::protocol_error;  // reserved opcodes
  }
  if (h.masked != (role_ == role::server)) return close_code::protocol_error;  // §5.1
  if (!is_control(h.opcode) && message_bytes_ + h.payload_bytes > options_.message_bytes_max) {
    return close_code::message_too_big;
  }
  if (h.opcode == WSLAY_CONTINUATION_FRAME && message_frames_ >= options_.message_frames_max) {
    return close_code::policy_violation;
  }
  return 0;
}

void session::accept_header(const frame_header& h) {
  header_ = h;
  if (h.opcode == WSLAY_CONNECTION_CLOSE) {
    in_ = input_state::close_frame;  // stage_ keeps the header; the payload joins it
    return;
  }
  if (!is_control(h.opcode)) {
    message_bytes_ += h.payload_bytes;
    message_frames_ = h.opcode == WSLAY_CONTINUATION_FRAME ? message_frames_ + 1 : 1;
    in_message_ = !h.fin;
    if (h.fin) message_bytes_ = message_frames_ = 0;
  }
  release_bytes_ = stage_bytes_;
  stage_released_ = 0;
  payload_left_ = h.payload_bytes;
  in_ = input_state::payload;
}

void session::handle_close_frame() {
  auto* payload = stage_.get() + header_.header_bytes;
  size_t len = header_.payload_bytes;
  if (header_.masked) apply_mask(reinterpret_cast<char*>(payload), len, header_.mask);
  uint16_t code = 0;
  std::string_view reason;
  if (len >= 2) {
    code = static_cast<uint16_t>((payload[0] << 8) | payload[1]);
    reason = {reinterpret_cast<const char*>(payload) + 2, len - 2};
    if (!valid_close_code(code)) return fail(close_code::protocol_error, "invalid close code");
    if (!utf8::valid(reason)) return fail(close_code::invalid_payload, "invalid UTF-8");
  }
  close_received_ = true;
  peer_code_ = len >= 2 ? code : close_code::no_status;
  peer_reason_.assign(reason);
  // Echo the code (§5.5.1); does nothing if our close frame was already queued.
  wslay_event_queue_close(ctx_, code, nullptr, 0);
  wslay_event_shutdown_read(ctx_);
}

void session::fail(uint16_t code, std::string_view reason) {
  error_code_ = code;
  // Fails harmlessly if a close frame was already queued (we were closing).
  wslay_event_queue_close(context(), code, reinterpret_cast<const uint8_t*>(reason.data()),
                          reason.size());
  wslay_event_shutdown_read(ctx_);
  in_ = input_state::blocked;
}

// Safe inside wslay_event_recv() too (from the message callback): sending touches only wslay's
// output state and queues, never the frame being received.
void session::flush() {
  // Our send callback never blocks, so wslay writes out everything it has queued.
  if (ctx_) wslay_event_send(ctx_);
}

void session::deliver(message_kind kind, std::string_view payload) {
  handler_.fn(handler_.ctx, kind, payload);
}

bool session::deliver_compressed(bool text, std::string_view compressed) {
  inflate_status st = options_.inflate->inflate(compressed, options_.message_bytes_max);
  if (st == inflate_status::too_big) {
    fail(close_code::message_too_big, options_.too_big_reason);
  } else if (st == inflate_status::bad_data) {
    fail(close_code::invalid_payload, "invalid compressed data");
  } else if (text && !utf8::valid(options_.inflate->output())) {
    fail(close_code::invalid_payload, "invalid UTF-8");
  } else {
    deliver(text ? message_kind::text : message_kind::binary, options_.inflate->output());
    options_.inflate->trim();
    return true;
  }
  options_.inflate->trim();
  return false;
}

bool session::send(message_kind kind, std::string_view payload) {
  uint8_t op = kind == message_kind::text     ? WSLAY_TEXT_FRAME
               : kind == message_kind::binary ? WSLAY_BINARY_FRAME
               : kind == message_kind::ping   ? WSLAY_PING
                                              : WSLAY_PONG;
  RC_ASSERT(!is_control(op) || payload.size() <= control_payload_bytes_max);
  if (!ctx_) {
    // Nothing is queued and no close was sent (either would keep the context): write the frame
    // as wslay would, with the next mask key from the same generator.
    std::optional<mask_key> mask;
    if (role_ == role::client) {
      uint64_t r = splitmix64(mask_state_);
      mask.emplace();
      std::memcpy(mask->data(), &r, mask->size());
    }
    write_frame(out_, static_cast<opcode>(op), payload, fin::yes, mask);
    return true;
  }
  wslay_event_msg msg = {op, reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return false;
  flush();
  return true;
}

void session::close(uint16_t code, std::string_view reason) {
  RC_ASSERT(valid_close_code(code));
  RC_ASSERT(reason.size() <= close_reason_bytes_max);
  RC_ASSERT(utf8::valid(reason));
  wslay_event_queue_close(context(), code, reinterpret_cast<const uint8_t*>(reason.data()),
                          reason.size());
  flush();
}

void session::refuse(uint16_t code, std::string_view reason) {
  RC_ASSERT(valid_close_code(code));
  RC_ASSERT(reason.size() <= close_reason_bytes_max);
  fail(code, reason);
  message_.reset();
  direct_ = {};
  flush();
}

// Without a context the session is open: a close or an error keeps it to the end.
session_state session::state() const {
  if (!read_enabled()) return session_state::closed;
  if (close_sent()) return session_state::closing;
  return session_state::open;
}

bool session::close_sent() const {
  return ctx_ && wslay_event_get_close_sent(ctx_) != 0;
}

uint16_t session::sent_close_code() const {
  return ctx_ ? wslay_event_get_status_code_sent(ctx_) : close_code::abnormal;
}

}  // namespace rc::ws
