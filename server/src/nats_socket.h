// nats_socket: the stream_socket under a nats_client's connection. It forwards data and EOF to
// its client while attached; the client detaches it (and aborts it) when it drops the connection,
// so a dropped socket finishes closing on its own and never calls back.
//
// Lifetime: heap-allocated; deletes itself in on_closed(). Private to server/src.
// Thread-safety: the client's shard only.
#pragma once

#include "core/stream_socket.h"
#include "server/nats_client.h"

namespace rc::server {

class nats_socket final : public stream_socket {
 public:
  nats_socket(socket_set& set, int fd, nats_client* owner)
      : stream_socket(set, fd), owner_(owner) {}
  void detach() { owner_ = nullptr; }

 private:
  void on_data(const char* data, size_t len) override {
    if (owner_) owner_->on_socket_data(data, len);
  }
  void on_eof(int err) override {
    if (owner_) owner_->on_socket_eof(err);
  }
  void on_closed() override {
    if (owner_) owner_->on_socket_closed(this);
    delete this;
  }

  nats_client* owner_;
};

}  // namespace rc::server
