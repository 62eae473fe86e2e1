// fanout dialects: see fanout_dialect.h.
#include "load/fanout_dialect.h"

#include "load/fanout.h"
#include "proto/json_writer.h"

namespace rc::load {

std::optional<fanout_dialect> parse_dialect(std::string_view name) {
  if (name == "ringcast") return fanout_dialect::ringcast;
  if (name == "nchan") return fanout_dialect::nchan;
  if (name == "pushpin") return fanout_dialect::pushpin;
  if (name == "uws") return fanout_dialect::uws;
  return std::nullopt;
}

std::string_view dialect_name(fanout_dialect d) {
  switch (d) {
    case fanout_dialect::ringcast:
      return "ringcast";
    case fanout_dialect::nchan:
      return "nchan";
    case fanout_dialect::pushpin:
      return "pushpin";
    case fanout_dialect::uws:
      return "uws";
  }
  return "?";
}

bool self_numbered(fanout_dialect d) {
  return d == fanout_dialect::nchan || d == fanout_dialect::pushpin;
}

std::string subscribe_path(fanout_dialect d, sub_protocol sub, std::string_view topic) {
  if (self_numbered(d)) return "/sub/" + std::string(topic);
  if (sub == sub_protocol::ws) return "/ws";
  return "/v1/topics/" + std::string(topic) + "/events?since=0";
}

std::string make_pad(size_t bytes, bool tokens) {
  if (!tokens) return std::string(bytes, 'x');
  static constexpr std::string_view words[] = {
      "the", "model", "stream", "server", "token", "request", "latency", "a", "of", "and",
      "to", "in", "is", "that", "for", "with", "each", "message", "connection", "shard",
      "queue", "answer", "user", "data", "time", "first", "when", "it", "can", "will",
      "compress", "window", "frame", "event", "subscriber", "publish", "topic", "memory",
      "kernel", "socket", "buffer", "ring", "budget", "ready", "state", "error", "retry", "one",
      "two", "three", "because", "however", "therefore", "example", "function", "value",
      "returns", "without", "between", "across", "during", "after"};
  std::string pad;
  pad.reserve(bytes + 160);
  uint64_t x = 0x9e3779b97f4a7c15;  // a fixed xorshift sequence: every run pads alike
  for (uint64_t i = 0; pad.size() < bytes; ++i) {
    pad += R"({\"id\":\"chatcmpl-8f2c\",\"object\":\"chat.completion.chunk\",\"index\":)";
    pad += std::to_string(i);
    pad += R"(,\"delta\":{\"content\":\")";
    for (int n = 0; n < 3; ++n) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      pad += ' ';
      pad += words[x % std::size(words)];
    }
    pad += R"(\"}} )";
  }
  pad.resize(bytes);
  // Never end inside an escape: a lone trailing backslash would escape the closing quote.
  size_t slashes = 0;
  while (slashes < pad.size() && pad[pad.size() - 1 - slashes] == '\\') ++slashes;
  if (slashes % 2 == 1) pad.back() = ' ';
  return pad;
}

void write_publication(byte_buffer& out, fanout_dialect d, uint64_t seq, uint64_t ts,
                       std::string_view pad) {
  out.append("{");
  if (self_numbered(d)) {
    out.append("\"seq\":");
    json::write_uint64(out, seq);
    out.append(",");
  }
  out.append("\"ts\":");
  json::write_uint64(out, ts);
  out.append(",\"pad\":\"");
  out.append(pad);
  out.append("\"}");
}

namespace {

void append_request_head(byte_buffer& o, std::string_view target, std::string_view host,
                         size_t length) {
  o.append("POST ");
  o.append(target);
  o.append(" HTTP/1.1\r\nHost: ");
  o.append(host);
  o.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  json::write_uint64(o, length);
  o.append("\r\n\r\n");
}

}  // namespace

void write_publish_request(byte_buffer& out, fanout_dialect d, std::string_view topic,
                           std::string_view host, std::string_view publication) {
  if (d != fanout_dialect::pushpin) {
    std::string target(d == fanout_dialect::nchan ? "/pub/" : "/v1/topics/");
    target.append(topic);
    append_request_head(out, target, host, publication.size());
    out.append(publication);
    return;
  }
  // GRIP publish: one item on channel <topic> in both formats, so WebSocket and SSE
  // subscribers each get theirs.
  byte_buffer body;
  body.append("{\"items\":[{\"channel\":");
  json::write_string(body, topic);
  body.append(",\"formats\":{\"ws-message\":{\"content\":");
  json::write_string(body, publication);
  body.append("},\"http-stream\":{\"content\":");
  std::string event = "event: message\ndata: ";
  event.append(publication);
  event.append("\n\n");
  json::write_string(body, event);
  body.append("}}}]}");
  append_request_head(out, "/publish/", host, body.size());
  out.append(body.view());
}

std::optional<uint64_t> publish_answer(fanout_dialect d, int status, std::string_view body,
                                       uint64_t nth) {
  switch (d) {
    case fanout_dialect::ringcast:
    case fanout_dialect::uws: {
      uint64_t seq = 0;
      if (status == 200 && find_number(body, "\"seq\":", seq)) return seq;
      return std::nullopt;
    }
    case fanout_dialect::nchan:
      // 201: delivered to subscribers; 202: queued (none listening); 200 is an older answer.
      if (status == 200 || status == 201 || status == 202) return nth;
      return std::nullopt;
    case fanout_dialect::pushpin:
      if (status == 200) return nth;
      return std::nullopt;
  }
  return std::nullopt;
}

bool parse_publication(std::string_view body, uint64_t& seq, uint64_t& ts) {
  return find_number(body, "\"seq\":", seq) && find_number(body, "\"ts\":", ts);
}

}  // namespace rc::load
