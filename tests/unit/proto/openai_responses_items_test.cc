// Stored-response route bodies: input item pages, deletion, not found.
#include "proto/openai_responses_items.h"

#include <gtest/gtest.h>

#include <vector>

#include "openai_test_util.h"

namespace rc::openai {
namespace {

std::vector<input_item> five_messages() {
  std::vector<input_item> items(5);
  for (size_t i = 0; i < items.size(); ++i) {
    items[i].id = std::string("msg_") + char('0' + i);
    items[i].text = std::string("t") + char('0' + i);
  }
  return items;
}

std::string page(const std::vector<input_item>& items, const item_page_request& p) {
  byte_buffer b;
  EXPECT_FALSE(write_input_item_page(b, items, p).has_value());
  test::expect_valid_json(b.view());
  return std::string(b.view());
}

TEST(OpenaiResponsesItems, ItemShapes) {
  std::vector<input_item> items(4);
  items[0].id = "msg_a";
  items[0].text = "hi";
  items[1].id = "msg_b";
  items[1].role = message_role::assistant;
  items[1].text = "yo";
  items[2].type = input_item_type::function_call;
  items[2].id = "fc_1";
  items[2].call_id = "call_1";
  items[2].name = "add";
  items[2].arguments = R"({"a":1})";
  items[3].type = input_item_type::function_call_output;
  items[3].id = "fco_1";
  items[3].call_id = "call_1";
  items[3].output = std::string(1, '2');  // (a literal trips GCC 12 -Wrestrict)
  item_page_request asc;
  asc.ascending = true;
  EXPECT_EQ(
      page(items, asc),
      R"({"object":"list","data":[)"
      R"({"id":"msg_a","type":"message","role":"user","content":[{"type":"input_text","text":"hi"}],"status":"completed"},)"
      R"({"id":"msg_b","type":"message","role":"assistant","content":[{"type":"output_text","text":"yo","annotations":[]}],"status":"completed"},)"
      R"({"id":"fc_1","type":"function_call","call_id":"call_1","name":"add","arguments":"{\"a\":1}","status":"completed"},)"
      R"({"id":"fco_1","type":"function_call_output","call_id":"call_1","output":"2","status":"completed"})"
      R"(],"first_id":"msg_a","last_id":"fco_1","has_more":false})");
}

TEST(OpenaiResponsesItems, PagesBothWays) {
  auto items = five_messages();
  item_page_request p;
  p.limit = 2;
  EXPECT_NE(page(items, p).find(R"("first_id":"msg_4","last_id":"msg_3","has_more":true)"),
            std::string::npos);
  p.after = "msg_3";
  EXPECT_NE(page(items, p).find(R"("first_id":"msg_2","last_id":"msg_1","has_more":true)"),
            std::string::npos);
  p.after = "msg_1";
  EXPECT_NE(page(items, p).find(R"("first_id":"msg_0","last_id":"msg_0","has_more":false)"),
            std::string::npos);
  p.after = "msg_0";
  EXPECT_EQ(page(items, p),
            R"({"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false})");
  p.ascending = true;
  p.after = "msg_2";
  EXPECT_NE(page(items, p).find(R"("first_id":"msg_3","last_id":"msg_4","has_more":false)"),
            std::string::npos);
  EXPECT_EQ(page({}, item_page_request{}),
            R"({"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false})");
}

TEST(OpenaiResponsesItems, UnknownAfterIs400) {
  auto items = five_messages();
  item_page_request p;
  p.after = "msg_9";
  byte_buffer b;
  auto err = write_input_item_page(b, items, p);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->status, 400);
  EXPECT_EQ(err->param, "after");
}

TEST(OpenaiResponsesItems, PageParameters) {
  item_page_request p;
  EXPECT_FALSE(parse_item_page_request(std::nullopt, std::nullopt, std::nullopt, p));
  EXPECT_EQ(p.limit, 20u);
  EXPECT_FALSE(p.ascending);
  EXPECT_FALSE(parse_item_page_request("msg_1", "100", "asc", p));
  EXPECT_EQ(p.limit, 100u);
  EXPECT_TRUE(p.ascending);
  EXPECT_EQ(p.after, "msg_1");
  for (std::string_view bad : {"0", "101", "", "abc", "-1", "1.5", "99999999999"}) {
    auto err = parse_item_page_request(std::nullopt, bad, std::nullopt, p);
    ASSERT_TRUE(err.has_value()) << bad;
    EXPECT_EQ(err->param, "limit");
  }
  for (std::string_view bad : {"", "ASC", "up"}) {
    auto err = parse_item_page_request(std::nullopt, std::nullopt, bad, p);
    ASSERT_TRUE(err.has_value()) << bad;
    EXPECT_EQ(err->param, "order");
  }
}

TEST(OpenaiResponsesItems, DeletedAndNotFound) {
  byte_buffer b;
  write_response_deleted(b, "resp_0_x");
  EXPECT_EQ(b.view(), R"({"id":"resp_0_x","object":"response","deleted":true})");
  api_error e = response_not_found("resp_0_x");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.message, "Response with id 'resp_0_x' not found.");
  EXPECT_FALSE(e.param.has_value());
  EXPECT_FALSE(e.code.has_value());
}

}  // namespace
}  // namespace rc::openai
