#include "server/mock_engine.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include "base/assert.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace rc::server {
namespace {

constexpr const char* vocabulary[] = {
    "the",     "stream",  "server",  "token",   "signal", "river",  "light",   "quiet",
    "fast",    "shard",   "ring",    "message", "answer", "garden", "window",  "bright",
    "simple",  "careful", "network", "packet",  "engine", "clear",  "morning", "paper",
    "north",   "silver",  "open",    "steady",  "small",  "large",  "green",   "water",
    "stone",   "bridge",  "little",  "every",   "other",  "under",  "over",    "between",
    "through", "around",  "before",  "after",   "while",  "again",  "always",  "never",
    "often",   "rarely",  "city",    "harbor",  "forest", "mountain", "valley", "cloud",
    "thunder", "echo",    "lantern", "compass", "signal", "harvest", "season", "winter",
    "summer",  "autumn",  "spring",  "ocean",   "island", "meadow", "candle",  "thread",
    "needle",  "mirror",  "shadow",  "pattern", "number", "letter", "story",   "moment",
    "journey", "kitchen", "market",  "village", "station", "corner", "ladder", "pocket",
    "basket",  "feather", "pebble",  "orchard", "canyon", "desert", "glacier", "prairie",
    "and",     "of",      "to",      "in",      "with",   "for",    "on",      "from",
    "is",      "was",     "will",    "can",     "may",    "would",  "could",   "should",
    "a",       "an",      "this",    "that",    "these",  "those",  "it",      "we",
    "they",    "you",     "quickly", "slowly",  "gently", "boldly", "softly",  "warmly",
};
constexpr size_t vocabulary_size = sizeof vocabulary / sizeof vocabulary[0];

// splitmix64: small, fast, and good enough to pick words deterministically.
struct rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

uint64_t hash_bytes(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool is_word_char(unsigned char c) { return std::isalnum(c) || c >= 0x80 || c == '_'; }

std::string_view last_user_text(const generation_request& req) {
  for (auto it = req.conversation.rbegin(); it != req.conversation.rend(); ++it)
    if (it->role == openai::message_role::user) return it->text;
  return req.conversation.empty() ? std::string_view() : req.conversation.back().text;
}

// "ringcast-mock:error-after=N" in the prompt: fail after N tokens (a test aid).
std::optional<uint64_t> error_directive(std::string_view prompt) {
  constexpr std::string_view key = "ringcast-mock:error-after=";
  size_t at = prompt.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  uint64_t n = 0;
  const char* p = prompt.data() + at + key.size();
  auto [end, ec] = std::from_chars(p, prompt.data() + prompt.size(), n);
  if (ec != std::errc()) return std::nullopt;
  return n;
}

// A JSON value for one schema node, deterministic in `r`.
// A node that is not an object (`true`, a string: a client's schema may say anything) is an
// empty schema: a string.
void write_schema_value(json::writer& w, const json::value& node, rng& r, int depth) {
  const json::value schema = node && node.is_object() ? node : json::value();
  json::value en = schema ? schema.find("enum") : json::value();
  if (en && en.is_array() && en.size() > 0) {
    byte_buffer first;
    (*en.elements().begin()).write_to(first);
    w.raw(first.view());
    return;
  }
  json::value type = schema ? schema.find("type") : json::value();
  std::string_view t = type && type.is_string() ? type.get_string() : "string";
  if (t == "integer") {
    w.int64(static_cast<int64_t>(r.next() % 100));
  } else if (t == "number") {
    w.float64(static_cast<double>(r.next() % 10000) / 100.0);
  } else if (t == "boolean") {
    w.boolean(r.next() & 1);
  } else if (t == "array") {
    w.begin_array();
    json::value items = schema.find("items");
    if (items && depth < 4) write_schema_value(w, items, r, depth + 1);
    w.end_array();
  } else if (t == "object") {
    w.begin_object();
    json::value props = schema.find("properties");
    if (props && props.is_object() && depth < 4) {
      // Required properties first, in the order given, then the rest. Linear in the schema's
      // size (hash lookups): a client's schema may have tens of thousands of properties.
      std::unordered_map<std::string_view, json::value> by_name;
      for (json::member m : props.members()) by_name.insert_or_assign(m.key, m.value);
      std::unordered_set<std::string_view> written;
      auto write_one = [&](std::string_view key, const json::value& v) {
        if (!written.insert(key).second) return;
        w.key(key);
        write_schema_value(w, v, r, depth + 1);
      };
      if (json::value req = schema.find("required"); req && req.is_array()) {
        for (json::value name : req.elements()) {
          if (!name.is_string()) continue;
          if (auto it = by_name.find(name.get_string()); it != by_name.end()) {
            write_one(it->first, it->second);
          }
        }
      }
      for (json::member m : props.members()) write_one(m.key, by_name.at(m.key));
    }
    w.end_object();
  } else if (t == "null") {
    w.null();
  } else {
    w.string(vocabulary[r.next() % vocabulary_size]);
  }
}

std::string tool_arguments(json::parser& parser, const openai::function_tool& tool, rng& r) {
  byte_buffer out;
  json::writer w(out);
  json::parse_result p = parser.parse(tool.parameters_json.empty() ? std::string_view("{}")
                                                                    : tool.parameters_json);
  json::value schema = p.ok() ? p.root : json::value();
  if (!schema || !schema.is_object()) {
    w.begin_object();
    w.end_object();
  } else {
    write_schema_value(w, schema, r, 0);
  }
  return std::string(out.view());
}

// Which tools a choice calls, per the rules in mock_engine.h.
std::vector<size_t> planned_tools(const generation_request& req) {
  std::vector<size_t> out;
  if (req.tools.empty()) return out;
  const auto& choice = req.tool_choice;
  if (choice.mode == openai::tool_choice_mode::none) return out;
  std::string_view prompt = last_user_text(req);
  if (choice.mode == openai::tool_choice_mode::function) {
    for (size_t i = 0; i < req.tools.size(); ++i)
      if (req.tools[i].name == choice.function_name) out.push_back(i);
    return out;
  }
  // An agent loop: once the user's request has been answered by tool results (the last turn is
  // not the user's), the mock answers in text, so the loop ends.
  bool answered = !req.conversation.empty() &&
                  req.conversation.back().role != openai::message_role::user;
  for (size_t i = 0; i < req.tools.size() && !answered; ++i) {
    if (prompt.find(req.tools[i].name) != std::string_view::npos) {
      out.push_back(i);
      if (!req.parallel_tool_calls) break;
    }
  }
  if (out.empty() && choice.mode == openai::tool_choice_mode::required) out.push_back(0);
  return out;
}

// ---- the stream ----

class mock_stream final : public engine_stream {
 public:
  mock_stream(mock_engine& engine, json::parser& parser, const generation_request& req,
              engine_sink& sink);
  ~mock_stream() override { engine_.loop().cancel_timer(timer_); }
  void resume() override;

 private:
  struct tool_plan {
    std::string id, name, arguments;
    size_t sent = 0;  // argument bytes delivered
  };
  struct choice_state {
    rng words{0};
    uint64_t emitted = 0;  // tokens
    uint64_t target = 0;
    bool done = false;
    bool capitalize = true;
    bool stop_hit = false;  // a stop sequence ended the text: finish next
    uint32_t since_period = 0;
    std::string text;  // kept only when stop sequences must be watched
    std::vector<tool_plan> tools;
    size_t tool = 0;
  };

  void on_timer();
  void schedule_us(uint64_t us);
  // Emits the next event of choice `c`. False when the sink paused or the stream is over.
  bool step(uint32_t c);
  bool step_tools(uint32_t c, choice_state& s);
  bool step_text(uint32_t c, choice_state& s);
  bool finish_choice(uint32_t c, openai::finish_reason reason);
  bool emit(const engine_event& e);

  mock_engine& engine_;
  engine_sink& sink_;
  std::vector<choice_state> choices_;
  std::vector<std::string> stop_;
  std::optional<uint64_t> error_after_;
  openai::usage_counts usage_;
  uint64_t interval_us_;
  uint32_t next_choice_ = 0;
  uint32_t open_choices_;
  bool length_limited_;  // max_tokens given: the text ends by length
  bool paused_ = false;
  bool over_ = false;
  timer timer_;
};

mock_stream::mock_stream(mock_engine& engine, json::parser& parser, const generation_request& req,
                         engine_sink& sink)
    : engine_(engine),
      sink_(sink),
      choices_(req.choices),
      stop_(req.stop),
      error_after_(error_directive(last_user_text(req))),
      interval_us_(engine.options().tokens_per_s > 0
                       ? static_cast<uint64_t>(1e6 / engine.options().tokens_per_s)
                       : 0),
      open_choices_(req.choices),
      length_limited_(req.max_tokens.has_value()) {
  RC_ASSERT(req.choices >= 1);
  timer_.bind<mock_stream, &mock_stream::on_timer>(this);
  for (const turn& t : req.conversation) usage_.input_tokens += mock_count_tokens(t.text) + 3;
  uint64_t base = hash_bytes(req.model, hash_bytes(last_user_text(req)));
  base ^= static_cast<uint64_t>(req.seed.value_or(0)) * 0x9e3779b97f4a7c15ULL;
  std::vector<size_t> tools = planned_tools(req);
  for (uint32_t c = 0; c < req.choices; ++c) {
    choice_state& s = choices_[c];
    s.words.state = base + c * 0x632be59bd9b4e019ULL;
    s.target = req.max_tokens.value_or(engine.options().default_tokens);
    rng r{s.words.state ^ 0x5bd1e995};
    for (size_t i : tools) {
      tool_plan p;
      p.id = "call_";
      for (int k = 0; k < 24; ++k) p.id.push_back("abcdefghijklmnopqrstuvwxyz0123456789"[r.next() % 36]);
      p.name = req.tools[i].name;
      p.arguments = tool_arguments(parser, req.tools[i], r);
      s.tools.push_back(std::move(p));
    }
  }
  schedule_us(uint64_t{engine.options().first_token_ms} * 1000);
}

void mock_stream::schedule_us(uint64_t us) { engine_.loop().arm_after_us(timer_, us); }

void mock_stream::resume() {
  if (over_ || !paused_) return;
  paused_ = false;
  schedule_us(0);
}

bool mock_stream::emit(const engine_event& e) {
  if (!sink_.on_event(e)) paused_ = true;
  return !paused_;
}

void mock_stream::on_timer() {
  // Unpaced: a batch, then yield to the loop. Paced: one token per open choice per interval.
  uint32_t budget = interval_us_ == 0 ? 64 : open_choices_;
  while (budget-- > 0 && !over_ && !paused_) {
    uint32_t c = next_choice_;
    next_choice_ = (next_choice_ + 1) % static_cast<uint32_t>(choices_.size());
    if (choices_[c].done) {
      ++budget;
      continue;
    }
    if (!step(c)) break;
  }
  if (!over_ && !paused_) schedule_us(interval_us_);
}

bool mock_stream::step(uint32_t c) {
  choice_state& s = choices_[c];
  if (error_after_ && usage_.output_tokens >= *error_after_) {
    over_ = true;
    engine_event e;
    e.type = event_type::error;
    e.error_code = "mock_error";
    e.error_message = "the mock engine failed as the request asked (ringcast-mock:error-after)";
    sink_.on_event(e);
    return false;
  }
  if (s.tool < s.tools.size()) return step_tools(c, s);
  if (!s.tools.empty()) return finish_choice(c, openai::finish_reason::tool_calls);
  return step_text(c, s);
}

bool mock_stream::step_tools(uint32_t c, choice_state& s) {
  tool_plan& p = s.tools[s.tool];
  constexpr size_t fragment_bytes = 8;
  engine_event e;
  e.type = event_type::tool_call;
  e.choice = c;
  e.tool_index = static_cast<uint32_t>(s.tool);
  if (p.sent == 0) {
    e.tool_call_id = p.id;
    e.tool_name = p.name;
  }
  size_t n = std::min(fragment_bytes, p.arguments.size() - p.sent);
  e.text = std::string_view(p.arguments).substr(p.sent, n);
  p.sent += n;
  usage_.output_tokens += (n + 3) / 4;
  if (p.sent == p.arguments.size()) ++s.tool;
  return emit(e);
}

bool mock_stream::step_text(uint32_t c, choice_state& s) {
  if (s.stop_hit) return finish_choice(c, openai::finish_reason::stop);
  if (s.emitted >= s.target) {
    return finish_choice(c, length_limited_ ? openai::finish_reason::length
                                            : openai::finish_reason::stop);
  }
  // One token: a word with its leading space, or a period after 6 to 13 words.
  char buf[32];
  size_t len = 0;
  if (s.since_period >= 6 && s.words.next() % 8 == 0) {
    buf[len++] = '.';
    s.since_period = 0;
    s.capitalize = true;
  } else {
    const char* w = vocabulary[s.words.next() % vocabulary_size];
    if (s.emitted > 0) buf[len++] = ' ';
    size_t wl = std::strlen(w);
    std::memcpy(buf + len, w, wl);
    if (s.capitalize) buf[len] = static_cast<char>(std::toupper(buf[len]));
    len += wl;
    s.capitalize = false;
    ++s.since_period;
  }
  ++s.emitted;
  ++usage_.output_tokens;
  std::string_view token(buf, len);
  if (!stop_.empty()) {
    // A stop sequence may straddle tokens: look for it in the text so far plus this token.
    size_t before = s.text.size();
    s.text.append(token);
    size_t cut = std::string::npos;
    for (const std::string& stop : stop_) {
      size_t at = s.text.find(stop, before >= stop.size() ? before - stop.size() + 1 : 0);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      s.stop_hit = true;
      if (cut <= before) return finish_choice(c, openai::finish_reason::stop);
      engine_event e;
      e.type = event_type::delta;
      e.choice = c;
      e.text = std::string_view(s.text).substr(before, cut - before);
      return emit(e);
    }
  }
  engine_event e;
  e.type = event_type::delta;
  e.choice = c;
  e.text = token;
  return emit(e);
}

bool mock_stream::finish_choice(uint32_t c, openai::finish_reason reason) {
  choices_[c].done = true;
  --open_choices_;
  engine_event e;
  e.type = event_type::done;
  e.choice = c;
  e.finish = reason;
  bool go_on = emit(e);
  if (open_choices_ == 0) {
    over_ = true;
    engine_event u;
    u.type = event_type::usage;
    u.usage = usage_;
    sink_.on_event(u);
    return false;
  }
  return go_on;
}

}  // namespace

// ---- tokenizer ----

uint64_t mock_count_tokens(std::string_view text) {
  uint64_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    if (is_word_char(c)) {
      if (!in_word) ++n;
      in_word = true;
    } else {
      in_word = false;
      if (!std::isspace(c)) ++n;  // punctuation marks count one each
    }
  }
  return n;
}

// ---- engine ----

mock_engine::mock_engine(reactor& r, mock_options opts) : reactor_(r), opts_(std::move(opts)) {}

namespace {
// One parser per shard for the engine's own JSON (tool schemas, tool arguments).
json::parser& engine_parser() {
  thread_local json::parser p;
  return p;
}
}  // namespace

std::unique_ptr<engine_stream> mock_engine::generate(const generation_request& req,
                                                     engine_sink& sink) {
  return std::make_unique<mock_stream>(*this, engine_parser(), req, sink);
}

namespace {

// A large batch (2048 inputs of a few thousand dimensions) is computed a slice at a time, one
// slice per loop turn, so other connections of the shard are served in between. About this
// many values per turn: a few milliseconds of work.
constexpr size_t embed_values_per_turn = 64 * 1024;

struct embed_job {
  reactor& loop;
  embedding_request req;
  embedding_result res;
  size_t next = 0;  // the next input to compute
  unique_function<void(embedding_result&&)> done;
};

void embed_row(embed_job& job, size_t i) {
  const std::string& text = job.req.texts[i];
  rng r{hash_bytes(text, hash_bytes(job.req.model))};
  float* row = job.res.vectors.data() + i * job.res.dimensions;
  double norm = 0;
  for (uint32_t d = 0; d < job.res.dimensions; ++d) {
    // Box-Muller: normal components make the direction uniform on the sphere.
    double u1 = r.uniform() + 1e-12, u2 = r.uniform();
    double v = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    row[d] = static_cast<float>(v);
    norm += v * v;
  }
  auto inv = static_cast<float>(1 / std::sqrt(norm));
  for (uint32_t d = 0; d < job.res.dimensions; ++d) row[d] *= inv;
}

void run_embed_slice(std::unique_ptr<embed_job> job) {
  size_t values = 0;
  while (job->next < job->req.texts.size() && values < embed_values_per_turn) {
    job->res.prompt_tokens += mock_count_tokens(job->req.texts[job->next]);
    embed_row(*job, job->next++);
    values += job->res.dimensions;
  }
  reactor& loop = job->loop;
  if (job->next < job->req.texts.size()) {
    loop.post(loop.shard_id(), [job = std::move(job)]() mutable { run_embed_slice(std::move(job)); });
    return;
  }
  job->done(std::move(job->res));
}

}  // namespace

void mock_engine::embed(const embedding_request& req,
                        unique_function<void(embedding_result&&)> done) {
  auto job = std::make_unique<embed_job>(
      embed_job{reactor_, req, embedding_result{}, 0, std::move(done)});
  job->res.dimensions = req.dimensions.value_or(opts_.embedding_dim);
  job->res.vectors.resize(req.texts.size() * job->res.dimensions);
  // `done` never runs inside this call: the first slice is computed in a later turn.
  reactor_.post(reactor_.shard_id(),
                [job = std::move(job)]() mutable { run_embed_slice(std::move(job)); });
}

void mock_engine::invoke_tool(std::string_view name, std::string_view arguments_json,
                              unique_function<void(tool_result&&)> done) {
  tool_result res;
  json::parse_result p = engine_parser().parse(arguments_json);
  auto fail = [&](std::string code, std::string message) {
    res.error_code = std::move(code);
    res.error_message = std::move(message);
  };
  byte_buffer out;
  json::writer w(out);
  if (!p.ok() || !p.root.is_object()) {
    fail("invalid_arguments", "arguments must be a JSON object");
  } else if (name == "echo") {
    p.root.write_to(out);
  } else if (name == "add") {
    json::value a = p.root.find("a"), b = p.root.find("b");
    if (!a || !b || !a.is_number() || !b.is_number()) {
      fail("invalid_arguments", "add takes numbers 'a' and 'b'");
    } else {
      w.begin_object();
      w.float64_member("sum", a.get_double() + b.get_double());
      w.end_object();
    }
  } else if (name == "uppercase" || name == "word_count") {
    json::value text = p.root.find("text");
    if (!text || !text.is_string()) {
      fail("invalid_arguments", std::string(name) + " takes a string 'text'");
    } else if (name == "uppercase") {
      std::string s(text.get_string());
      for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      w.begin_object();
      w.string_member("text", s);
      w.end_object();
    } else {
      w.begin_object();
      w.uint64_member("words", mock_count_tokens(text.get_string()));
      w.end_object();
    }
  } else if (name == "now") {
    std::time_t t = std::time(nullptr);
    std::tm tm;
    gmtime_r(&t, &tm);
    char iso[32];
    std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    w.begin_object();
    w.string_member("utc", iso);
    w.end_object();
  } else {
    fail("unknown_tool", "unknown tool '" + std::string(name) +
                             "' (built-in: echo, add, uppercase, word_count, now)");
  }
  if (res.error_code.empty()) res.output = std::string(out.view());
  reactor_.post(reactor_.shard_id(), [done = std::move(done), res = std::move(res)]() mutable {
    done(std::move(res));
  });
}

}  // namespace rc::server
