// NATS protocol codec (proto/nats.h): the server-op parser, header blocks, the client-op
// writers, subjects, INFO and server URLs.
#include "proto/nats.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace rc::nats {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

// Splits a control line's arguments (after the op name) on runs of spaces/tabs.
size_t split_args(std::string_view line, std::string_view* args, size_t max) {
  size_t n = 0;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) break;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (n == max) return max + 1;  // too many
    args[n++] = line.substr(start, i - start);
  }
  return n;
}

// Plain decimal, no sign, no overflow.
bool parse_size(std::string_view s, size_t& out) {
  if (s.empty() || s.size() > 19) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  out = v;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

parser::status parser::fail(std::string_view why) {
  error_.assign(why);
  if (error_.empty()) error_ = "protocol error";
  return status::error;
}

parser::status parser::parse_one(std::string_view in, server_op& out, size_t& used) {
  used = 0;
  size_t nl = in.find('\n');
  bool is_info = in.size() >= 4 && iequals(in.substr(0, 4), "info");
  size_t limit = is_info ? info_line_bytes_max : control_line_bytes_max;
  if (nl == std::string_view::npos) {
    if (in.size() >= limit) return fail("control line too long");
    return status::incomplete;
  }
  if (nl + 1 > limit) return fail("control line too long");
  size_t line_end = nl + 1;
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t name_end = 0;
  while (name_end < line.size() && !is_space(line[name_end])) ++name_end;
  std::string_view name = line.substr(0, name_end);
  std::string_view rest = line.substr(name_end);
  out = server_op{};
  if (iequals(name, "ping") || iequals(name, "pong") || iequals(name, "+ok")) {
    if (!trim(rest).empty()) return fail("unexpected arguments");
    out.kind = iequals(name, "ping") ? op::ping : iequals(name, "pong") ? op::pong : op::ok;
    used = line_end;
    return status::complete;
  }
  if (iequals(name, "info")) {
    out.kind = op::info;
    out.payload = trim(rest);
    if (out.payload.empty()) return fail("INFO without a body");
    used = line_end;
    return status::complete;
  }
  if (iequals(name, "-err")) {
    out.kind = op::err;
    std::string_view m = trim(rest);
    if (m.size() >= 2 && m.front() == '\'' && m.back() == '\'') m = m.substr(1, m.size() - 2);
    out.payload = m;
    used = line_end;
    return status::complete;
  }
  bool hmsg = iequals(name, "hmsg");
  if (!hmsg && !iequals(name, "msg")) return fail("unknown operation");
  std::string_view a[5];
  size_t n = split_args(rest, a, 5);
  size_t header_bytes = 0, total_bytes = 0;
  if (!hmsg) {
    if (n != 3 && n != 4) return fail("MSG: wrong number of arguments");
    out.kind = op::msg;
    if (!parse_size(a[n - 1], total_bytes)) return fail("MSG: bad size");
  } else {
    if (n != 4 && n != 5) return fail("HMSG: wrong number of arguments");
    out.kind = op::hmsg;
    if (!parse_size(a[n - 2], header_bytes) || !parse_size(a[n - 1], total_bytes))
      return fail("HMSG: bad size");
    if (header_bytes > total_bytes) return fail("HMSG: header size exceeds total size");
    if (header_bytes < 4) return fail("HMSG: header block too short");
  }
  if (total_bytes > max_payload_) return fail("message exceeds max_payload");
  out.subject = a[0];
  out.sid = a[1];
  size_t reply_args = hmsg ? 5 : 4;
  if (n == reply_args) out.reply = a[2];
  // total_bytes <= max_payload, far below SIZE_MAX, so this cannot overflow.
  size_t end = line_end + total_bytes + 2;
  if (in.size() < end) {
    used = end;
    return status::incomplete;
  }
  if (in[end - 2] != '\r' || in[end - 1] != '\n') return fail("payload not followed by CRLF");
  std::string_view body = in.substr(line_end, total_bytes);
  out.headers = body.substr(0, header_bytes);
  out.payload = body.substr(header_bytes);
  used = end;
  return status::complete;
}

std::optional<header_block> header_block::parse(std::string_view raw) {
  constexpr std::string_view version = "NATS/1.0";
  if (raw.substr(0, version.size()) != version) return std::nullopt;
  if (raw.size() < version.size() + 4 || raw.substr(raw.size() - 4) != "\r\n\r\n") {
    // The shortest block is "NATS/1.0\r\n\r\n".
    return std::nullopt;
  }
  header_block h;
  size_t eol = raw.find("\r\n");
  std::string_view first = raw.substr(version.size(), eol - version.size());
  if (!first.empty()) {
    if (!is_space(first.front())) return std::nullopt;
    first = trim(first);
    size_t sp = 0;
    while (sp < first.size() && !is_space(first[sp])) ++sp;
    std::string_view code = first.substr(0, sp);
    if (code.size() != 3 ||
        !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    h.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    h.description = trim(first.substr(sp));
  }
  size_t pos = eol + 2;
  while (pos < raw.size()) {
    size_t e = raw.find("\r\n", pos);
    if (e == std::string_view::npos) return std::nullopt;
    if (e == pos) {
      if (e + 2 != raw.size()) return std::nullopt;  // bytes after the empty line
      return h;
    }
    std::string_view line = raw.substr(pos, e - pos);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view key = line.substr(0, colon);
    for (char c : key)
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
    h.fields.emplace_back(key, trim(line.substr(colon + 1)));
    pos = e + 2;
  }
  return std::nullopt;
}

std::string_view header_block::get(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (iequals(k, name)) return v;
  return {};
}

void write_connect(std::string& out, const connect_options& o) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.boolean_member("verbose", false);
  w.boolean_member("pedantic", false);
  w.boolean_member("headers", true);
  w.boolean_member("no_responders", true);
  w.int64_member("protocol", 1);
  w.string_member("lang", "c++");
  w.string_member("version", o.version.empty() ? std::string_view("0") : o.version);
  if (!o.name.empty()) w.string_member("name", o.name);
  if (!o.auth_token.empty()) w.string_member("auth_token", o.auth_token);
  if (!o.user.empty()) w.string_member("user", o.user);
  if (!o.pass.empty()) w.string_member("pass", o.pass);
  w.boolean_member("echo", o.echo);
  w.end_object();
  out.append("CONNECT ");
  out.append(b.view());
  out.append("\r\n");
}

void write_pub(std::string& out, std::string_view subject, std::string_view reply,
               std::string_view payload) {
  out.append("PUB ");
  out.append(subject);
  out.push_back(' ');
  if (!reply.empty()) {
    out.append(reply);
    out.push_back(' ');
  }
  append_uint(out, payload.size());
  out.append("\r\n");
  out.append(payload);
  out.append("\r\n");
}

void write_hpub(std::string& out, std::string_view subject, std::string_view reply,
                std::string_view headers, std::string_view payload) {
  out.append("HPUB ");
  out.append(subject);
  out.push_back(' ');
  if (!reply.empty()) {
    out.append(reply);
    out.push_back(' ');
  }
  append_uint(out, headers.size());
  out.push_back(' ');
  append_uint(out, headers.size() + payload.size());
  out.append("\r\n");
  out.append(headers);
  out.append(payload);
  out.append("\r\n");
}

void write_sub(std::string& out, std::string_view subject, std::string_view queue, uint64_t sid) {
  out.append("SUB ");
  out.append(subject);
  out.push_back(' ');
  if (!queue.empty()) {
    out.append(queue);
    out.push_back(' ');
  }
  append_uint(out, sid);
  out.append("\r\n");
}

void write_unsub(std::string& out, uint64_t sid, uint64_t max_msgs) {
  out.append("UNSUB ");
  append_uint(out, sid);
  if (max_msgs != 0) {
    out.push_back(' ');
    append_uint(out, max_msgs);
  }
  out.append("\r\n");
}

void write_ping(std::string& out) {
  out.append("PING\r\n");
}
void write_pong(std::string& out) {
  out.append("PONG\r\n");
}

std::string make_headers(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  std::string out = "NATS/1.0\r\n";
  for (const auto& [k, v] : kv) {
    out.append(k);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
  out.append("\r\n");
  return out;
}

bool valid_subject(std::string_view s, bool wildcards_ok) {
  if (s.empty() || s.size() > subject_bytes_max) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    size_t end = dot == std::string_view::npos ? s.size() : dot;
    std::string_view token = s.substr(start, end - start);
    if (token.empty()) return false;
    for (char c : token) {
      auto u = static_cast<unsigned char>(c);
      if (u <= ' ' || u == 0x7f) return false;
    }
    if (token == "*" && !wildcards_ok) return false;
    if (token == ">" && (!wildcards_ok || end != s.size())) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<server_info> parse_info(std::string_view text) {
  json::parser p;
  json::parse_result r = p.parse(text);
  if (!r.ok() || !r.root.is_object()) return std::nullopt;
  server_info info;
  auto str = [&](std::string_view key, std::string& out) {
    json::value v = r.root.find(key);
    if (v && v.is_string()) out.assign(v.get_string());
  };
  auto flag = [&](std::string_view key) {
    json::value v = r.root.find(key);
    return v && v.kind() == json::kind::boolean && v.get_bool();
  };
  str("server_id", info.server_id);
  str("server_name", info.server_name);
  str("version", info.version);
  json::value mp = r.root.find("max_payload");
  if (mp && mp.kind() == json::kind::int64 && mp.get_int64() > 0)
    info.max_payload = static_cast<size_t>(mp.get_int64());
  info.headers = flag("headers");
  info.auth_required = flag("auth_required");
  info.tls_required = flag("tls_required");
  json::value urls = r.root.find("connect_urls");
  if (urls && urls.is_array()) {
    for (json::value u : urls.elements())
      if (u.is_string() && info.connect_urls.size() < 64)
        info.connect_urls.emplace_back(u.get_string());
  }
  return info;
}

std::optional<server_url> parse_url(std::string_view url, std::string* why) {
  auto bad = [&](std::string_view reason) -> std::optional<server_url> {
    if (why) why->assign(reason);
    return std::nullopt;
  };
  server_url out;
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    if (!iequals(url.substr(0, scheme), "nats"))
      return bad("only nats:// URLs are supported (no TLS)");
    url.remove_prefix(scheme + 3);
  }
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  size_t at = url.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view info = url.substr(0, at);
    url.remove_prefix(at + 1);
    size_t colon = info.find(':');
    if (colon == std::string_view::npos) {
      out.token.assign(info);
    } else {
      out.user.assign(info.substr(0, colon));
      out.pass.assign(info.substr(colon + 1));
    }
  }
  std::string_view host = url, port;
  if (!url.empty() && url.front() == '[') {
    size_t close = url.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    host = url.substr(1, close - 1);
    std::string_view after = url.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after the IPv6 literal");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = url.rfind(':');
    if (colon != std::string_view::npos) {
      host = url.substr(0, colon);
      port = url.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (host.empty()) return bad("no host");
  for (char c : host)
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '@' || c == '[' || c == ']')
      return bad("bad host");
  if (!port.empty()) {
    size_t p = 0;
    if (!parse_size(port, p) || p == 0 || p > 65535) return bad("bad port");
    out.port = static_cast<uint16_t>(p);
  }
  out.host.assign(host);
  return out;
}

}  // namespace rc::nats
