// ws::session: one WebSocket connection's protocol state after the handshake, driven from the
// caller's buffers (no sockets, nothing blocks). Both roles: the server's client connections, and
// the client side used by the load generator and upstream engines.
//
// The caller feeds the bytes it received; the session hands complete messages (text, binary, and
// ping/pong for liveness) to a message_handler before feed() returns, and appends everything it
// must send (pongs, close frames, messages queued with send()) to the caller's output buffer as
// whole frames. The server's bulk data path does not come through here: it writes frames with
// ws.h's writers into its own queue, and sends this buffer ahead of them (the control lane).
//
// wslay 1.1.1 (its event API) does fragment reassembly, ping->pong, queueing and masking of
// outgoing frames, and UTF-8 validation of text messages, incremental across frames (1007). The
// session adds what wslay lacks or gets wrong, by checking every frame header before wslay sees
// it and by handling close frames itself:
// * protocol errors that wslay's frame layer reports only as a bare failure (a control frame that
//   is fragmented or longer than 125 bytes, a length not in minimal form) close with 1002, like
//   the rest: RSV bits, reserved opcodes, continuation without a start, a new message inside a
//   fragmented one, an unmasked frame at the server or a masked one at the client;
// * a message longer than message_bytes_max in total (not per frame) closes with 1009, decided on
//   the frame header, before its payload is buffered; one in more than message_frames_max frames
//   closes with 1008 ("too many fragments");
// * close frames: wslay skips the first two bytes of *every* read chunk when it validates a close
//   reason, so a reason split across reads is misjudged (valid ones get 1007); it takes a
//   one-byte close payload for "no status" instead of a protocol error, and rejects the IANA
//   codes 1012-1014. The session collects the close frame whole, checks the code (1002) and the
//   reason's UTF-8 (1007), echoes the code, and never hands the frame to wslay.
// Messages are received unbuffered by wslay and assembled here in one reusable buffer; a message
// that arrives whole in one read is delivered straight from wslay's input buffer without a copy.
// The most common input of all — whole unfragmented data frames, at a frame boundary — skips
// wslay: the session checks the header (the same checks as above), unmasks, validates UTF-8 and
// delivers it itself, and hands wslay only what follows; wslay never notices, since it is left
// at a frame boundary between messages. Any frame that would make wslay act (control frames,
// fragments, errors) goes through wslay as before.
//
// Memory: wslay's context (about 8.5 KiB with its frame buffers) exists only while wslay is needed:
// it is made when a frame the fast path can't take arrives (or a close is sent), and let go at the
// end of feed() once the session is back between messages with nothing queued; a fresh context
// continues the stream exactly. Closing and failed sessions keep theirs. The fast path unmasks
// into a buffer shared by the thread's sessions, and send() writes frames itself while there is
// no context (the same bytes wslay writes, with the same mask keys), so a session that only sees
// whole messages never makes one and holds no buffer between messages.
//
// permessage-deflate (session_options::inflate): a compressed message is inflated whole once it
// is complete — on the fast path straight from the input, otherwise once wslay has assembled it
// — so the session holds no compression state of its own.
//
// After an error the session queues the close frame with the right code and stops reading: the
// rest of that input and all later input is ignored, and state() is `closed` — send the output,
// then close the connection.
//
// Thread-safety: a session belongs to the thread that owns its connection. It must not be moved
// (wslay holds a pointer to it) and must not be destroyed from inside its message handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/ws.h"

struct wslay_event_context;

namespace rc::ws {

class inflater;

enum class message_kind : uint8_t { text, binary, ping, pong };

// Called once per complete message. The payload is valid only during the call. The handler may
// call send() and close() on the session; their frames go to the output at once, in order.
struct message_handler {
  void (*fn)(void* ctx, message_kind kind, std::string_view payload) = nullptr;
  void* ctx = nullptr;
};

// A handler that calls obj->*Method(kind, payload), without a virtual call.
template <auto Method, class T>
message_handler bind_handler(T* obj) {
  return {[](void* ctx, message_kind kind, std::string_view payload) {
            (static_cast<T*>(ctx)->*Method)(kind, payload);
          },
          obj};
}

struct session_options {
  // Largest message accepted, in payload bytes summed over its fragments.
  size_t message_bytes_max = 1 << 20;
  // The close reason (1009) for a message over it; a server names its flag here. At most 123 bytes
  // (RFC 6455 §5.5: control payloads are 125 bytes, the code takes 2); must outlive the session.
  std::string_view too_big_reason = "message too big";
  // Most frames one message may arrive in: a peer can't keep a message open forever with empty
  // continuation frames, or make the receiver do per-frame work for every few bytes.
  size_t message_frames_max = 4096;
  // Client role: seeds the generator of frame mask keys. Masking protects intermediaries from
  // payloads that script in a browser controls (RFC 6455 §10.3); our clients run no untrusted
  // script, so a fast generator seeded from getrandom() by the caller is enough.
  uint64_t mask_seed = 0x9e3779b97f4a7c15;
  // permessage-deflate (ws_deflate.h), when negotiated: RSV1 is then allowed on the first frame
  // of a data message, and such a message is inflated with this inflater (never past
  // message_bytes_max: 1009; corrupt data: 1007) before its UTF-8 is checked and it is
  // delivered. The agreement always asks the client not to keep its context, so one inflater
  // may serve every session of a thread. Null: no extension (RSV1 is a protocol error, 1002).
  inflater* inflate = nullptr;
};

enum class session_state : uint8_t {
  open,     // messages flow both ways
  closing,  // we sent a close frame and wait for the peer's; keep feeding input
  closed,   // nothing more is read or written: send the output, then close the connection
};

class session {
 public:
  // out receives every byte to send; it must outlive the session.
  session(role r, message_handler on_message, byte_buffer& out, session_options options = {});
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // Processes bytes received from the peer (any split of the stream works). Returns the state
  // afterwards. Input after a close frame or an error is ignored.
  session_state feed(std::string_view in);

  // Queues a message (copied) and appends its frame to the output. Returns false if the session
  // no longer sends (a close frame was queued). REQUIRES: text is valid UTF-8 (not re-checked);
  // pings at most control_payload_bytes_max bytes.
  bool send(message_kind kind, std::string_view payload);

  // Starts the closing handshake: appends a close frame; the state becomes `closing` until the
  // peer's close frame arrives. Does nothing if a close frame was already sent.
  // REQUIRES: valid_close_code(code); reason is UTF-8 of at most close_reason_bytes_max bytes.
  void close(uint16_t code, std::string_view reason = {});

  // Bytes held for a message being received (its buffer's capacity; 0 between messages).
  size_t buffered_bytes() const { return message_.capacity(); }
  // Fails the session as a protocol error would: drops the partial message, queues a close
  // frame with `code` and stops reading (state() becomes `closed`). For an owner that can't
  // afford the partial data (1009). REQUIRES: as close().
  void refuse(uint16_t code, std::string_view reason);

  session_state state() const;
  // Nothing of a frame or a message is pending: the session could be dropped and a fresh one
  // would continue the stream exactly (owners use this to free idle sessions' buffers).
  bool between_messages() const {
    return in_ == input_state::header && stage_bytes_ == 0 && payload_left_ == 0 && !in_message_ &&
           !close_received_ && pending_error_ == 0;
  }
  bool close_received() const { return close_received_; }
  // wslay's context (about 8.5 KiB) is held: a frame the fast path can't take is in progress,
  // or the session is closing or has failed.
  bool has_context() const { return ctx_ != nullptr; }
  bool close_sent() const;
  // The code in the peer's close frame: close_code::no_status if it had none, close_code::abnormal
  // if no close frame was received.
  uint16_t peer_close_code() const { return peer_code_; }
  std::string_view peer_close_reason() const { return peer_reason_; }
  // The code in the close frame we sent (close_code::abnormal if none yet).
  uint16_t sent_close_code() const;
  // The close code of the failure that ended the session (1002, 1007, 1009, 1011), or 0.
  uint16_t error_code() const { return error_code_; }

 private:
  enum class input_state : uint8_t { header, payload, close_frame, blocked };

  friend struct session_callbacks;  // wslay's C callbacks, in the .cc

  std::string_view take_whole_messages(std::string_view in);
  size_t fill(uint8_t* buf, size_t len);
  bool take_header();
  uint16_t check_header(const frame_header& h) const;
  void accept_header(const frame_header& h);
  void handle_close_frame();
  void fail(uint16_t code, std::string_view reason);
  void flush();
  wslay_event_context* context();
  void release_context_if_idle();
  bool read_enabled() const;
  void deliver(message_kind kind, std::string_view payload);
  // permessage-deflate: inflates and delivers a compressed message; false if it failed the
  // session (1007 / 1009).
  bool deliver_compressed(bool text, std::string_view compressed);

  wslay_event_context* ctx_ = nullptr;
  role role_;
  message_handler handler_;
  byte_buffer& out_;
  session_options options_;
  uint64_t mask_state_;

  // The stream is split into frames here, ahead of wslay (see the top of the file).
  std::string_view input_;  // what is left of the bytes given to feed()
  input_state in_ = input_state::header;
  // Only while wslay is needed (with ctx_): everything it holds is in wslay's part of the stream.
  static constexpr size_t stage_bytes_max = frame_header_bytes_max + control_payload_bytes_max;
  std::unique_ptr<uint8_t[]> stage_;
  size_t stage_bytes_ = 0;     // a frame header, or a whole close frame, being gathered
  size_t release_bytes_ = 0;   // staged bytes to hand to wslay (a checked header), or 0
  size_t stage_released_ = 0;  // of those, handed over so far
  frame_header header_;        // the header in stage_, once complete
  uint64_t payload_left_ = 0;  // payload bytes of the current frame not yet handed to wslay
  bool in_message_ = false;    // a fragmented data message is open
  uint64_t message_bytes_ = 0;
  uint64_t message_frames_ = 0;  // frames of the current data message so far
  uint16_t pending_error_ = 0;  // a failure found ahead of wslay, applied once it is drained

  // Reassembly of the message being received.
  uint8_t frame_opcode_ = 0;
  bool frame_fin_ = false;
  uint64_t frame_bytes_ = 0;
  uint8_t message_opcode_ = 0;
  std::string_view direct_;  // a whole single-frame message in wslay's buffer
  byte_buffer message_;

  bool close_received_ = false;
  uint16_t peer_code_ = close_code::abnormal;
  std::string peer_reason_;
  uint16_t error_code_ = 0;
};

}  // namespace rc::ws
