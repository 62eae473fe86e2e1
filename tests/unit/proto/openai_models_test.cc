// GET /v1/models bodies.
#include "proto/openai_models.h"

#include <gtest/gtest.h>

#include "openai_test_util.h"

namespace rc::openai {
namespace {

TEST(OpenaiModels, ListAndSingle) {
  model_entry models[] = {{"mock-1", 1700000000, "ringcast"}, {"gpt-x", 1, "openai"}};
  byte_buffer b;
  write_model_list(b, models);
  EXPECT_EQ(b.view(),
            R"({"object":"list","data":[{"id":"mock-1","object":"model","created":1700000000,)"
            R"("owned_by":"ringcast"},{"id":"gpt-x","object":"model","created":1,)"
            R"("owned_by":"openai"}]})");
  test::expect_valid_json(b.view());
  b.clear();
  write_model_list(b, {});
  EXPECT_EQ(b.view(), R"({"object":"list","data":[]})");
  b.clear();
  write_model(b, models[0]);
  EXPECT_EQ(b.view(),
            R"({"id":"mock-1","object":"model","created":1700000000,"owned_by":"ringcast"})");
}

}  // namespace
}  // namespace rc::openai
