// resolver::lookup: one name being resolved over DNS, shared by every resolve() call waiting for
// it (see resolver.h for the policy). Private to the resolver.
//
// A try is one connected UDP socket to one nameserver with a query per unsettled family (A,
// AAAA) and one receive at a time. It ends on the answers, a failure or its deadline; then the
// operations still in the kernel are cancelled and, once every completion has arrived (the
// kernel holds this object's address until then), the socket is closed and the next step runs:
// another try, the next search candidate, or the end of the lookup.
//
// A lookup outlives its resolver when the resolver is destroyed with operations in flight
// (orphan()); it then only waits for their completions and frees itself. If the reactor goes
// first (the process is exiting), it is never freed.
//
// Thread-safety: the resolver's shard only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "server/resolver.h"

namespace rc {

class resolver::lookup final : public io_handler {
 public:
  // REQUIRES: `candidates` is not empty and each is a valid query name.
  lookup(resolver& owner, std::string key, std::vector<std::string> candidates);
  lookup(const lookup&) = delete;
  lookup& operator=(const lookup&) = delete;

  const std::string& key() const { return key_; }
  std::vector<waiter>& waiters() { return waiters_; }

  // Starts the first try; may finish the lookup at once (no nameserver reachable).
  void start();
  // The waiters have been answered: stops the try; the lookup retires once the kernel is done.
  void cancel();

  // The resolver is being destroyed: stops the try. Returns true if operations are still in
  // the kernel; the lookup then deletes itself when the last one completes.
  bool orphan();

  void on_completion(uint8_t op, int32_t res, uint32_t flags) override;

 private:
  enum op_code : uint8_t { op_send_v4 = 1, op_send_v6 = 2, op_recv = 3 };

  struct family {
    explicit family(dns::record_type t) : type(t) {}
    dns::record_type type;
    bool wanted = false;
    bool settled = false;  // answered (addresses, no addresses or no such name)
    uint16_t id = 0;
    byte_buffer query;
    std::vector<dns::address> addrs;
    uint32_t ttl_s = 0;
  };

  void start_candidate();
  void start_try();
  bool open_socket();
  void submit_send(family& f, uint8_t op);
  void submit_recv();
  void on_datagram(size_t bytes);
  void on_timeout();
  void end_try(int error, std::string text);
  void cancel_ops();
  void after_try();
  void finish_candidate();
  std::string server_name() const;

  resolver* owner_;  // null once orphaned
  reactor& reactor_;
  std::string key_;
  std::vector<std::string> candidates_;
  size_t candidate_ = 0;
  std::vector<waiter> waiters_;
  family v4_{dns::record_type::a};
  family v6_{dns::record_type::aaaa};
  bool nxdomain_ = false;
  std::optional<uint32_t> negative_ttl_s_;
  unsigned try_ = 0;
  unsigned first_server_ = 0;
  dns::address server_;
  int fd_ = -1;
  uint8_t in_flight_ = 0;  // bit (1 << op) per operation in the kernel
  bool ending_ = false;    // cancelling the try's operations
  bool cancelled_ = false;
  int error_ = 0;  // the last failed try's
  std::string message_;
  timer deadline_;
  // Larger than any answer we invite (512 bytes, 1232 with EDNS); a longer datagram is cut and
  // then fails to parse.
  std::array<char, 2048> buf_{};
};

}  // namespace rc
