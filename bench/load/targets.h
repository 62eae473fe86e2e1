// targets: the servers ringcast-load spreads its connections over, and where the fanout
// publisher goes.
//
// `--target` may be given several times (the nodes of a cluster, with no load balancer in
// front): connection n goes to target n % K, so the totals per target differ by at most one
// whatever the thread count. The fanout publisher connects to `--pub-target` (default: the first
// target), so a publication can cross nodes on its way to subscribers elsewhere.
//
// Thread-safety: resolve_targets runs in main before the client threads start; the rest reads
// the resolved, then read-only, options from any thread.
#pragma once

#include <cstdint>

#include "load/options.h"

namespace rc::load {

// Fills targets (default: `target`), target_addresses, target (the first), host_header (default:
// the first target) and pub_target_address (default: the first target). Addresses are IP
// literals with a port. Returns an error or empty.
std::string resolve_targets(load_options& o);

// The server connection number `n` goes to.
const socket_address& target_for(const load_options& o, uint32_t n);

// Whether every target (and the publisher's) is an IPv4 loopback address (127.0.0.0/8), where
// ringcast-load may pick source addresses itself.
bool all_loopback(const load_options& o);

}  // namespace rc::load
