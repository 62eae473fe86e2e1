#include "load/targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

namespace rc::load {
namespace {

std::string parse_target(const std::string& text, socket_address& out) {
  if (std::string err = parse_socket_address(text, out); !err.empty()) return err;
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&out.storage);
  if (a4->sin_port == 0) return "'" + text + "' needs a port";
  return {};
}

bool loopback(const socket_address& a) {
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&a.storage);
  return a.storage.ss_family == AF_INET && (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
}

}  // namespace

std::string resolve_targets(load_options& o) {
  if (o.targets.empty()) o.targets.push_back(o.target);
  o.target = o.targets.front();
  o.target_addresses.clear();
  for (const std::string& t : o.targets) {
    socket_address a;
    if (std::string err = parse_target(t, a); !err.empty()) return "--target: " + err;
    o.target_addresses.push_back(std::move(a));
  }
  if (o.host_header.empty()) o.host_header = o.target;
  if (o.pub_target.empty()) {
    o.pub_target_address = o.target_addresses.front();
  } else if (std::string err = parse_target(o.pub_target, o.pub_target_address); !err.empty()) {
    return "--pub-target: " + err;
  }
  return {};
}

const socket_address& target_for(const load_options& o, uint32_t n) {
  return o.target_addresses[n % o.target_addresses.size()];
}

bool all_loopback(const load_options& o) {
  for (const socket_address& a : o.target_addresses)
    if (!loopback(a)) return false;
  return loopback(o.pub_target_address);
}

}  // namespace rc::load
