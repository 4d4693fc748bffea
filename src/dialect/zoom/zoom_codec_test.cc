#include "dialect/zoom/zoom_codec.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

// Unit tests of the Zoom wire: the client frame decoder, the envelope, the webhook body of
// zoom.md §4.3 (byte-exact data, payload form) and the socket URL's query values.
namespace herald::zoom {
namespace {

namespace json = boost::json;

std::shared_ptr<event> make_event(std::string data, std::string type = "meeting.started") {
  auto e = std::make_shared<event>();
  e->id = "evt_1";
  e->offset = 7;
  e->topic = "/meetings/1";
  e->type = std::move(type);
  e->tenant = "acme";
  e->time_ms = 1772359201000;
  e->data = std::move(data);
  return e;
}

TEST(zoom_codec, heartbeat_as_json_or_bare_text) {
  EXPECT_EQ(decode_client_frame(R"({"module":"heartbeat"})"), client_module::heartbeat);
  EXPECT_EQ(decode_client_frame(R"({"extra":1,"module":"heartbeat","x":[1]})"),
            client_module::heartbeat);
  EXPECT_EQ(decode_client_frame("heartbeat"), client_module::heartbeat);
  EXPECT_EQ(decode_client_frame(" heartbeat\n"), client_module::heartbeat);
}

TEST(zoom_codec, everything_else_is_ignored) {
  EXPECT_EQ(decode_client_frame(R"({"module":"subscribe"})"), client_module::ignored);
  EXPECT_EQ(decode_client_frame(R"({"module":1})"), client_module::ignored);
  EXPECT_EQ(decode_client_frame(R"({"Module":"heartbeat"})"), client_module::ignored);
  EXPECT_EQ(decode_client_frame("heartbeats"), client_module::ignored);
  EXPECT_EQ(decode_client_frame("{not json"), client_module::ignored);
  EXPECT_EQ(decode_client_frame(R"(["heartbeat"])"), client_module::ignored);
  EXPECT_EQ(decode_client_frame(""), client_module::ignored);
  EXPECT_EQ(decode_client_frame(std::string(100, '[')), client_module::ignored);
}

TEST(zoom_codec, envelope_keys_in_order_and_content_a_string) {
  EXPECT_EQ(envelope("build_connection", true, "success"),
            R"({"module":"build_connection","success":true,"content":"success","header":{}})");
  EXPECT_EQ(
      envelope("build_connection", false, "Invalid \"Token\""),
      R"({"module":"build_connection","success":false,"content":"Invalid \"Token\"","header":{}})");
  EXPECT_EQ(std::string(heartbeat_reply),
            R"({"module":"heartbeat","success":true,"content":"live","header":{}})");
}

TEST(zoom_codec, webhook_body_is_the_spec_example) {
  auto e = make_event(R"({"id":85012345678,"topic":"Standup"})");
  EXPECT_EQ(
      webhook_body(*e),
      R"({"event":"meeting.started","event_ts":1772359201000,"payload":{"account_id":"acme","object":{"id":85012345678,"topic":"Standup"}}})");
  // The frame content is that text as a JSON string: parsing twice gives the document back.
  const std::string frame =
      std::string(message_head) + quoted_webhook_body(*e) + R"(,"header":{}})";
  auto outer = json::parse(frame).as_object();
  ASSERT_TRUE(outer.at("content").is_string());
  EXPECT_EQ(std::string(outer.at("content").as_string()), webhook_body(*e));
}

TEST(zoom_codec, data_is_byte_exact) {
  auto e = make_event(R"({ "price" : 1.50, "name":"caf\u00e9", "n":[1 ,2] })");
  const std::string body = webhook_body(*e);
  EXPECT_NE(body.find(R"("object":{ "price" : 1.50, "name":"caf\u00e9", "n":[1 ,2] })"),
            std::string::npos)
      << body;
}

TEST(zoom_codec, payload_form_keeps_extras_in_order_and_drops_account_id) {
  auto e = make_event(
      R"({"operator":"a@b.c","account_id":"spoofed","object":{"id":1},"old_object":{"id":0}})");
  EXPECT_EQ(
      webhook_body(*e),
      R"({"event":"meeting.started","event_ts":1772359201000,"payload":{"account_id":"acme","operator":"a@b.c","object":{"id":1},"old_object":{"id":0}}})");
}

TEST(zoom_codec, object_that_is_not_an_object_keeps_the_plain_form) {
  auto e = make_event(R"({"object":"text","x":1})");
  EXPECT_EQ(
      webhook_body(*e),
      R"({"event":"meeting.started","event_ts":1772359201000,"payload":{"account_id":"acme","object":{"object":"text","x":1}}})");
}

TEST(zoom_codec, escaped_keys_are_read_decoded) {
  auto e = make_event(R"({"\u006fbject":{"id":2},"s":"}{\"]"})");
  EXPECT_EQ(
      webhook_body(*e),
      R"({"event":"meeting.started","event_ts":1772359201000,"payload":{"account_id":"acme","\u006fbject":{"id":2},"s":"}{\"]"}})");
}

TEST(zoom_codec, object_members_refuses_broken_text) {
  EXPECT_FALSE(object_members("{\"a\":1").has_value());
  EXPECT_FALSE(object_members("{\"a\" 1}").has_value());
  EXPECT_FALSE(object_members("[1]").has_value());
  EXPECT_FALSE(object_members("{\"a\":\"x}").has_value());
  auto ok = object_members(R"({"a":{"b":[1,"]"]},"c":null})");
  ASSERT_TRUE(ok.has_value());
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].value, R"({"b":[1,"]"]})");
  EXPECT_EQ((*ok)[1].member, R"("c":null)");
  EXPECT_TRUE(object_members("{}")->empty());
}

TEST(zoom_codec, query_values_are_percent_decoded_and_plus_is_kept) {
  const std::string q = "subscriptionId=ab-_C%2Bd&access_token=x.y+z&empty=&flag";
  EXPECT_EQ(query_value(q, "subscriptionId"), "ab-_C+d");
  EXPECT_EQ(query_value(q, "access_token"), "x.y+z");
  EXPECT_EQ(query_value(q, "empty"), "");
  EXPECT_EQ(query_value(q, "flag"), "");
  EXPECT_EQ(query_value(q, "missing"), std::nullopt);
  EXPECT_EQ(query_value("a=%zz%4", "a"), "%zz%4");  // malformed escapes kept as written
}

}  // namespace
}  // namespace herald::zoom
