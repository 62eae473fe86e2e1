// Connection building blocks the modes share.
//
// load_connection: a client_socket that belongs to a worker: it reports itself ready to
// run_control once, and turns every failure into a counted error and a close. Failures after the
// worker began finishing are ours (we are closing) and not counted. Workers own their
// connections and destroy them after every socket of the thread has closed, so on_closed() has
// nothing to do.
//
// ws_connection: a load_connection that opens with the WebSocket handshake (checking
// Sec-WebSocket-Accept), then reads frames with ws_reader, answers pings, and sends masked
// frames. Subclasses see on_open() and each text or binary message. With --deflate it offers
// permessage-deflate without context takeover either way (so one inflater per thread serves
// every connection; a server that keeps its context anyway gets one inflater per connection),
// requires the server to accept it (a refusal is a handshake error), inflates what it receives
// and sends uncompressed. Wire and payload bytes received are counted for the report.
//
// Thread-safety: on the owning client thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "load/client_socket.h"
#include "load/env.h"
#include "load/response_reader.h"
#include "load/ws_reader.h"
#include "proto/ws.h"

namespace rc::load {

enum class conn_failure : uint8_t { handshake, protocol, closed };

class load_connection : public client_socket {
 public:
  load_connection(shard_env& env, int fd) : client_socket(env.sockets, fd), env_(env) {}
  bool ready() const { return ready_; }

 protected:
  // Reports the connection ready (once).
  void mark_ready() {
    if (ready_) return;
    ready_ = true;
    env_.control.note_ready();
  }
  // Counts the failure as described above and closes the connection.
  // `err` is the errno that ended the connection, if that is why (0: the server closed).
  void fail(conn_failure why, int err = 0);
  void on_eof(int err) override { fail(conn_failure::closed, err); }
  void on_closed() override {}

  shard_env& env_;

 private:
  bool ready_ = false;
};

class ws_connection : public load_connection {
 public:
  ws_connection(shard_env& env, int fd, uint64_t seed);

  // Sends the upgrade request for `path` and starts reading.
  void start(std::string_view path);
  bool open() const { return open_; }
  // Appends one masked frame and schedules the send for the end of the turn.
  void send(ws::opcode op, std::string_view payload);

 protected:
  virtual void on_open() = 0;
  virtual void on_message(ws_event kind, std::string_view payload) = 0;

 private:
  void on_data(const char* data, size_t len) final;
  void on_frame(ws_event kind, std::string_view payload);
  ws::mask_key next_mask();
  bool accept_extensions();

  response_reader http_;
  ws_reader reader_;
  std::unique_ptr<ws::inflater> own_inflater_;  // --deflate, a server that keeps its context
  xorshift rng_;
  char accept_[28];
  bool open_ = false;
};

}  // namespace rc::load
