// The worker keys of [[upstreams]] (kinds without endpoints, kind = "jsonrpc"): parsed values,
// defaults, thread_params as JSON text, and same_settings() over every worker field.
// (The refusals, with their FILE:LINE messages, are in tests/integration/test_upstreams_config.py.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/rules.h"
#include "server/upstream_kinds.h"
#include "server/upstreams.h"

namespace rc::server {
namespace {

class WorkerUpstreams : public ::testing::Test {
 protected:
  void SetUp() override {
    register_builtin_upstream_kinds();
    char tmpl[] = "/tmp/rc-workers-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ringcast.toml";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  // Parses `toml` as the --config file; returns the error ("" when it parsed).
  std::string parse(const std::string& toml, server_config& out) {
    std::ofstream(path_) << toml;
    std::vector<std::string> args = {"ringcast", "--config", path_};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return reparse_command_line(static_cast<int>(argv.size()), argv.data(), out);
  }

  upstream_config load(const std::string& toml) {
    server_config cfg;
    EXPECT_EQ(parse(toml, cfg), "") << toml;
    EXPECT_EQ(cfg.upstream.upstreams.size(), 1u);
    return cfg.upstream.upstreams.empty() ? upstream_config{} : cfg.upstream.upstreams[0];
  }

  std::string dir_, path_;
};

const char* kHead = "[[upstreams]]\nname = \"local\"\nkind = \"jsonrpc\"\n";

TEST_F(WorkerUpstreams, TheJsonrpcKindHasNoEndpoints) {
  const upstream_kind* k = find_upstream_kind("jsonrpc");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->endpoints, endpoint_family::none);
}

TEST_F(WorkerUpstreams, ParsesEveryWorkerKey) {
  upstream_config u = load(std::string(kHead) + R"(protocol = "ringcast"
command = ["python3", "-u", "worker.py", "--flag=a b"]
env = { MODEL_DIR = "/models", "LOG.LEVEL" = "debug" }
cwd = "/tmp"
framing = "content-length"
workers = 4
max_concurrency_per_worker = 16
queue_max = 0
init_timeout_ms = 2500
ping_interval_ms = 0
ping_timeout_ms = 700
max_line_bytes = 65536
stop_grace_ms = 0
restart_backoff_base_ms = 50
restart_backoff_cap_ms = 900
crash_loop_restarts = 3
crash_loop_window_ms = 1000
stderr_lines_per_s = 0
)");
  EXPECT_EQ(u.kind, "jsonrpc");
  EXPECT_TRUE(u.endpoints.empty());
  EXPECT_EQ(u.protocol, "ringcast");
  EXPECT_EQ(u.command, (std::vector<std::string>{"python3", "-u", "worker.py", "--flag=a b"}));
  ASSERT_EQ(u.env.size(), 2u);
  EXPECT_EQ(u.env[0], (std::pair<std::string, std::string>{"LOG.LEVEL", "debug"}));  // key order
  EXPECT_EQ(u.env[1], (std::pair<std::string, std::string>{"MODEL_DIR", "/models"}));
  EXPECT_EQ(u.cwd, "/tmp");
  EXPECT_EQ(u.framing, "content-length");
  EXPECT_EQ(u.workers, 4u);
  EXPECT_EQ(u.max_concurrency_per_worker, 16u);
  EXPECT_EQ(u.queue_max, 0u);
  EXPECT_EQ(u.init_timeout_ms, 2500u);
  EXPECT_EQ(u.ping_interval_ms, 0u);
  EXPECT_EQ(u.ping_timeout_ms, 700u);
  EXPECT_EQ(u.max_line_bytes, 65536u);
  EXPECT_EQ(u.stop_grace_ms, 0u);
  EXPECT_EQ(u.restart_backoff_base_ms, 50u);
  EXPECT_EQ(u.restart_backoff_cap_ms, 900u);
  EXPECT_EQ(u.crash_loop_restarts, 3u);
  EXPECT_EQ(u.crash_loop_window_ms, 1000u);
  EXPECT_EQ(u.stderr_lines_per_s, 0u);
  EXPECT_EQ(u.thread_params, "");
  EXPECT_FALSE(u.retain_threads);
}

TEST_F(WorkerUpstreams, DefaultsAreTheDocumentedOnes) {
  upstream_config u = load(std::string(kHead) + "protocol = \"ringcast\"\ncommand = [\"w\"]\n");
  EXPECT_EQ(u.framing, "lines");
  EXPECT_EQ(u.cwd, "");
  EXPECT_TRUE(u.env.empty());
  EXPECT_EQ(u.workers, 1u);
  EXPECT_EQ(u.max_concurrency_per_worker, 8u);
  EXPECT_EQ(u.queue_max, 256u);
  EXPECT_EQ(u.init_timeout_ms, 10000u);
  EXPECT_EQ(u.ping_interval_ms, 5000u);
  EXPECT_EQ(u.ping_timeout_ms, 5000u);
  EXPECT_EQ(u.max_line_bytes, 4194304u);
  EXPECT_EQ(u.stop_grace_ms, 3000u);
  EXPECT_EQ(u.restart_backoff_base_ms, 200u);
  EXPECT_EQ(u.restart_backoff_cap_ms, 10000u);
  EXPECT_EQ(u.crash_loop_restarts, 5u);
  EXPECT_EQ(u.crash_loop_window_ms, 60000u);
  EXPECT_EQ(u.stderr_lines_per_s, 50u);
}

TEST_F(WorkerUpstreams, ThreadParamsBecomeJsonText) {
  upstream_config u = load(std::string(kHead) + R"(protocol = "codex-app-server"
command = ["codex", "app-server"]
retain_threads = true
[upstreams.thread_params]
approvalPolicy = "never"
sandbox = "read-only"
config = { "model_reasoning_effort" = "low", nested = { list = [1, -2, 2.5, true, "a\"b"] } }
when = 1979-05-27T07:32:00Z
)");
  EXPECT_EQ(u.protocol, "codex-app-server");
  EXPECT_TRUE(u.retain_threads);
  EXPECT_EQ(u.thread_params,
            R"({"approvalPolicy":"never","config":{"model_reasoning_effort":"low",)"
            R"("nested":{"list":[1,-2,2.5,true,"a\"b"]}},"sandbox":"read-only",)"
            R"("when":"1979-05-27T07:32:00Z"})");
}

// Each worker key, changed alone, is a changed setting (the engine and its workers are replaced
// by a reload); the same text is the same settings.
TEST_F(WorkerUpstreams, SameSettingsComparesEveryWorkerField) {
  std::string base = std::string(kHead) + "command = [\"w\", \"a\"]\n";
  struct change {
    std::string key, a, b;
  };
  std::vector<change> changes = {
      {"protocol", "\"codex-app-server\"", "\"ringcast\""},
      {"env", "{ A = \"1\" }", "{ A = \"2\" }"},
      {"cwd", "\"/tmp\"", "\"/\""},
      {"workers", "1", "2"},
      {"max_concurrency_per_worker", "1", "2"},
      {"queue_max", "1", "2"},
      {"init_timeout_ms", "1", "2"},
      {"ping_interval_ms", "1", "2"},
      {"ping_timeout_ms", "1", "2"},
      {"max_line_bytes", "2000", "2001"},
      {"stop_grace_ms", "1", "2"},
      {"restart_backoff_base_ms", "1", "2"},
      {"restart_backoff_cap_ms", "300", "400"},
      {"crash_loop_restarts", "1", "2"},
      {"crash_loop_window_ms", "1", "2"},
      {"stderr_lines_per_s", "1", "2"},
      {"thread_params", "{ a = 1 }", "{ a = 2 }"},
      {"retain_threads", "true", "false"},
  };
  for (const change& c : changes) {
    SCOPED_TRACE(c.key);
    std::string protocol =
        c.key == "protocol" ? "" : c.key == "thread_params" || c.key == "retain_threads"
                                       ? "protocol = \"codex-app-server\"\n"
                                       : "protocol = \"ringcast\"\n";
    upstream_config a = load(base + protocol + c.key + " = " + c.a + "\n");
    upstream_config a2 = load(base + protocol + c.key + " = " + c.a + "\n");
    upstream_config b = load(base + protocol + c.key + " = " + c.b + "\n");
    EXPECT_TRUE(a.same_settings(a2));
    EXPECT_FALSE(a.same_settings(b));
  }
  std::string p = "protocol = \"ringcast\"\n";
  upstream_config a = load(base + p);
  EXPECT_FALSE(a.same_settings(load(std::string(kHead) + "command = [\"w\", \"b\"]\n" + p)));
  EXPECT_FALSE(a.same_settings(load(base + p + "framing = \"content-length\"\n")));
  EXPECT_TRUE(a.same_settings(load(base + p + "framing = \"lines\"\n")));
}

// A kind without endpoints and without an engine in this build is refused when the table is built
// (the configuration itself is valid).
TEST_F(WorkerUpstreams, AKindWithoutEngineIsRefusedWithItsOrigin) {
  register_upstream_kind("test-workers", endpoint_family::none, {});
  server_config cfg;
  ASSERT_EQ(parse("[[upstreams]]\nname = \"w\"\nkind = \"test-workers\"\nprotocol = \"ringcast\"\n"
                  "command = [\"w\"]\n",
                  cfg),
            "");
  std::vector<std::string> notes;
  std::string err;
  EXPECT_EQ(make_rules(cfg, nullptr, notes, err), nullptr);
  EXPECT_EQ(err, path_ + ":1: upstream 'w': the \"test-workers\" kind has no engine in this build");
}

}  // namespace
}  // namespace rc::server
