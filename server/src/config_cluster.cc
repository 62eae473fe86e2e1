// The cluster flags (config_cluster.h, docs/cluster.md).
#include "config_cluster.h"

#include <fstream>
#include <sstream>

#include "server/cluster_config.h"

namespace rc::server {
namespace {

constexpr size_t topic_retention_entries_max = 64;

}  // namespace

void add_cluster_options(CLI::App& app, server_config& c) {
  auto* grp = "Cluster (NATS JetStream; see docs/cluster.md)";
  app.add_option("--nats", c.nats_urls,
                 "NATS servers, nats://HOST[:PORT], comma-separated or repeated (all the servers "
                 "of the NATS cluster, tried in order, then round robin). Without it ringcast is "
                 "single-node")
      ->delimiter(',')->group(grp);
  app.add_option("--nats-token", c.nats_token,
                 "NATS authentication token (better: RINGCAST_NATS_TOKEN or "
                 "--nats-credentials-file, which do not show in ps)")
      ->envname("RINGCAST_NATS_TOKEN")->group(grp);
  app.add_option("--nats-user", c.nats_user, "NATS user name (with a password)")
      ->envname("RINGCAST_NATS_USER")->group(grp);
  app.add_option("--nats-password", c.nats_password,
                 "NATS password (better: RINGCAST_NATS_PASSWORD or --nats-credentials-file)")
      ->envname("RINGCAST_NATS_PASSWORD")->group(grp);
  app.add_option("--nats-credentials-file", c.nats_credentials_file,
                 "File holding the NATS credentials on one line: user:password, or a token")
      ->envname("RINGCAST_NATS_CREDENTIALS_FILE")->group(grp);
  app.add_option("--node-id", c.node_id,
                 "This node's name in the cluster, unique per node: letters, digits, _ and -, "
                 "at most 32 (default: <hostname>-<listen port>)")
      ->group(grp);
  app.add_option("--nats-replicas", c.nats_replicas,
                 "Replicas of every JetStream stream and bucket ringcast creates (at most the "
                 "number of NATS servers; 3 survives the loss of one)")
      ->capture_default_str()->check(CLI::Range(1u, 5u))->group(grp);
  app.add_option("--topic-retention", c.topic_retention_specs,
                 "Retention of the topics matching a pattern (repeatable, first match wins, the "
                 "same list on every node): PATTERN=age:24h,msgs:N,bytes:64MiB,per_subject:N. "
                 "Other topics: age 24h, no count or size limit")
      ->group(grp);
  app.add_option("--broker-partitions", c.broker_partitions,
                 "Partitions the broker's users are split into; each is worked by one node at a "
                 "time (the same on every node)")
      ->capture_default_str()->check(CLI::Range(1u, 1024u))->group(grp);
  app.add_option("--broker-lease-ms", c.broker_lease_ms,
                 "Lease of a broker partition's owner: another node takes the partition over "
                 "this long after its owner stopped renewing")
      ->capture_default_str()->check(CLI::Range(1000u, 600'000u))->group(grp);
  app.add_option("--responses-ttl-s", c.responses_ttl_s,
                 "How long stored responses stay in the cluster's rc_responses bucket "
                 "(previous_response_id from any node)")
      ->capture_default_str()->check(CLI::Range(1u, 30u * 86400u))->group(grp);
}

std::string finish_cluster_options(const CLI::App& app, server_config& c) {
  c.topic_retentions.clear();
  if (c.nats_urls.empty()) {
    // Settings that mean nothing without NATS are a mistake, not something to ignore silently
    // (credentials are exempt: they may come from the environment).
    for (const char* flag : {"--node-id", "--nats-replicas", "--topic-retention",
                             "--broker-partitions", "--broker-lease-ms", "--responses-ttl-s"}) {
      if (app.count(flag) > 0) return std::string(flag) + " needs --nats (cluster mode)";
    }
    return {};
  }
  for (const std::string& url : c.nats_urls) {
    if (std::string err = check_nats_url(url); !err.empty()) return "--nats: " + err;
  }
  if (!c.nats_credentials_file.empty()) {
    if (!c.nats_token.empty() || !c.nats_user.empty() || !c.nats_password.empty())
      return "--nats-credentials-file: give the credentials either in the file or with "
             "--nats-token/--nats-user/--nats-password (or RINGCAST_NATS_*), not both";
    std::ifstream in(c.nats_credentials_file, std::ios::binary);
    if (!in) return "--nats-credentials-file: cannot read " + c.nats_credentials_file;
    std::ostringstream text;
    text << in.rdbuf();
    if (std::string err = parse_nats_credentials(text.str(), c.nats_token, c.nats_user,
                                                 c.nats_password);
        !err.empty())
      return "--nats-credentials-file: " + c.nats_credentials_file + ": " + err;
  }
  if (!c.nats_token.empty() && (!c.nats_user.empty() || !c.nats_password.empty()))
    return "--nats-token: a token and a user/password cannot be used together";
  if (c.nats_user.empty() != c.nats_password.empty())
    return c.nats_user.empty() ? "--nats-password needs --nats-user"
                               : "--nats-user needs --nats-password";
  if (!c.node_id.empty()) {
    if (std::string err = check_node_id(c.node_id); !err.empty()) return "--node-id: " + err;
  }
  if (c.topic_retention_specs.size() > topic_retention_entries_max)
    return "--topic-retention: at most " + std::to_string(topic_retention_entries_max) +
           " entries";
  for (const std::string& spec : c.topic_retention_specs) {
    topic_retention r;  // limits not named keep the default class's
    if (std::string err = parse_topic_retention(spec, r); !err.empty())
      return "--topic-retention: " + err;
    for (const topic_retention& earlier : c.topic_retentions) {
      if (earlier.pattern == r.pattern)
        return "--topic-retention: pattern '" + r.pattern + "' is given twice";
    }
    c.topic_retentions.push_back(std::move(r));
  }
  return {};
}

}  // namespace rc::server
