// NATS client protocol codec (https://docs.nats.io/reference/reference-protocols/nats-protocol):
// the server's operations (INFO, MSG, HMSG, PING, PONG, +OK, -ERR) parsed incrementally from a
// byte stream, the client's (CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG) written, and NATS/1.0
// header blocks parsed and built. Pure: no sockets, no clocks (server/nats_client.h does I/O).
//
// Parser contract:
// * feed() takes bytes as they arrive, in any fragmentation, and calls on_op once per complete
//   operation, in order. The views in a server_op point into the fed bytes or the parser's own
//   buffer (only an operation split across feeds is copied) and are valid during the call only.
// * Limits: a control line (the op line, up to and including "\r\n") is at most
//   control_line_bytes_max (4 KiB, the server's own default), except INFO, whose JSON lists the
//   cluster's URLs and may reach info_line_bytes_max (64 KiB). A MSG/HMSG whose total size
//   (headers + payload) exceeds max_payload, a header size larger than the total, a number that
//   is not plain decimal or overflows, a missing argument, an unknown operation, or a payload
//   not followed by "\r\n" is a protocol error: feed() returns false, error() says why, and
//   every later feed() returns false at once (the connection is beyond repair).
// * Operation names are case-insensitive; arguments are separated by spaces or tabs; a control
//   line ends with "\r\n" (a bare "\n" is accepted, as nats-server accepts it).
//
// Writers append to a std::string (the client keeps its output and its disconnected backlog
// as strings); they do not validate subjects (callers check valid_subject() first).
//
// Thread-safety: a parser belongs to one thread; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rc::nats {

inline constexpr size_t control_line_bytes_max = 4096;
inline constexpr size_t info_line_bytes_max = 64 << 10;
inline constexpr size_t default_max_payload = 64 << 20;

enum class op : uint8_t { info, msg, hmsg, ping, pong, ok, err };

struct server_op {
  op kind = op::ping;
  std::string_view subject, reply, sid;  // msg/hmsg
  std::string_view headers;  // hmsg: the raw block "NATS/1.0[ status desc]\r\n...\r\n\r\n"
  std::string_view payload;  // msg/hmsg payload; info: the JSON; err: the message
};

class parser {
 public:
  explicit parser(size_t max_payload = default_max_payload) : max_payload_(max_payload) {}
  void set_max_payload(size_t bytes) { max_payload_ = bytes; }
  size_t max_payload() const { return max_payload_; }

  // Feeds bytes; calls on_op(const server_op&) for each complete op. Returns false on a
  // protocol error (see error()).
  template <class F>
  bool feed(std::string_view bytes, F&& on_op);

  std::string_view error() const { return error_; }
  bool failed() const { return !error_.empty(); }
  // Bytes held for an operation not yet complete.
  size_t buffered() const { return partial_.size(); }
  // Memory held for operations split across feeds; given back after one larger than
  // partial_keep_bytes completes.
  size_t buffer_capacity() const { return partial_.capacity(); }
  static constexpr size_t partial_keep_bytes = 64 << 10;

  enum class status : uint8_t { complete, incomplete, error };
  // Parses one operation at the start of `in`. complete: `used` = its length, `out` filled;
  // incomplete: `used` = its total length when the control line is known, else 0; error:
  // error() says why. Exposed for the fuzz target; feed() is the interface.
  status parse_one(std::string_view in, server_op& out, size_t& used);

 private:
  status fail(std::string_view why);

  size_t max_payload_;
  std::string partial_;  // an operation split across feeds
  size_t need_ = 0;      // its total length once its control line is known
  std::string error_;
};

template <class F>
bool parser::feed(std::string_view bytes, F&& on_op) {
  if (failed()) return false;
  server_op o;
  size_t used = 0;
  // First complete the operation left over from earlier feeds, copying no more than it needs.
  while (!partial_.empty()) {
    if (need_ == 0) {
      size_t nl = bytes.find('\n');
      size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
      partial_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
    } else {
      size_t take = std::min(need_ - partial_.size(), bytes.size());
      partial_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
    }
    status s = parse_one(partial_, o, used);
    if (s == status::error) return false;
    if (s == status::incomplete) {
      need_ = used;
      if (bytes.empty()) return true;
      continue;
    }
    on_op(static_cast<const server_op&>(o));
    if (partial_.capacity() > partial_keep_bytes) {
      std::string().swap(partial_);  // one big message does not pin its memory for good
    } else {
      partial_.clear();
    }
    need_ = 0;
  }
  while (!bytes.empty()) {
    status s = parse_one(bytes, o, used);
    if (s == status::error) return false;
    if (s == status::incomplete) {
      partial_.assign(bytes);
      need_ = used;
      return true;
    }
    on_op(static_cast<const server_op&>(o));
    bytes.remove_prefix(used);
  }
  return true;
}

// A NATS/1.0 header block: "NATS/1.0[ <status>[ <description>]]\r\n(<name>: <value>\r\n)*\r\n".
struct header_block {
  // nullopt when `raw` is not a well-formed block. Views point into `raw`.
  static std::optional<header_block> parse(std::string_view raw);
  int status = 0;  // 0 when the version line has none
  std::string_view description;
  // The first value of `name` (case-insensitive), or empty.
  std::string_view get(std::string_view name) const;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};

struct connect_options {
  std::string_view name;
  std::string_view version;
  std::string_view auth_token;
  std::string_view user, pass;
  bool echo = true;  // receive our own publications on matching subscriptions
};

// CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1,
// "lang":"c++",...}\r\n, with name, version and credentials when set (JSON-escaped).
void write_connect(std::string& out, const connect_options& o);
void write_pub(std::string& out, std::string_view subject, std::string_view reply,
               std::string_view payload);
// `headers` is a whole block (make_headers()); it must not be empty.
void write_hpub(std::string& out, std::string_view subject, std::string_view reply,
                std::string_view headers, std::string_view payload);
void write_sub(std::string& out, std::string_view subject, std::string_view queue, uint64_t sid);
// max_msgs 0: now; else after that many more messages.
void write_unsub(std::string& out, uint64_t sid, uint64_t max_msgs = 0);
void write_ping(std::string& out);
void write_pong(std::string& out);

// "NATS/1.0\r\nK: V\r\n...\r\n". REQUIRES: names without ':' or whitespace, no CR/LF anywhere.
std::string make_headers(std::initializer_list<std::pair<std::string_view, std::string_view>> kv);

// Whether `s` is a subject: '.'-separated non-empty tokens of printable, non-space bytes.
// With wildcards_ok, a token may be "*", and the last token may be ">" (subscriptions);
// without, "*" and ">" tokens are refused (publications). At most subject_bytes_max bytes.
inline constexpr size_t subject_bytes_max = 1024;
bool valid_subject(std::string_view s, bool wildcards_ok);

// The parts of INFO the client uses.
struct server_info {
  std::string server_id, server_name, version;
  size_t max_payload = 0;  // 0: not given
  bool headers = false;
  bool auth_required = false;
  bool tls_required = false;
  std::vector<std::string> connect_urls;  // "host:port" of the cluster's other servers
};
// nullopt when `json` is not a JSON object.
std::optional<server_info> parse_info(std::string_view json);

// A server address: "nats://[user:pass@|token@]host[:port]", "host:port" or "host"; IPv6
// literals in brackets. Default port 4222. nullopt (and `why`) for other schemes or bad ports.
struct server_url {
  std::string host;  // without brackets
  uint16_t port = 4222;
  std::string user, pass, token;  // from the URL's userinfo, when present
};
std::optional<server_url> parse_url(std::string_view url, std::string* why = nullptr);

}  // namespace rc::nats
