#include "load/ws_reader.h"

namespace rc::load {

std::string_view describe(ws_read_error e) {
  switch (e) {
    case ws_read_error::none:
      return "none";
    case ws_read_error::bad_header:
      return "malformed frame header";
    case ws_read_error::masked:
      return "masked frame from the server";
    case ws_read_error::rsv_bits:
      return "RSV bits set";
    case ws_read_error::bad_opcode:
      return "reserved opcode";
    case ws_read_error::bad_control:
      return "fragmented or oversized control frame";
    case ws_read_error::bad_continuation:
      return "unexpected continuation or data frame";
    case ws_read_error::too_big:
      return "message too big";
    case ws_read_error::bad_compressed:
      return "bad compressed message (permessage-deflate)";
  }
  return "?";
}

bool ws_reader::feed(std::string_view in, const ws_sink& sink) {
  if (error_ != ws_read_error::none) return false;
  if (pending_.empty()) {
    size_t used = parse(in.data(), in.size(), sink);
    if (error_ != ws_read_error::none) return false;
    if (used < in.size()) pending_.append(in.substr(used));
    return true;
  }
  pending_.append(in);
  size_t used = parse(pending_.data(), pending_.size(), sink);
  if (error_ != ws_read_error::none) return false;
  pending_.consume(used);
  return true;
}

size_t ws_reader::parse(const char* p, size_t n, const ws_sink& sink) {
  size_t off = 0;
  while (off < n) {
    ws::frame_header h;
    ws::parse_status st = ws::parse_frame_header(p + off, n - off, h);
    if (st == ws::parse_status::incomplete) break;
    if (st == ws::parse_status::error || h.payload_bytes > message_bytes_max_) {
      fail(st == ws::parse_status::error ? ws_read_error::bad_header : ws_read_error::too_big);
      return off;
    }
    size_t frame_bytes = h.header_bytes + static_cast<size_t>(h.payload_bytes);
    if (frame_bytes > n - off) break;
    std::string_view payload(p + off + h.header_bytes, static_cast<size_t>(h.payload_bytes));
    off += frame_bytes;
    if (!frame(h, payload, sink)) return off;
  }
  return off;
}

bool ws_reader::frame(const ws::frame_header& h, std::string_view payload, const ws_sink& sink) {
  if (h.masked) return fail(ws_read_error::masked);
  auto op = static_cast<ws::opcode>(h.opcode);
  bool first_data = op == ws::opcode::text || op == ws::opcode::binary;
  if (h.rsv != 0 && !(h.rsv == 4 && inflate_ && first_data)) return fail(ws_read_error::rsv_bits);
  switch (op) {
    case ws::opcode::ping:
    case ws::opcode::pong:
    case ws::opcode::close: {
      if (!h.fin || payload.size() > ws::control_payload_bytes_max)
        return fail(ws_read_error::bad_control);
      ws_event kind = op == ws::opcode::ping   ? ws_event::ping
                      : op == ws::opcode::pong ? ws_event::pong
                                               : ws_event::close;
      sink.fn(sink.ctx, kind, payload);
      return true;
    }
    case ws::opcode::text:
    case ws::opcode::binary: {
      if (assembling_) return fail(ws_read_error::bad_continuation);
      ws_event kind = op == ws::opcode::text ? ws_event::text : ws_event::binary;
      if (h.fin) return deliver(kind, payload, h.rsv != 0, sink);
      assembling_ = true;
      compressed_ = h.rsv != 0;
      message_kind_ = kind;
      message_.clear();
      message_.append(payload);
      return true;
    }
    case ws::opcode::continuation: {
      if (!assembling_) return fail(ws_read_error::bad_continuation);
      if (message_.size() + payload.size() > message_bytes_max_)
        return fail(ws_read_error::too_big);
      message_.append(payload);
      if (h.fin) {
        assembling_ = false;
        return deliver(message_kind_, message_.view(), compressed_, sink);
      }
      return true;
    }
    default:
      return fail(ws_read_error::bad_opcode);
  }
}

bool ws_reader::deliver(ws_event kind, std::string_view payload, bool compressed,
                        const ws_sink& sink) {
  if (!compressed) {
    sink.fn(sink.ctx, kind, payload);
    return true;
  }
  if (inflate_->inflate(payload, message_bytes_max_, inflate_context_) != ws::inflate_status::ok) {
    return fail(ws_read_error::bad_compressed);
  }
  sink.fn(sink.ctx, kind, inflate_->output());
  return true;
}

}  // namespace rc::load
