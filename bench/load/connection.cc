#include "load/connection.h"

#include <cstring>

#include "proto/base64.h"
#include "proto/ws_deflate.h"

namespace rc::load {
namespace {

// --deflate: the offer (no context takeover either way: the cheapest for both sides).
constexpr std::string_view deflate_offer =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
    "client_no_context_takeover\r\n";

}  // namespace

void load_connection::fail(conn_failure why, int err) {
  if (closed()) return;
  if (!env_.finishing) {
    auto& e = env_.results.errors;
    switch (why) {
      case conn_failure::handshake:
        ++e.handshake;
        break;
      case conn_failure::protocol:
        ++e.protocol;
        break;
      case conn_failure::closed:
        ++e.closed;
        ++env_.results.closed_errnos[err];
        break;
    }
    if (!ready_) env_.control.note_failed();
  }
  close();
}

ws_connection::ws_connection(shard_env& env, int fd, uint64_t seed)
    : load_connection(env, fd), rng_{seed | 1} {}

void ws_connection::start(std::string_view path) {
  uint64_t raw[2] = {rng_.next(), rng_.next()};
  char key[24];
  base64::encode(raw, sizeof raw, key);
  ws::compute_accept(std::string_view(key, sizeof key), accept_);
  ws::write_upgrade_request(out(), env_.opts.host_header, path, std::string_view(key, sizeof key),
                            {}, env_.opts.deflate ? deflate_offer : std::string_view());
  flush();
  start_receiving();
}

ws::mask_key ws_connection::next_mask() {
  uint64_t r = rng_.next();
  ws::mask_key k;
  std::memcpy(k.data(), &r, k.size());
  return k;
}

void ws_connection::send(ws::opcode op, std::string_view payload) {
  ws::write_frame(out(), op, payload, ws::fin::yes, next_mask());
  flush();
}

void ws_connection::on_data(const char* data, size_t len) {
  std::string_view in(data, len);
  if (!open_) {
    std::string_view body;
    response_reader::step s = http_.next(in, body);
    if (s == response_reader::step::need_more) return;
    if (s != response_reader::step::head || http_.status() != 101 ||
        http_.header("Sec-WebSocket-Accept") != std::string_view(accept_, sizeof accept_)) {
      fail(conn_failure::handshake);
      return;
    }
    if (!accept_extensions()) {
      fail(conn_failure::handshake);
      return;
    }
    open_ = true;
    on_open();
    if (closed() || in.empty()) return;
  }
  env_.results.ws_wire_bytes_in += in.size();
  if (!reader_.feed(in, bind_sink<&ws_connection::on_frame>(this))) fail(conn_failure::protocol);
}

// The server's Sec-WebSocket-Extensions: nothing unless we offered permessage-deflate, which it
// must then have accepted.
bool ws_connection::accept_extensions() {
  std::string_view answer = http_.header("Sec-WebSocket-Extensions");
  if (!env_.opts.deflate) return answer.empty();
  auto a = ws::parse_deflate_answer(answer);
  if (!a) return false;
  if (a->server_no_context_takeover) {
    thread_local ws::inflater shared;
    reader_.set_inflate(&shared, ws::deflate_context::reset);
  } else {
    own_inflater_ = std::make_unique<ws::inflater>();
    reader_.set_inflate(own_inflater_.get(), ws::deflate_context::keep);
  }
  return true;
}

void ws_connection::on_frame(ws_event kind, std::string_view payload) {
  if (closed()) return;
  switch (kind) {
    case ws_event::ping:
      send(ws::opcode::pong, payload);
      return;
    case ws_event::pong:
      return;
    case ws_event::close: {
      // The server only closes on its own for a reason (drain, slow consumer, idle timeout).
      int code = payload.size() >= 2
                     ? (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1])
                     : 0;
      if (!env_.finishing) ++env_.results.ws_close_codes[code];
      fail(conn_failure::closed);
      return;
    }
    default:
      ++env_.results.ws_messages_in;
      env_.results.ws_payload_bytes_in += payload.size();
      on_message(kind, payload);
  }
}

}  // namespace rc::load
