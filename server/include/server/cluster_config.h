// The cluster settings (--nats and friends, docs/cluster.md): their parsers and checks, shared by
// the flag parser (config.cc) and the cluster (cluster.h).
//
//   --nats URL[,URL...]          nats://HOST[:PORT] (port 4222 by default); HOST a name, an IPv4
//                                literal or a bracketed IPv6 literal. No credentials in the URL,
//                                no TLS (tls:// is refused).
//   --node-id ID                 [A-Za-z0-9_-], 1 to 32 characters; default <hostname>-<port>
//   --topic-retention SPEC       PATTERN=KEY:VALUE[,KEY:VALUE...] with the keys
//                                  age          a duration: 500ms, 90s, 15m, 24h, 7d (0: forever)
//                                  msgs         a count of messages in the class's stream
//                                  bytes        a size: 1048576, 512KiB, 64MiB, 2GiB (also kB, MB, GB)
//                                  per_subject  messages kept per topic
//                                PATTERN is a topic pattern (proto/topic_pattern.h). The first
//                                matching entry decides; "unlimited" (or -1) lifts a limit.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/config.h"

namespace rc::server {

// Why `url` is not a usable NATS server URL, or empty.
std::string check_nats_url(std::string_view url);

// Why `id` is not a valid node id, or empty.
std::string check_node_id(std::string_view id);

// A node id from a host name and a port: the host's first label, characters outside
// [A-Za-z0-9_-] replaced with '-', cut so that "<host>-<port>" fits 32 characters.
std::string default_node_id(std::string_view hostname, uint16_t port);

// "24h" -> 86400000. Units ms, s, m, h, d (a bare number is seconds). Returns an error or empty.
std::string parse_duration_ms(std::string_view text, int64_t& out);

// "64MiB" -> 67108864. Units B, kB/KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB
// (powers of 1024); a bare number is bytes. Returns an error or empty.
std::string parse_byte_size(std::string_view text, int64_t& out);

// One --topic-retention entry. Limits it does not name stay as they are in `out` (the caller
// fills the defaults first). Returns an error (naming the entry) or empty.
std::string parse_topic_retention(std::string_view spec, topic_retention& out);

// The content of a --nats-credentials-file: one line, "user:password" (split at the first ':')
// or a token (no ':'). Fills either token or user and password. Returns an error or empty.
std::string parse_nats_credentials(std::string_view content, std::string& token, std::string& user,
                                   std::string& password);

}  // namespace rc::server
