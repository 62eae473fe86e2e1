// WebSocket (RFC 6455) without I/O: the opening handshake check and response, and the frame
// codec (header parse/encode, masking, frame writers).
//
// Handshake. The HTTP parser stays separate: the server copies the few fields the handshake
// needs into a handshake_request and gets back either the Sec-WebSocket-Accept value or a
// status, a message and possibly one header to send. Policy:
// * a method other than GET is 405 with `Allow: GET`: check_handshake() is called only for
//   targets that exist solely as WebSocket endpoints (a POST /v1/responses carrying Upgrade is an
//   ordinary request; the Upgrade field may be ignored, RFC 9110 §7.8), so the target is known and
//   the method is what is wrong, which is exactly 405 (RFC 9110 §15.5.6); RFC 6455 §4.2.1 only
//   asks for "an appropriate error code (such as 400)";
// * HTTP/1.0, a missing or wrong Upgrade (must list "websocket"), a Connection without the
//   "upgrade" token, or a Sec-WebSocket-Key that is not the base64 of exactly 16 bytes is 400;
// * a Sec-WebSocket-Version other than 13 (or none) is 426 with `Sec-WebSocket-Version: 13`
//   (§4.2.2), checked before the key so an old-draft client learns what to speak.
// Origin is not judged here: the server compares it with its configured CORS origins.
//
// Frames. Writers append complete frames to a byte_buffer; encode_frame_header() writes just the
// header so a payload that already sits in a shared buffer can follow it without a copy (fan-out
// encodes one frame for every subscriber). Server frames are unmasked; client frames carry the
// caller's mask key and the payload is masked while it is copied. parse_frame_header() decodes a
// header and rejects only what is malformed at the byte level (a length not in its minimal form,
// a 64-bit length with the top bit set); what is allowed where (opcodes, RSV bits, masking,
// control frame rules) is the session's business (ws_session.h).
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::ws {

// ---- frames ----

enum class opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xa,
};

enum class role : uint8_t { server, client };

// The FIN bit: `no` when more fragments of the message follow.
enum class fin : uint8_t { no, yes };

// Close codes (RFC 6455 §7.4.1 and the IANA registry).
namespace close_code {
constexpr uint16_t normal = 1000;
constexpr uint16_t going_away = 1001;  // server drain
constexpr uint16_t protocol_error = 1002;
constexpr uint16_t unsupported_data = 1003;
constexpr uint16_t no_status = 1005;  // never sent: a close frame without a code
constexpr uint16_t abnormal = 1006;   // never sent: the connection dropped without a close frame
constexpr uint16_t invalid_payload = 1007;   // e.g. invalid UTF-8 in a text message
constexpr uint16_t policy_violation = 1008;  // auth, origin, slow consumer
constexpr uint16_t message_too_big = 1009;
constexpr uint16_t internal_error = 1011;
}  // namespace close_code

// True if code may appear in a close frame: 1000-1003, 1007-1014 and 3000-4999. 1004 is reserved,
// 1005, 1006 and 1015 stand for conditions that are never sent, the rest are unassigned.
bool valid_close_code(uint16_t code);

constexpr size_t frame_header_bytes_max = 14;  // 2 + 8-byte length + 4-byte mask key
constexpr size_t control_payload_bytes_max = 125;
constexpr size_t close_reason_bytes_max = control_payload_bytes_max - 2;

using mask_key = std::array<uint8_t, 4>;

// XORs the n bytes at p with key, as payload bytes starting `offset` bytes into a frame's
// payload (so a payload can be unmasked in pieces). Word-at-a-time.
void apply_mask(char* p, size_t n, mask_key key, uint64_t offset = 0);
// Copies n bytes from src to dst, masked as a payload starting at offset 0.
void copy_masked(char* dst, const char* src, size_t n, mask_key key);

// Size of the header encode_frame_header() writes.
constexpr size_t frame_header_size(uint64_t payload_bytes, bool masked) {
  size_t n = payload_bytes < 126 ? 2 : payload_bytes <= 0xffff ? 4 : 10;
  return masked ? n + 4 : n;
}

// Writes a frame header to dst (room for frame_header_bytes_max) and returns its length. RSV bits
// are zero (no extensions). The payload that follows must be masked by the caller if mask is set.
// REQUIRES: control frames have fin::yes and payload_bytes <= 125; payload_bytes < 2^63.
size_t encode_frame_header(char* dst, opcode op, uint64_t payload_bytes, fin f = fin::yes,
                           std::optional<mask_key> mask = std::nullopt);

void write_frame_header(byte_buffer& out, opcode op, uint64_t payload_bytes, fin f = fin::yes,
                        std::optional<mask_key> mask = std::nullopt);

// Appends a complete frame; with a mask key the payload is masked as it is copied. Text payloads
// must be valid UTF-8 (the caller's contract; it is not re-checked here).
// REQUIRES: as encode_frame_header().
void write_frame(byte_buffer& out, opcode op, std::string_view payload, fin f = fin::yes,
                 std::optional<mask_key> mask = std::nullopt);

// Appends a close frame. code 0 sends a close frame without a code (and then reason must be
// empty). REQUIRES: code == 0 or valid_close_code(code); reason is valid UTF-8 of at most
// close_reason_bytes_max bytes.
void write_close(byte_buffer& out, uint16_t code, std::string_view reason,
                 std::optional<mask_key> mask = std::nullopt);
// REQUIRES: payload.size() <= control_payload_bytes_max.
void write_ping(byte_buffer& out, std::string_view payload,
                std::optional<mask_key> mask = std::nullopt);
void write_pong(byte_buffer& out, std::string_view payload,
                std::optional<mask_key> mask = std::nullopt);

struct frame_header {
  bool fin = false;
  uint8_t rsv = 0;     // RSV1..RSV3 as bits 2..0
  uint8_t opcode = 0;  // the raw 4-bit value, reserved values included
  bool masked = false;
  mask_key mask = {};
  uint64_t payload_bytes = 0;
  uint8_t header_bytes = 0;
};

enum class parse_status : uint8_t { complete, incomplete, error };

// Decodes the frame header at the start of [p, p + n). complete: h is filled in and
// h.header_bytes bytes were used; incomplete: more bytes are needed (nothing is kept, call again
// with the longer input); error: the length is not minimally encoded or exceeds 2^63 - 1.
// Reads at most frame_header_bytes_max bytes and never past p + n.
parse_status parse_frame_header(const char* p, size_t n, frame_header& h);

// ---- handshake ----

enum class http_version : uint8_t { http_1_0, http_1_1 };

// The request fields the handshake looks at, as the HTTP parser delivered them (values with
// surrounding whitespace removed; empty if absent). A field that occurs more than once is passed
// as its values joined with ", " (RFC 9110 §5.3), except Sec-WebSocket-Key, which the server must
// reject if repeated.
struct handshake_request {
  std::string_view method = {};
  http_version version = http_version::http_1_1;
  std::string_view upgrade = {};
  std::string_view connection = {};
  std::string_view key = {};         // Sec-WebSocket-Key
  std::string_view ws_version = {};  // Sec-WebSocket-Version
  std::string_view protocol = {};    // Sec-WebSocket-Protocol, the client's offer
  std::string_view origin = {};
};

enum class handshake_error : uint8_t {
  none,
  method_not_get,       // 405, Allow: GET
  http_1_0,             // 400
  bad_upgrade,          // 400
  bad_connection,       // 400
  unsupported_version,  // 426, Sec-WebSocket-Version: 13
  bad_key,              // 400
};

struct handshake_result {
  handshake_error error = handshake_error::none;
  uint16_t status = 101;
  std::string_view message = {};  // for the error body; empty when ok
  // A header the error response must carry (e.g. "Allow", "GET"); empty names mean none.
  std::string_view header_name = {};
  std::string_view header_value = {};
  char accept[28] = {};  // Sec-WebSocket-Accept, when ok

  bool ok() const { return error == handshake_error::none; }
  std::string_view accept_key() const { return {accept, sizeof accept}; }
};

handshake_result check_handshake(const handshake_request& req);

// The Sec-WebSocket-Accept value for a key: base64(SHA-1(key + the RFC 6455 GUID)). A client
// compares it with the server's answer.
void compute_accept(std::string_view key, char (&out)[28]);

// The first protocol in the client's comma-separated offer that the server supports (exact,
// case-sensitive match, §4.1), as the server's own string; empty if none matches.
std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string_view> supported);

// Appends the 101 response. extra_header_lines are complete "Name: value\r\n" lines (e.g.
// x-request-id) placed before the blank line. REQUIRES: subprotocol and extra_header_lines
// contain no line ends other than the lines' own CRLFs.
void write_upgrade_response(byte_buffer& out, std::string_view accept,
                            std::string_view subprotocol = {},
                            std::string_view extra_header_lines = {});

// Appends a client's upgrade request (load generator, upstream engines). key is the base64 of 16
// random bytes; protocols the comma-separated offer (omitted when empty).
void write_upgrade_request(byte_buffer& out, std::string_view host, std::string_view target,
                           std::string_view key, std::string_view protocols = {},
                           std::string_view extra_header_lines = {});

}  // namespace rc::ws
