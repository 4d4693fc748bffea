#include "dialect/native/native_codec.h"

#include <gtest/gtest.h>

// The native decoder: every message kind, and a refusal that names the field for each way a
// message can be wrong.
namespace herald {
namespace {

TEST(native_codec, auth_with_resume_and_last_seq) {
  auto d =
      decode_native(R"({"type":"auth","id":7,"token":"t","resume":"ses_a.b","last_seq":5})", 16);
  ASSERT_FALSE(d.err);
  EXPECT_EQ(d.msg.type, native_msg::kind::auth);
  EXPECT_EQ(d.msg.id, "7");
  EXPECT_EQ(d.msg.token, "t");
  EXPECT_EQ(d.msg.resume, "ses_a.b");
  EXPECT_EQ(d.msg.last_seq, 5u);
}

TEST(native_codec, subscribe_reads_filters_and_snapshot) {
  auto d = decode_native(
      R"({"type":"subscribe","id":"s","snapshot":true,"filters":[{"topic":"/a/*","types":["x"]}]})",
      16);
  ASSERT_FALSE(d.err);
  EXPECT_EQ(d.msg.type, native_msg::kind::subscribe);
  EXPECT_TRUE(d.msg.snapshot);
  ASSERT_EQ(d.msg.filters.size(), 1u);
  EXPECT_EQ(d.msg.filters[0].topic, "/a/*");
}

TEST(native_codec, request_keeps_method_path_and_body) {
  auto d = decode_native(
      R"({"type":"request","id":"r","method":"POST","path":"/v1/events","body":{"a":1}})", 16);
  ASSERT_FALSE(d.err);
  EXPECT_EQ(d.msg.type, native_msg::kind::request);
  EXPECT_EQ(d.msg.method, "POST");
  EXPECT_EQ(d.msg.path, "/v1/events");
  EXPECT_NE(d.msg.body.find("\"a\""), std::string::npos);
}

TEST(native_codec, refusals_name_the_problem_and_keep_the_id) {
  struct bad {
    const char* text;
    errc code;
    const char* names;
  };
  const bad cases[] = {
      {"{", errc::bad_json, "JSON"},
      {"[1]", errc::bad_message, "object"},
      {R"({"id":"x"})", errc::bad_message, "type"},
      {R"({"type":"auth","id":"x","last_seq":-1})", errc::bad_message, "last_seq"},
      {R"({"type":"auth","id":"x","token":5})", errc::bad_message, "token"},
      {R"({"type":"subscribe","id":"x"})", errc::bad_message, "filters"},
      {R"({"type":"subscribe","id":"x","filters":[]})", errc::invalid_filter, "filters"},
  };
  for (const auto& c : cases) {
    auto d = decode_native(c.text, 16);
    ASSERT_TRUE(d.err) << c.text;
    EXPECT_EQ(d.err->code, c.code) << c.text;
    EXPECT_NE(d.err->message.find(c.names), std::string::npos) << c.text << ": " << d.err->message;
    if (std::string_view(c.text).find("\"id\":\"x\"") != std::string_view::npos) {
      EXPECT_EQ(d.msg.id, "x");
    }
  }
}

TEST(native_codec, max_filters_bounds_a_subscribe_before_compiling) {
  std::string many = R"({"type":"subscribe","id":"x","filters":[)";
  for (int i = 0; i < 5; ++i) many += std::string(i ? "," : "") + R"({"topic":"/a"})";
  many += "]}";
  EXPECT_FALSE(decode_native(many, 5).err);
  auto d = decode_native(many, 4);
  ASSERT_TRUE(d.err);
  EXPECT_EQ(d.err->code, errc::invalid_filter);
}

}  // namespace
}  // namespace herald
