#include "api/raw_json.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(RawMember, KeepsTheValueBytesExactly) {
  const std::string_view text = R"({"topic":"/a", "data" : {"b": 1.50, "c":[1, 2]} ,"x":0})";
  EXPECT_EQ(raw_member(text, "data"), R"({"b": 1.50, "c":[1, 2]})");
  EXPECT_EQ(raw_member(text, "x"), "0");
  EXPECT_EQ(raw_member(text, "missing"), std::nullopt);
}

TEST(RawMember, RepeatedKeyGivesTheLastLikeBoostJson) {
  EXPECT_EQ(raw_member(R"({"data":{"a":1},"data":5})", "data"), "5");
}

TEST(RawMember, EscapedKeysMatchByTheirDecodedForm) {
  EXPECT_EQ(raw_member(R"({"d\u0061ta":{"a":1}})", "data"), R"({"a":1})");
  // The key `\` written escaped must not be confused with the text `"\"` inside another key.
  const std::string_view tricky = R"({"\\":"a","\"ta":[{}]})";
  EXPECT_EQ(raw_member(tricky, "\\"), R"("a")");
  EXPECT_EQ(raw_member(tricky, "\"ta"), "[{}]");
}

TEST(RawArrayElements, SplitsTopLevelOnly) {
  const auto e = raw_array_elements(R"( [ {"a":[1,2]} , "x,]" ,3 ] )");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], R"({"a":[1,2]})");
  EXPECT_EQ(e[1], R"("x,]")");
  EXPECT_EQ(e[2], "3");
  EXPECT_TRUE(raw_array_elements("[]").empty());
  EXPECT_TRUE(raw_array_elements("{}").empty());
}

}  // namespace
}  // namespace herald
