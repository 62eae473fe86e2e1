// A listening socket on 127.0.0.1 with a free port, and blocking clients that connect to it: the
// server side of the core socket tests (stream_socket, registered descriptors).
//
// Thread-safety: connect_client may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/listener.h"

namespace rc {

struct loopback_listener {
  socket_address addr;
  int listen_fd = -1;
  uint16_t port = 0;

  loopback_listener() {
    std::string err;
    EXPECT_EQ(parse_socket_address("127.0.0.1:0", addr), "");
    listen_fd = open_listener(addr, 128, err);
    EXPECT_GE(listen_fd, 0) << err;
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }

  // A blocking socket connected to the listener.
  int connect_client() const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
};

}  // namespace rc
