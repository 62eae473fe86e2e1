// Fuzz target: the NATS protocol parser (proto/nats.h). Input: fuzz_split.h layout; flags bits
// 0-1 pick max_payload (default, 0, 16, 1024). Invariants: any split of the stream gives the same
// operations and the same error as the whole stream; a message never exceeds max_payload; every
// view lies inside the input or the parser's buffer (ASan checks the reads); header blocks and
// INFO bodies parse without crashing and header fields lie inside their block; a subject the
// parser hands out, written back into a MSG, parses to itself; URLs and subjects never crash.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/nats.h"

namespace {

using rc::nats::op;
using rc::nats::server_op;

void check(bool ok) {
  if (!ok) std::abort();
}

struct op_copy {
  op kind;
  std::string subject, reply, sid, headers, payload;
  bool operator==(const op_copy&) const = default;
};

struct outcome {
  std::vector<op_copy> ops;
  bool ok = true;
  std::string error;
  bool operator==(const outcome&) const = default;
};

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_op(const server_op& o, size_t max_payload) {
  if (o.kind == op::msg || o.kind == op::hmsg) {
    check(o.headers.size() + o.payload.size() <= max_payload);
    check(!o.subject.empty() && !o.sid.empty());
    check(o.kind == op::hmsg || o.headers.empty());
    if (o.kind == op::hmsg) {
      if (auto h = rc::nats::header_block::parse(o.headers)) {
        check(h->status >= 0 && h->status <= 999);
        for (const auto& [k, v] : h->fields) check(inside(k, o.headers) && inside(v, o.headers));
        (void)h->get("Nats-Msg-Id");
      }
    }
  }
  if (o.kind == op::info) (void)rc::nats::parse_info(o.payload);
}

outcome run(const std::vector<std::string_view>& chunks, size_t max_payload) {
  rc::nats::parser p(max_payload);
  outcome out;
  for (std::string_view c : chunks) {
    out.ok = p.feed(c, [&](const server_op& o) {
      check_op(o, max_payload);
      out.ops.push_back({o.kind, std::string(o.subject), std::string(o.reply), std::string(o.sid),
                         std::string(o.headers), std::string(o.payload)});
    });
    if (!out.ok) break;
  }
  out.error = std::string(p.error());
  check(out.ok == out.error.empty());
  return out;
}

// A message the parser produced, written back in wire form, parses to the same message.
void check_round_trip(const op_copy& m) {
  std::string wire = m.kind == op::msg ? "MSG " : "HMSG ";
  wire += m.subject + " " + m.sid + " ";
  if (!m.reply.empty()) wire += m.reply + " ";
  if (m.kind == op::hmsg) wire += std::to_string(m.headers.size()) + " ";
  wire += std::to_string(m.headers.size() + m.payload.size()) + "\r\n" + m.headers + m.payload +
          "\r\n";
  outcome again = run({wire}, rc::nats::default_max_payload);
  check(again.ok && again.ops.size() == 1 && again.ops[0] == m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  constexpr size_t limits[] = {rc::nats::default_max_payload, 0, 16, 1024};
  size_t max_payload = limits[in.flags & 3];
  outcome whole = run({in.payload}, max_payload);
  outcome split = run(in.chunks, max_payload);
  check(whole == split);
  for (const auto& o : whole.ops)
    if (o.kind == op::msg || o.kind == op::hmsg) check_round_trip(o);
  // The other pure entry points take any bytes.
  std::string_view text = in.payload.substr(0, 2048);
  (void)rc::nats::header_block::parse(text);
  (void)rc::nats::parse_url(text);
  (void)rc::nats::valid_subject(text, (in.flags & 4) != 0);
  return 0;
}
