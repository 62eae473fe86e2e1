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
