#include "load/chat_parse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guard_page.h"
#include "load/response_reader.h"
#include "load/ws_reader.h"
#include "proto/ws.h"

namespace rc::load {
namespace {

// A stream as ringcast writes it (API.md): role chunk, three content deltas, finish chunk,
// [DONE], in a chunked response body.
const std::string kChunkPrefix =
    R"({"id":"chatcmpl-0_1","object":"chat.completion.chunk","created":1,"model":"ringcast-mock",)"
    R"("choices":[{"index":0,"delta":)";
std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return kChunkPrefix + std::string(delta) + R"(,"logprobs":null,"finish_reason":)" +
         std::string(finish) + "}]}";
}

std::string sse_body() {
  std::string b;
  for (const std::string& d : {chunk(R"({"role":"assistant","content":""})"),
                               chunk(R"({"content":"Open"})"), chunk(R"({"content":" qu}ie\"t"})"),
                               chunk(R"({"content":" ring"})"), chunk("{}", "\"length\"")})
    b += "data: " + d + "\n\n";
  b += "data: [DONE]\n\n";
  return b;
}

std::string chunked(std::string_view body) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
         "chunked\r\n\r\n" +
         std::string(size) + "\r\n" + std::string(body) + "\r\n0\r\n\r\n";
}

struct chunk_counts {
  int token = 0, other = 0, done = 0, error = 0, malformed = 0, responses = 0;
  bool operator==(const chunk_counts&) const = default;
};

// Reads a whole HTTP response carrying a chat stream, in pieces of `split` bytes then the rest.
chunk_counts read_stream(std::string_view wire, size_t split) {
  chunk_counts c;
  response_reader http;
  chat_sse_reader sse;
  auto on_chunk = [&](chat_chunk k) {
    int* slot[] = {&c.token, &c.other, &c.done, &c.error, &c.malformed};
    ++*slot[static_cast<int>(k)];
  };
  for (std::string_view part : {wire.substr(0, split), wire.substr(split)}) {
    testing::guarded_bytes g(part);
    std::string_view in = g.view(), body;
    for (bool more = true; more;) {
      switch (http.next(in, body)) {
        case response_reader::step::need_more:
          more = false;
          break;
        case response_reader::step::body:
          EXPECT_TRUE(sse.feed(body, on_chunk));
          break;
        case response_reader::step::done:
          ++c.responses;
          break;
        case response_reader::step::head:
          break;
        case response_reader::step::error:
          ADD_FAILURE() << "http error";
          return c;
      }
    }
  }
  return c;
}

TEST(LoadChatChunk, ClassifiesServerChunks) {
  EXPECT_EQ(classify_chat_chunk(chunk(R"({"content":"Open"})")), chat_chunk::token);
  EXPECT_EQ(classify_chat_chunk(chunk(R"({"role":"assistant","content":""})")), chat_chunk::other);
  EXPECT_EQ(classify_chat_chunk(chunk("{}", "\"stop\"")), chat_chunk::other);
  EXPECT_EQ(classify_chat_chunk(R"({"id":"x","choices":[],"usage":{"total_tokens":3}})"),
            chat_chunk::other);
  EXPECT_EQ(classify_chat_chunk("[DONE]"), chat_chunk::done);
  EXPECT_EQ(classify_chat_chunk(R"({"error":{"message":"no","type":"server_error"}})"),
            chat_chunk::error);
  // A tool-call delta carries no content: not a token.
  EXPECT_EQ(classify_chat_chunk(chunk(R"({"tool_calls":[{"index":0}]})")), chat_chunk::other);
}

TEST(LoadChatChunk, MalformedIsCountedNotTrusted) {
  for (std::string_view bad :
       {"", "[DONE", "garbage", "{", R"({"choices":)", R"({"choices":[{"delta":{"content":")",
        R"({"choices":[{"delta":{"content":"x")", R"({"object":"chat.completion.chunk"})",
        R"({"choices":[{"index":0}]})"}) {
    testing::guarded_bytes g(bad);
    EXPECT_EQ(classify_chat_chunk(g.view()), chat_chunk::malformed) << bad;
  }
}

TEST(LoadChatChunk, EveryPrefixIsSafe) {
  // Truncations of a token chunk, right before a guard page: never an over-read, and never
  // a token unless the content string has begun.
  std::string full = chunk(R"({"content":"Open"})");
  for (size_t n = 0; n <= full.size(); ++n) {
    testing::guarded_bytes g(std::string_view(full).substr(0, n));
    chat_chunk k = classify_chat_chunk(g.view());
    if (n < full.find("Open")) {
      EXPECT_NE(k, chat_chunk::token) << n;
    }
  }
}

TEST(LoadChatSseReader, SplitAtEveryByteGivesTheSameChunks) {
  std::string wire = chunked(sse_body()) + chunked(sse_body());  // two responses, keep-alive
  chunk_counts want{.token = 6, .other = 4, .done = 2, .error = 0, .malformed = 0, .responses = 2};
  for (size_t split = 0; split <= wire.size(); ++split)
    ASSERT_EQ(read_stream(wire, split), want) << "split at " << split;
}

TEST(LoadChatSseReader, MalformedDataIsCountedAndReadingGoesOn) {
  std::string body = "data: {not json\n\n" + sse_body();
  chunk_counts c = read_stream(chunked(body), 7);
  EXPECT_EQ(c.malformed, 1);
  EXPECT_EQ(c.token, 3);
  EXPECT_EQ(c.done, 1);
}

TEST(LoadChatSseReader, OversizedLineIsAnError) {
  chat_sse_reader r;
  std::string huge = "data: " + std::string((1 << 20) + 10, 'x');
  EXPECT_FALSE(r.feed(huge, [](chat_chunk) {}));
}

TEST(LoadWsChat, ClassifiesServerEvents) {
  ws_chat_event e =
      classify_ws_chat(R"({"id":"c7","event":"chat.delta","data":{"index":0,"delta":"Open"}})");
  EXPECT_EQ(e.kind, ws_chat_kind::delta);
  EXPECT_EQ(e.slot, 7u);
  e = classify_ws_chat(
      R"({"id":"c0","event":"chat.complete","data":{"output":{"text":"x"},"finish_reason":"length"}})");
  EXPECT_EQ(e.kind, ws_chat_kind::complete);
  EXPECT_EQ(e.slot, 0u);
  e = classify_ws_chat(R"({"id":"c12","event":"error","error":{"code":"model_not_found"}})");
  EXPECT_EQ(e.kind, ws_chat_kind::error);
  EXPECT_EQ(e.slot, 12u);
  EXPECT_EQ(classify_ws_chat(R"({"event":"flow.pause"})").kind, ws_chat_kind::flow);
  EXPECT_EQ(classify_ws_chat(R"({"id":"c1","event":"chat.tool_call","data":{}})").kind,
            ws_chat_kind::other);
  // A delta whose text looks like fields does not confuse the id and the event.
  e = classify_ws_chat(R"({"id":"c3","event":"chat.delta","data":{"delta":"\"id\":\"c9\""}})");
  EXPECT_EQ(e.kind, ws_chat_kind::delta);
  EXPECT_EQ(e.slot, 3u);
}

TEST(LoadWsChat, MalformedEvents) {
  for (std::string_view bad :
       {"", "{}", R"({"id":"c1"})", R"({"event":"chat.delta"})",
        R"({"id":"r1","event":"chat.delta"})", R"({"id":"c","event":"chat.delta"})",
        R"({"id":"c1x","event":"chat.delta"})", R"({"id":"c99999999999","event":"chat.delta"})",
        R"({"id":"c1","event":"chat.del)", R"({"id":"c1)"}) {
    testing::guarded_bytes g(bad);
    EXPECT_EQ(classify_ws_chat(g.view()).kind, ws_chat_kind::malformed) << bad;
  }
}

TEST(LoadWsChat, SlotIdsRoundTrip) {
  for (uint32_t slot : {0u, 1u, 9u, 10u, 65535u, 4294967295u}) {
    char id[12];
    size_t n = write_slot_id(slot, id);
    std::string msg = R"({"id":")" + std::string(id, n) + R"(","event":"chat.delta"})";
    ws_chat_event e = classify_ws_chat(msg);
    EXPECT_EQ(e.kind, ws_chat_kind::delta);
    EXPECT_EQ(e.slot, slot);
  }
}

TEST(LoadWsChat, FramesSplitAtEveryByte) {
  // Server frames (unmasked) carrying a delta and a completion, split anywhere.
  std::string wire;
  for (std::string_view m : {R"({"id":"c1","event":"chat.delta","data":{"index":0,"delta":"a"}})",
                             R"({"id":"c1","event":"chat.complete","data":{}})"}) {
    byte_buffer b;
    ws::write_frame(b, ws::opcode::text, m, ws::fin::yes);
    wire.append(b.view());
  }
  struct sink_state {
    std::vector<ws_chat_kind> kinds;
    void on(ws_event, std::string_view p) { kinds.push_back(classify_ws_chat(p).kind); }
  };
  for (size_t split = 0; split <= wire.size(); ++split) {
    ws_reader r;
    sink_state s;
    ASSERT_TRUE(r.feed(std::string_view(wire).substr(0, split), bind_sink<&sink_state::on>(&s)));
    ASSERT_TRUE(r.feed(std::string_view(wire).substr(split), bind_sink<&sink_state::on>(&s)));
    ASSERT_EQ(s.kinds, (std::vector<ws_chat_kind>{ws_chat_kind::delta, ws_chat_kind::complete}));
  }
}

TEST(LoadBroker, FieldsAndEvents) {
  auto id = find_string_field(R"({"message_id":"msg_0_ab","status":"queued","queue_position":0})",
                              "message_id");
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "msg_0_ab");
  EXPECT_FALSE(find_string_field(R"({"message_id":"msg_0_ab)", "message_id"));
  EXPECT_FALSE(find_string_field(R"({"message_id":5})", "message_id"));
  EXPECT_FALSE(find_string_field(R"({"xmessage_id":"m"})", "message_id"));
  EXPECT_FALSE(find_string_field(R"({"message_id")", "message_id"));
  EXPECT_EQ(classify_broker_event("queued"), broker_event::queued);
  EXPECT_EQ(classify_broker_event("processing"), broker_event::processing);
  EXPECT_EQ(classify_broker_event("progress"), broker_event::progress);
  EXPECT_EQ(classify_broker_event("done"), broker_event::done);
  EXPECT_EQ(classify_broker_event("error"), broker_event::error);
  EXPECT_EQ(classify_broker_event("message"), broker_event::other);
}

}  // namespace
}  // namespace rc::load
