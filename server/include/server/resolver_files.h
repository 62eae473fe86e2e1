// resolver_files: the two system files the resolver reads once at start-up, parsed the way
// glibc's stub resolver reads them (resolv.conf(5), hosts(5)), reduced to what an upstream
// lookup needs.
//
// resolv.conf: `nameserver` (IPv4 or IPv6, at most nameservers_max, later ones ignored as glibc
// does), `search` / `domain` (the last such line wins), and `options` ndots:n, timeout:n,
// attempts:n, rotate and edns0, clamped to glibc's limits. Comments start with '#' or ';';
// unknown keywords and options are ignored. Without any nameserver, 127.0.0.1 is used.
//
// hosts: "address name [aliases…]" lines; names are case-insensitive and map to their addresses
// in file order, without duplicates.
//
// Thread-safety: pure functions.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/dns.h"

namespace rc {

struct resolv_conf {
  static constexpr size_t nameservers_max = 3;  // glibc's MAXNS
  static constexpr size_t search_max = 6;
  std::vector<dns::address> nameservers;
  std::vector<std::string> search;  // lowercase, no trailing dot
  uint32_t ndots = 1;               // up to 15
  uint32_t timeout_s = 5;           // per try, 1 to 30
  uint32_t attempts = 2;            // rounds over the nameservers, 1 to 5
  bool rotate = false;              // start each lookup at the next nameserver
  bool edns0 = false;               // advertise a larger UDP payload (RFC 6891)
};

resolv_conf parse_resolv_conf(std::string_view text);

// Lowercase name -> addresses.
using hosts_table = std::unordered_map<std::string, std::vector<dns::address>>;

hosts_table parse_hosts(std::string_view text);

// The address of an IPv4 literal ("10.0.0.1") or an IPv6 literal ("::1", also bracketed,
// "[::1]"); false for anything else.
bool parse_ip_literal(std::string_view text, dns::address& out);

// `a` with `port` as a sockaddr_in or sockaddr_in6 in a sockaddr_storage, and its length.
sockaddr_storage to_sockaddr(const dns::address& a, uint16_t port, socklen_t* len = nullptr);

// "127.0.0.1:53", "[::1]:53".
std::string to_string(const dns::address& a, uint16_t port);

}  // namespace rc
