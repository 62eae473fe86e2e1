// JSON-RPC 2.0 over a byte stream: the codec between ringcast and its local worker processes
// (docs/workers.md).
//
// framer splits what a worker writes on stdout into messages, in one of two framings:
//   lines            one JSON object per line: '\n' terminated, a '\r' before it is dropped,
//                    empty lines (and lines of only spaces/tabs/'\r') are skipped;
//   content_length   LSP framing: header lines ("Name: value\r\n"; a bare '\n' is tolerated),
//                    an empty line, then exactly Content-Length bytes. The header name is
//                    matched case-insensitively; other headers (Content-Type) are ignored.
// next() returns one message at a time. Errors are sticky: after too_large (a message longer
// than max_message_bytes, or a Content-Length above it) or bad_header (a header line that is
// not "Name: value", a missing, non-numeric or duplicated Content-Length, a header block longer
// than header_bytes_max) the framer returns the same status for ever and drops what it is fed:
// the stream cannot be trusted to resynchronize (a line cut in two would be read as two
// messages), so the caller stops the worker. need_more keeps nothing beyond the current partial
// message, so memory is bounded by max_message_bytes (+ the header block).
//
// frame() does the opposite: appends one message in the framing.
//
// parser reads one message (JSON text) into `message`: a request (method + id), a
// notification (method, no id), a response (result + id) or an error (error + id, the id may
// be null). "jsonrpc":"2.0" is checked when present but not required (the Codex app server
// omits it). ids are integers or strings (raw JSON in `id`); method and error.message are
// unescaped into the parser's own storage. Anything else (not an object, a method that is not a
// string, both result and error, neither method nor result/error, an error without an integer
// code, a fractional id) is rejected with a reason: the caller treats the worker as broken.
//
// Writers append compact JSON; params/result/data are raw JSON the caller vouches for.
//
// Thread-safety: none; a framer and a parser belong to the worker that reads with them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rc::jsonrpc {

enum class framing : uint8_t { lines, content_length };

// The longest LSP header block accepted (all header lines together).
inline constexpr size_t header_bytes_max = 8192;

// Splits a byte stream into messages.
class framer {
 public:
  framer(framing f, size_t max_message_bytes);
  void feed(std::string_view bytes);
  enum class status : uint8_t { message, need_more, too_large, bad_header };
  status next(std::string_view& message);  // view valid until the next feed()/next()

 private:
  status fail(status s);
  status next_line(std::string_view& message);
  status next_lsp(std::string_view& message);
  bool parse_headers(size_t end);

  framing framing_;
  size_t max_bytes_;
  std::string buf_;
  size_t pos_ = 0;                     // start of the unconsumed bytes in buf_
  size_t scanned_ = 0;                 // lines: bytes after pos_ already searched for '\n'
  size_t body_bytes_ = 0;              // content_length: the body length once the headers were read
  bool in_body_ = false;               // content_length: headers read, waiting for the body
  status failed_ = status::need_more;  // too_large / bad_header once failed
};

// Appends one framed message.
void frame(framing f, std::string_view json, std::string& out);

enum class kind : uint8_t { request, notification, response, error };

struct message {
  kind type = kind::notification;
  std::string_view id;                      // raw JSON of the id ("" for notifications)
  std::optional<uint64_t> id_number;        // when the id is a non-negative integer
  std::string_view method, params, result;  // params/result: raw JSON ("" absent)
  int64_t error_code = 0;
  std::string_view error_message, error_data;  // error_data: raw JSON ("" absent)
};

// Views in `message` stay valid until the next parse().
class parser {
 public:
  // Messages are bounded by the framer; nesting deeper than depth_max is rejected.
  static constexpr uint32_t depth_max = 64;
  parser();
  ~parser();
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;
  // false: not a JSON-RPC message (`error` says why).
  bool parse(std::string_view json, message& out, std::string& error);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Compact writers; with_jsonrpc: the "jsonrpc":"2.0" member (codex omits it). Empty
// params_json / result_json are written as {} / null; empty data_json omits "data".
void write_request(std::string& out, uint64_t id, std::string_view method,
                   std::string_view params_json, bool with_jsonrpc = true);
void write_notification(std::string& out, std::string_view method, std::string_view params_json,
                        bool with_jsonrpc = true);
void write_result(std::string& out, std::string_view id_json, std::string_view result_json,
                  bool with_jsonrpc = true);
void write_error(std::string& out, std::string_view id_json, int64_t code, std::string_view message,
                 std::string_view data_json = {}, bool with_jsonrpc = true);

}  // namespace rc::jsonrpc
