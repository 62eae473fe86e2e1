#include "proto/sse.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "guarded_input.h"

namespace rc::sse {
namespace {

using namespace std::literals;

std::string encoded(const event& e) {
  byte_buffer b;
  write_event(b, e);
  EXPECT_EQ(b.size(), encoded_size(e));
  return std::string(b.view());
}

// ---- encoder ----

TEST(SseEncoder, ByteExactOutput) {
  EXPECT_EQ(encoded({.data = "hello"}), "data: hello\n\n");
  EXPECT_EQ(encoded({.id = "7", .type = "update", .data = "a\nb", .retry_ms = 3000}),
            "id: 7\nevent: update\nretry: 3000\ndata: a\ndata: b\n\n");
  EXPECT_EQ(encoded({.data = ""}), "data: \n\n");
  EXPECT_EQ(encoded({.id = "", .data = "x"}), "id: \ndata: x\n\n");
  EXPECT_EQ(encoded({.type = "response.created", .data = "{\"a\":1}"}),
            "event: response.created\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(encoded({.data = "x", .retry_ms = 0}), "retry: 0\ndata: x\n\n");
  EXPECT_EQ(encoded({.data = " leading space"}), "data:  leading space\n\n");
}

TEST(SseEncoder, SplitsDataAtEveryLineEndStyle) {
  EXPECT_EQ(encoded({.data = "a\r\nb\rc\nd"}), "data: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(encoded({.data = "\n"}), "data: \ndata: \n\n");
  EXPECT_EQ(encoded({.data = "a\n"}), "data: a\ndata: \n\n");
  EXPECT_EQ(encoded({.data = "\r\n\r\n"}), "data: \ndata: \ndata: \n\n");
  EXPECT_EQ(encoded({.data = "\n\r"}), "data: \ndata: \ndata: \n\n");  // LF then CR: two ends
  EXPECT_EQ(encoded({.data = "a\r"}), "data: a\ndata: \n\n");
}

TEST(SseEncoder, CommentsAndRetry) {
  byte_buffer b;
  write_comment(b, "ping");
  EXPECT_EQ(b.view(), ": ping\n\n");
  b.clear();
  write_comment(b, "");
  EXPECT_EQ(b.view(), ":\n\n");
  b.clear();
  write_retry(b, 0);
  write_retry(b, 4294967295u);
  EXPECT_EQ(b.view(), "retry: 0\n\nretry: 4294967295\n\n");
}

TEST(SseEncoder, EncodeIntoCallerRegion) {
  event e{.id = "1-2", .type = "message", .data = "line1\nline2"};
  size_t n = encoded_size(e);
  std::string region = "HDR\r\n" + std::string(n, '?') + "\r\n";
  char* end = encode(e, region.data() + 5);
  EXPECT_EQ(end, region.data() + 5 + n);
  EXPECT_EQ(region, "HDR\r\nid: 1-2\nevent: message\ndata: line1\ndata: line2\n\n\r\n");
}

TEST(SseEncoder, ValidField) {
  EXPECT_TRUE(valid_field(""));
  EXPECT_TRUE(valid_field("response.output_text.delta"));
  EXPECT_FALSE(valid_field("a\nb"));
  EXPECT_FALSE(valid_field("a\rb"));
  EXPECT_FALSE(valid_field(std::string_view("a\0b", 3)));
  EXPECT_FALSE(valid_field(std::string(40, 'x') + "\n"));  // found by the block scan
}

TEST(SseEncoderDeathTest, RejectsMultiLineIdAndType) {
  byte_buffer b;
  EXPECT_DEATH(write_event(b, {.id = "a\nb", .data = "x"}), "valid_field");
  EXPECT_DEATH(write_event(b, {.type = "a\rb", .data = "x"}), "valid_field");
  EXPECT_DEATH(write_comment(b, "a\nb"), "valid_field");
}

// ---- decoder ----

struct seen {
  std::string type, data, id;
  bool operator==(const seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const seen& s) {
  return os << "{" << s.type << "|" << s.data << "|" << s.id << "}";
}

struct result {
  std::vector<seen> events;
  decode_error error = decode_error::none;
  bool operator==(const result&) const = default;
};

result decode_chunks(const std::vector<std::string_view>& chunks, decoder_limits limits = {}) {
  decoder d(limits);
  result r;
  for (std::string_view c : chunks) {
    r.error = d.feed(c, [&](const decoded_event& e) {
      r.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
    });
    if (r.error != decode_error::none) break;
  }
  return r;
}

result decode(std::string_view s, decoder_limits limits = {}) {
  return decode_chunks({s}, limits);
}

std::vector<seen> events(std::string_view s) {
  return decode(s).events;
}

TEST(SseDecoder, SpecExamples) {
  // WHATWG HTML §9.2.6 examples.
  EXPECT_EQ(events("data: YHOO\ndata: +2\ndata: 10\n\n"),
            (std::vector<seen>{{"message", "YHOO\n+2\n10", ""}}));
  EXPECT_EQ(events(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
                   "data:  third event\n"),
            (std::vector<seen>{{"message", "first event", "1"}, {"message", "second event", ""}}));
  EXPECT_EQ(events("data\n\ndata\ndata\n\ndata:"),
            (std::vector<seen>{{"message", "", ""}, {"message", "\n", ""}}));
  EXPECT_EQ(events("data:test\n\ndata: test\n\n"),
            (std::vector<seen>{{"message", "test", ""}, {"message", "test", ""}}));
}

TEST(SseDecoder, EveryLineEndStyleGivesTheSameEvents) {
  const std::string lf = "event: a\ndata: 1\ndata: 2\n\n: c\nid: 9\ndata: 3\n\n";
  auto with = [&](std::string_view end) {
    std::string s;
    for (char c : lf) {
      if (c == '\n') {
        s.append(end);
      } else {
        s.push_back(c);
      }
    }
    return s;
  };
  std::vector<seen> want = {{"a", "1\n2", ""}, {"message", "3", "9"}};
  EXPECT_EQ(events(lf), want);
  EXPECT_EQ(events(with("\r\n")), want);
  EXPECT_EQ(events(with("\r")), want);
  EXPECT_EQ(events("event: a\rdata: 1\r\ndata: 2\n\r\n: c\rid: 9\ndata: 3\r\r"), want);
  // LF CR is two line ends (a blank line), not one.
  EXPECT_EQ(events("data: x\n\r"), (std::vector<seen>{{"message", "x", ""}}));
}

TEST(SseDecoder, ByteOrderMark) {
  EXPECT_EQ(events("\xef\xbb\xbf"
                   "data: x\n\n"),
            (std::vector<seen>{{"message", "x", ""}}));
  // Only one BOM, only at the start: a second one makes the field name unknown.
  EXPECT_EQ(events("\xef\xbb\xbf\xef\xbb\xbf"
                   "data: x\n\n"),
            std::vector<seen>{});
  EXPECT_EQ(events("\xef\xbb"
                   "data: x\n\n"),
            std::vector<seen>{});  // not a BOM: field name
  EXPECT_EQ(events("data: \xef\xbb\xbf\n\n"), (std::vector<seen>{{"message", "\xef\xbb\xbf", ""}}));
  EXPECT_EQ(events("\xef\n\ndata: y\n\n"), (std::vector<seen>{{"message", "y", ""}}));
  // A BOM arriving one byte at a time.
  EXPECT_EQ(decode_chunks({"\xef", "\xbb", "\xbf", "data: x\n\n"}).events,
            (std::vector<seen>{{"message", "x", ""}}));
  EXPECT_EQ(decode_chunks({"\xef", "\xbb", "data: x\n\n"}).events, std::vector<seen>{});
}

TEST(SseDecoder, Fields) {
  // Field without a colon, one leading space stripped, unknown fields ignored.
  EXPECT_EQ(events("event\ndata:  two spaces\nfoo: bar\n\n"),
            (std::vector<seen>{{"message", " two spaces", ""}}));
  EXPECT_EQ(events("data:no space\n\n"), (std::vector<seen>{{"message", "no space", ""}}));
  EXPECT_EQ(events("data:\tx\n\n"), (std::vector<seen>{{"message", "\tx", ""}}));  // only SP
  EXPECT_EQ(events("Data: x\n\n"), std::vector<seen>{});  // field names are case-sensitive
  EXPECT_EQ(events("data: a:b: c\n\n"), (std::vector<seen>{{"message", "a:b: c", ""}}));
  // The type applies to one event; the id persists.
  EXPECT_EQ(events("event: add\nid: 5\ndata: x\n\ndata: y\n\n"),
            (std::vector<seen>{{"add", "x", "5"}, {"message", "y", "5"}}));
  // An event without data is not dispatched and its type is dropped.
  EXPECT_EQ(events("event: foo\n\ndata: x\n\n"), (std::vector<seen>{{"message", "x", ""}}));
  // An id containing NUL is ignored.
  EXPECT_EQ(events("id: 5\ndata: a\n\nid: x\0y\ndata: b\n\n"sv),
            (std::vector<seen>{{"message", "a", "5"}, {"message", "b", "5"}}));
  // An empty id resets.
  EXPECT_EQ(events("id: 5\ndata: a\n\nid\ndata: b\n\n"),
            (std::vector<seen>{{"message", "a", "5"}, {"message", "b", ""}}));
  // An incomplete event at the end of the stream is discarded.
  EXPECT_EQ(events("data: a\n\ndata: b\n"), (std::vector<seen>{{"message", "a", ""}}));
}

TEST(SseDecoder, LastEventIdUpdatesOnBlankLineEvenWithoutData) {
  decoder d;
  EXPECT_EQ(d.feed("id: 3\n", [](const decoded_event&) { FAIL(); }), decode_error::none);
  EXPECT_EQ(d.last_event_id(), "");  // not yet: only a dispatch sets the ID string
  EXPECT_EQ(d.feed("\n", [](const decoded_event&) { FAIL(); }), decode_error::none);
  EXPECT_EQ(d.last_event_id(), "3");
}

TEST(SseDecoder, Retry) {
  decoder d;
  auto none = [](const decoded_event&) {};
  EXPECT_FALSE(d.retry_ms());
  d.feed("retry: 1500\n", none);
  EXPECT_EQ(d.retry_ms(), 1500u);
  for (std::string_view bad :
       {"retry: 10a\n", "retry: \n", "retry: -1\n", "retry:  5\n", "retry: 1.5\n", "retry\n"}) {
    d.feed(bad, none);
    EXPECT_EQ(d.retry_ms(), 1500u) << bad;
  }
  d.feed("retry:0\n", none);
  EXPECT_EQ(d.retry_ms(), 0u);
  d.feed("retry: 99999999999999999999999999\n", none);
  EXPECT_EQ(d.retry_ms(), UINT64_MAX);
}

TEST(SseDecoder, OpenAiChunkStream) {
  const std::string stream =
      "data: "
      "{\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"
      "\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      ": keep-alive\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  auto got = events(stream);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1].data, "{\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}");
  EXPECT_FALSE(is_openai_done(got[2].data));
  EXPECT_TRUE(is_openai_done(got[3].data));
  EXPECT_FALSE(is_openai_done("[DONE] "));
  EXPECT_FALSE(is_openai_done("[done]"));
}

const char* const split_corpus[] = {
    "\xef\xbb\xbf"
    "data: a\r\n\r\nevent: e\rdata: b\r\rid: 1\ndata:\n\n",
    "data: x\r\n\r\ndata: y\r\r\ndata: z\n\r\n",
    ": comment\r\n\r\nretry: 77\r\ndata:  spaced\r\n\r\nid\r\ndata\r\n\r\n",
    "\xef\xbb\n\ndata: partial bom\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
    "\"delta\":\"Hello\"}\n\n",
};

// Any split of the input into two or three chunks, and byte-at-a-time feeding, decodes to the
// same events as the whole input.
TEST(SseDecoder, SplitAtEveryByteDecodesIdentically) {
  for (std::string_view s : split_corpus) {
    result whole = decode(s);
    ASSERT_FALSE(whole.events.empty());
    for (size_t i = 0; i <= s.size(); ++i) {
      ASSERT_EQ(decode_chunks({s.substr(0, i), s.substr(i)}), whole) << i;
      for (size_t j = i; j <= s.size(); ++j) {
        ASSERT_EQ(decode_chunks({s.substr(0, i), s.substr(i, j - i), s.substr(j)}), whole)
            << i << ' ' << j;
      }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
    ASSERT_EQ(decode_chunks(bytes), whole);
  }
}

TEST(SseDecoder, RoundTripsEncodedEvents) {
  std::mt19937 rng(7);
  const char alphabet[] = "ab \r\n:\xc3\xa9";
  for (int round = 0; round < 2000; ++round) {
    std::string data;
    for (size_t k = rng() % 20; k > 0; --k) data.push_back(alphabet[rng() % 8]);
    std::string id = std::to_string(rng() % 1000);
    event e{.id = id, .type = round % 2 ? "t" : "", .data = data};
    std::string wire = encoded(e);
    std::string want;  // every line end becomes LF
    for (size_t i = 0; i < data.size(); ++i) {
      if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') continue;
      want.push_back(data[i] == '\r' ? '\n' : data[i]);
    }
    ASSERT_EQ(events(wire), (std::vector<seen>{{round % 2 ? "t" : "message", want, id}})) << round;
  }
}

TEST(SseDecoder, LineLimit) {
  decoder_limits limits{.line_bytes_max = 16, .event_bytes_max = 1024};
  std::string ok = "data: " + std::string(10, 'x');  // exactly 16 bytes
  EXPECT_EQ(decode(ok + "\n\n", limits).error, decode_error::none);
  std::string bad = "data: " + std::string(11, 'x');
  EXPECT_EQ(decode(bad + "\n\n", limits).error, decode_error::line_too_long);
  EXPECT_EQ(decode(bad, limits).error, decode_error::line_too_long);  // no line end needed
  for (size_t i = 0; i <= bad.size(); ++i) {
    std::string_view s = bad;
    EXPECT_EQ(decode_chunks({s.substr(0, i), s.substr(i)}, limits).error,
              decode_error::line_too_long);
  }
  // Comments count too: a hostile upstream cannot hide an endless line in a comment.
  EXPECT_EQ(decode(":" + std::string(100, 'c'), limits).error, decode_error::line_too_long);
}

TEST(SseDecoder, EventLimitAndStickyError) {
  decoder_limits limits{.line_bytes_max = 64, .event_bytes_max = 8};
  EXPECT_EQ(decode("data: 1234567\n\n", limits).events.size(), 1u);  // 7 + LF = 8
  EXPECT_EQ(decode("data: 12345678\n\n", limits).error, decode_error::event_too_large);
  EXPECT_EQ(decode("data: 1234\ndata: 123\n\n", limits).error, decode_error::event_too_large);
  // Each event is measured alone.
  EXPECT_EQ(decode("data: 1234\n\ndata: 1234\n\ndata: 1234\n\n", limits).events.size(), 3u);
  decoder d(limits);
  int n = 0;
  auto count = [&](const decoded_event&) { ++n; };
  EXPECT_EQ(d.feed("data: a\n\ndata: 123456789\n\ndata: b\n\n", count),
            decode_error::event_too_large);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(d.feed("data: c\n\n", count), decode_error::event_too_large);
  EXPECT_EQ(n, 1);
  d.restart();
  EXPECT_EQ(d.feed("data: c\n\n", count), decode_error::none);
  EXPECT_EQ(n, 2);
}

TEST(SseDecoder, RestartKeepsLastEventIdAndExpectsBom) {
  decoder d;
  std::vector<std::string> ids;
  auto on = [&](const decoded_event& e) { ids.emplace_back(e.id); };
  d.feed("id: 41\ndata: a\n\nid: 42\ndata: partial", on);
  d.restart();
  EXPECT_EQ(d.last_event_id(), "41");
  d.feed(
      "\xef\xbb\xbf"
      "data: b\n\n",
      on);
  EXPECT_EQ(ids, (std::vector<std::string>{"41", ""}));  // a new stream's ID buffer is empty
}

TEST(SseDecoder, NextReportsOneEventAtATime) {
  decoder d;
  std::string_view in = "data: a\n\ndata: b\n\ndata: c";
  ASSERT_EQ(d.next(in), decoder::step::event);
  EXPECT_EQ(d.current().data, "a");
  EXPECT_EQ(in, "data: b\n\ndata: c");
  ASSERT_EQ(d.next(in), decoder::step::event);
  EXPECT_EQ(d.current().data, "b");
  EXPECT_EQ(d.next(in), decoder::step::need_more);
  EXPECT_TRUE(in.empty());
  in = "\n\n";
  ASSERT_EQ(d.next(in), decoder::step::event);
  EXPECT_EQ(d.current().data, "c");
}

TEST(SseDecoder, HostileInputStaysBounded) {
  std::mt19937 rng(11);
  decoder_limits limits{.line_bytes_max = 256, .event_bytes_max = 1024};
  const char alphabet[] = "data:\n\r :idretryevent\xef\xbb\xbf\0x";
  for (int round = 0; round < 300; ++round) {
    decoder d(limits);
    for (int chunk = 0; chunk < 50; ++chunk) {
      std::string s;
      for (size_t k = rng() % 300; k > 0; --k) s.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
      size_t n = 0;
      decode_error e = d.feed(s, [&](const decoded_event& ev) {
        ++n;
        EXPECT_LE(ev.data.size(), limits.event_bytes_max);
      });
      if (e != decode_error::none) break;
    }
  }
}

TEST(SseDecoder, NeverReadsPastTheEnd) {
  test::guarded_input g;
  for (std::string s : {std::string("data: x"), std::string("data: x\r"), std::string("\xef"),
                        std::string("data: ") + std::string(100, 'y'), std::string("\n"),
                        std::string("data: z\n\n")}) {
    decoder d;
    std::string_view p = g.place(s);
    EXPECT_EQ(d.feed(p, [](const decoded_event&) {}), decode_error::none);
  }
  // The encoder's line scan too.
  std::string_view data = g.place("abc\r");
  EXPECT_EQ(encoded({.data = data}), "data: abc\ndata: \n\n");
}

}  // namespace
}  // namespace rc::sse
