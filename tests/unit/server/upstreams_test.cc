// [[upstreams]] / [[models]] / --upstream parsing, the routing table, and the per-shard engine
// table across reloads, with test-only engine kinds registered here.
#include "server/upstreams.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/engine_table.h"
#include "server/rules.h"
#include "server/upstream_kinds.h"

namespace rc::server {
namespace {

// Counts live instances so tests can see when an engine is destroyed.
int g_engines_alive = 0;

class test_engine final : public engine {
 public:
  test_engine(std::string tag, std::vector<std::string> models)
      : tag_(std::move(tag)), models_(std::move(models)) {
    ++g_engines_alive;
  }
  ~test_engine() override { --g_engines_alive; }
  std::string_view name() const override { return tag_; }
  const std::vector<std::string>& models() const override { return models_; }
  uint64_t completion_tokens_max(std::string_view) const override { return 100; }
  uint32_t embedding_dimensions(std::string_view) const override { return 8; }
  bool ready() const override { return true; }
  std::unique_ptr<engine_stream> generate(const generation_request&, engine_sink&) override {
    return nullptr;
  }
  void embed(const embedding_request&, unique_function<void(embedding_result&&)>) override {}
  void invoke_tool(std::string_view, std::string_view,
                   unique_function<void(tool_result&&)>) override {}

 private:
  std::string tag_;
  std::vector<std::string> models_;
};

// What the fallback upstream's engine says it serves (GET {base}/models in the real engines).
std::vector<std::string> g_upstream_models = {"up-1", "up-2"};

void register_test_kinds() {
  register_builtin_upstream_kinds();
  auto factory = [](shard_server&, std::shared_ptr<const upstream_config>) {
    return std::shared_ptr<engine>();  // never called here: tests make engines through `maker`
  };
  register_upstream_kind("openai", endpoint_family::http, factory);
  register_upstream_kind("responses-ws", endpoint_family::websocket, factory);
}

engine_table::engine_maker maker() {
  return [](const upstream_kind& kind, std::shared_ptr<const upstream_config> cfg) {
    return std::make_shared<test_engine>(kind.name + ":" + cfg->name, g_upstream_models);
  };
}

class Upstreams : public ::testing::Test {
 protected:
  void SetUp() override {
    register_test_kinds();
    char tmpl[] = "/tmp/rc-upstreams-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ringcast.toml";
    setenv("RC_TEST_GPU_KEY", "sk-test-123", 1);
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  // Parses `toml` as the --config file plus `flags`; returns the error ("" when it parsed).
  std::string parse(const std::string& toml, server_config& out,
                    std::vector<std::string> flags = {}) {
    std::ofstream(path_) << toml;
    std::vector<std::string> args = {"ringcast", "--config", path_};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return reparse_command_line(static_cast<int>(argv.size()), argv.data(), out);
  }

  std::shared_ptr<const shared_rules> rules(const std::string& toml,
                                            std::vector<std::string> flags = {},
                                            const shared_rules* previous = nullptr) {
    server_config cfg;
    std::string err = parse(toml, cfg, std::move(flags));
    EXPECT_EQ(err, "");
    std::vector<std::string> notes;
    auto r = make_rules(cfg, previous, notes, err);
    EXPECT_TRUE(r) << err;
    return r;
  }

  std::string dir_, path_;
};

const char* kExample = R"(
[[upstreams]]
name = "gpu-pool"
kind = "openai"
endpoints = ["http://10.0.0.5:8000/v1", "https://api.example.com/v1/"]
api_key_env = "RC_TEST_GPU_KEY"
api = "both"
connect_timeout_ms = 250
retries_max = 0
headers = { "X-Team" = "search" }

[[upstreams]]
name = "ws"
kind = "responses-ws"
endpoints = ["wss://ws.example.com/v1/responses"]
stateful = true
max_retained_sessions = 7

[[models]]
name = "llama-70b"
upstream = "gpu-pool"
upstream_model = "meta-llama/Llama-3.1-70B-Instruct"
max_output_tokens = 512

[[models]]
name = "agent"
upstream = "ws"
)";

TEST_F(Upstreams, ParsesTheTables) {
  server_config cfg;
  ASSERT_EQ(parse(kExample, cfg), "");
  const upstream_settings& s = cfg.upstream;
  ASSERT_EQ(s.upstreams.size(), 2u);
  const upstream_config& gpu = s.upstreams[0];
  EXPECT_EQ(gpu.name, "gpu-pool");
  EXPECT_EQ(gpu.kind, "openai");
  ASSERT_EQ(gpu.endpoints.size(), 2u);
  EXPECT_EQ(url::to_string(gpu.endpoints[1]), "https://api.example.com/v1");
  EXPECT_EQ(gpu.api_key, "sk-test-123");
  EXPECT_EQ(gpu.api, upstream_api::both);
  EXPECT_EQ(gpu.connect_timeout_ms, 250u);
  EXPECT_EQ(gpu.retries_max, 0u);
  EXPECT_EQ(gpu.first_byte_timeout_ms, 60000u);  // defaults stay
  ASSERT_EQ(gpu.headers.size(), 1u);
  EXPECT_EQ(gpu.headers[0].first, "x-team");
  EXPECT_EQ(gpu.origin, path_ + ":2");
  const upstream_config& ws = s.upstreams[1];
  EXPECT_EQ(ws.api, upstream_api::responses);
  EXPECT_TRUE(ws.stateful);
  EXPECT_EQ(ws.max_retained_sessions, 7u);
  ASSERT_EQ(s.routes.size(), 2u);
  EXPECT_EQ(s.routes[0].upstream_model, "meta-llama/Llama-3.1-70B-Instruct");
  EXPECT_EQ(s.routes[0].max_output_tokens, 512u);
  EXPECT_EQ(s.routes[1].upstream_model, "agent");  // defaults to the client's name
  EXPECT_FALSE(s.models_explicit);
}

TEST_F(Upstreams, RoutingTableFindsRoutesAndFallback) {
  auto r = rules(std::string(kExample) + "\n[[models]]\nname = \"*\"\nupstream = \"gpu-pool\"\n");
  const routing_table& t = *r->routing;
  EXPECT_FALSE(t.mock_serves);  // upstreams and no explicit --model
  EXPECT_EQ(t.fallback, "gpu-pool");
  auto m = t.find("llama-70b");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->upstream->name, "gpu-pool");
  EXPECT_EQ(m->upstream_model, "meta-llama/Llama-3.1-70B-Instruct");
  EXPECT_EQ(m->max_output_tokens, 512u);
  m = t.find("anything-else");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->upstream->name, "gpu-pool");
  EXPECT_EQ(m->upstream_model, "anything-else");
  EXPECT_EQ(t.find("agent")->upstream->name, "ws");
}

TEST_F(Upstreams, UpstreamFlagRoutesEveryOtherModel) {
  auto r = rules("", {"--upstream", "http://127.0.0.1:8000/v1", "--upstream", "http://[::1]:8001"});
  const routing_table& t = *r->routing;
  ASSERT_EQ(t.upstreams.size(), 1u);
  const upstream_config& u = *t.upstreams[0];
  EXPECT_EQ(u.name, "default");
  EXPECT_EQ(u.kind, "openai");
  EXPECT_EQ(u.api, upstream_api::chat);
  EXPECT_EQ(u.origin, "--upstream");
  ASSERT_EQ(u.endpoints.size(), 2u);
  EXPECT_EQ(t.fallback, "default");
  EXPECT_FALSE(t.mock_serves);
  EXPECT_EQ(t.find("gpt-4o")->upstream_model, "gpt-4o");

  r = rules("", {"--upstream", "wss://ws.example.com/v1/responses"});
  EXPECT_EQ(r->routing->upstreams[0]->kind, "responses-ws");
  EXPECT_EQ(r->routing->upstreams[0]->api, upstream_api::responses);

  // An explicit --model keeps the mock beside the upstream.
  r = rules("", {"--upstream", "http://127.0.0.1:8000/v1", "--model", "ringcast-mock"});
  EXPECT_TRUE(r->routing->mock_serves);
}

TEST_F(Upstreams, UpstreamFlagErrors) {
  auto error_of = [&](const std::string& toml, std::vector<std::string> flags) {
    server_config cfg;
    std::string err = parse(toml, cfg, std::move(flags));
    EXPECT_EQ(err, "");
    std::vector<std::string> notes;
    EXPECT_FALSE(make_rules(cfg, nullptr, notes, err));
    return err;
  };
  EXPECT_EQ(error_of("", {"--upstream", "http://h:99999"}),
            "--upstream: bad URL \"http://h:99999\": port out of range (1-65535)");
  EXPECT_EQ(error_of("", {"--upstream", "http://a", "--upstream", "ws://b"}),
            "--upstream: mixes http(s):// and ws(s):// URLs (one upstream, one kind)");
  EXPECT_EQ(error_of("[[upstreams]]\nname = \"default\"\nkind = \"openai\"\nendpoints = "
                     "[\"http://a\"]\n",
                     {"--upstream", "http://b"}),
            "--upstream: the config file already defines an upstream named 'default' (" + path_ +
                ":1)");
  EXPECT_EQ(error_of("[[upstreams]]\nname = \"x\"\nkind = \"openai\"\nendpoints = "
                     "[\"http://a\"]\n[[models]]\nname = \"*\"\nupstream = \"x\"\n",
                     {"--upstream", "http://b"}),
            "--upstream: the config file already routes every other model (\"*\", " + path_ +
                ":5)");
  EXPECT_EQ(error_of("[[upstreams]]\nname = \"x\"\nkind = \"openai\"\nendpoints = "
                     "[\"http://a\"]\n[[models]]\nname = \"ringcast-mock\"\nupstream = \"x\"\n",
                     {"--model", "ringcast-mock"}),
            path_ + ":5: model 'ringcast-mock' is also served by the mock (--model); route it in "
                    "one place");
}

TEST_F(Upstreams, EngineTableLooksUpMockRoutesThenFallback) {
  auto r = rules(std::string(kExample) + "\n[[models]]\nname = \"*\"\nupstream = \"gpu-pool\"\n",
                 {"--model", "mock-a"});
  engine_table t;
  t.set_mock(std::make_shared<test_engine>("mock", std::vector<std::string>{"mock-a"}));
  t.rebuild(r->routing, maker());
  EXPECT_EQ(t.find("mock-a"), t.mock());
  ASSERT_NE(t.find("llama-70b"), nullptr);
  EXPECT_EQ(t.find("llama-70b")->name(), "openai:gpu-pool");
  EXPECT_EQ(t.find("agent")->name(), "responses-ws:ws");
  EXPECT_EQ(t.find("whatever")->name(), "openai:gpu-pool");
  EXPECT_EQ(t.default_model(), "mock-a");
  auto listed = t.list();
  std::vector<std::string> ids, owners;
  for (const auto& e : listed) {
    ids.emplace_back(e.id);
    owners.emplace_back(e.owned_by);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"mock-a", "llama-70b", "agent", "up-1", "up-2"}));
  EXPECT_EQ(owners,
            (std::vector<std::string>{"ringcast", "gpu-pool", "ws", "gpu-pool", "gpu-pool"}));
  EXPECT_EQ(t.describe("up-2")->owned_by, "gpu-pool");
  EXPECT_FALSE(t.describe("not-listed"));
  EXPECT_EQ(t.share(*t.find("agent")).get(), t.find("agent"));
}

TEST_F(Upstreams, WithoutUpstreamsTheMockServesAlone) {
  auto r = rules("");
  engine_table t;
  t.set_mock(std::make_shared<test_engine>("mock", std::vector<std::string>{"ringcast-mock"}));
  t.rebuild(r->routing, maker());
  EXPECT_EQ(t.find("ringcast-mock"), t.mock());
  EXPECT_EQ(t.find("gpt-4o"), nullptr);
  EXPECT_EQ(t.list().size(), 1u);
  // Upstreams without --model: the mock's default model is not served or listed.
  r = rules(kExample);
  t.rebuild(r->routing, maker());
  EXPECT_EQ(t.find("ringcast-mock"), nullptr);
  EXPECT_EQ(t.default_model(), "llama-70b");
  EXPECT_EQ(t.list().size(), 2u);
}

TEST_F(Upstreams, ReloadKeepsUnchangedEnginesAndSwapsRoutes) {
  int before = g_engines_alive;
  engine_table t;
  auto first = rules(kExample);
  t.rebuild(first->routing, maker());
  EXPECT_EQ(g_engines_alive, before + 2);
  engine* gpu = t.find("llama-70b");
  engine* ws = t.find("agent");
  // A generation in progress on the gpu-pool engine.
  std::shared_ptr<engine> in_progress = t.share(*gpu);
  std::weak_ptr<engine> watch = in_progress;

  // The reload changes gpu-pool's timeout, routes "agent" to gpu-pool, adds "new" to ws.
  std::string next = kExample;
  next.replace(next.find("connect_timeout_ms = 250"), 24, "connect_timeout_ms = 300");
  next.replace(next.find("name = \"agent\"\nupstream = \"ws\""), 30,
               "name = \"agent\"\nupstream = \"gpu-pool\"");
  next += "\n[[models]]\nname = \"new\"\nupstream = \"ws\"\n";
  auto second = rules(next, {}, first.get());
  t.rebuild(second->routing, maker());
  EXPECT_EQ(t.find("new"), ws);  // unchanged settings: the same engine
  engine* gpu2 = t.find("llama-70b");
  EXPECT_NE(gpu2, gpu);  // changed settings: a new engine
  EXPECT_EQ(t.find("agent"), gpu2);
  EXPECT_EQ(gpu2->name(), "openai:gpu-pool");
  // The old gpu-pool engine lives as long as its generation.
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(g_engines_alive, before + 3);
  in_progress.reset();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(g_engines_alive, before + 2);

  // Removing an upstream and its routes.
  auto third = rules(R"(
[[upstreams]]
name = "ws"
kind = "responses-ws"
endpoints = ["wss://ws.example.com/v1/responses"]
stateful = true
max_retained_sessions = 7
)", {}, second.get());
  t.rebuild(third->routing, maker());
  EXPECT_EQ(t.find("llama-70b"), nullptr);
  EXPECT_EQ(t.find("new"), nullptr);
  EXPECT_EQ(t.upstream_engine("ws").get(), ws);  // still unchanged
  EXPECT_EQ(g_engines_alive, before + 1);
}

// A rotated CA file (same path, new contents) is a changed setting: a reload rebuilds the engine,
// whose TLS context then reads the new roots.
TEST_F(Upstreams, ARotatedCaFileIsAChangedSetting) {
  std::string ca = dir_ + "/ca.pem";
  std::string toml = "[[upstreams]]\nname = \"a\"\nkind = \"openai\"\n"
                     "endpoints = [\"https://api.example.com/v1\"]\nca_file = \"" + ca + "\"\n";
  auto load = [&] {
    server_config cfg;
    EXPECT_EQ(parse(toml, cfg), "");
    EXPECT_EQ(cfg.upstream.upstreams.size(), 1u);
    return cfg.upstream.upstreams.empty() ? upstream_config{} : cfg.upstream.upstreams[0];
  };
  std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n";
  upstream_config first = load();
  upstream_config again = load();
  EXPECT_TRUE(first.same_settings(again));
  std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\nrotated, longer\n-----END CERTIFICATE-----\n";
  upstream_config rotated = load();
  EXPECT_FALSE(first.same_settings(rotated));
  unlink(ca.c_str());
}

TEST_F(Upstreams, AFailedFactoryLeavesItsModelsUnroutable) {
  auto r = rules(kExample);
  engine_table t;
  t.rebuild(r->routing, [](const upstream_kind& kind, std::shared_ptr<const upstream_config> cfg) {
    if (cfg->name == "ws") return std::shared_ptr<engine>();
    return std::shared_ptr<engine>(std::make_shared<test_engine>(kind.name, g_upstream_models));
  });
  EXPECT_EQ(t.find("agent"), nullptr);
  EXPECT_NE(t.find("llama-70b"), nullptr);
  EXPECT_EQ(t.list().size(), 1u);
}

}  // namespace
}  // namespace rc::server
