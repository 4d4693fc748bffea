// Unit tests of the smsgw wire as pure functions: the auth frame's classification (§2.2), the
// event frames (§2.3, §4.2), records (§5), the publish rules (§4.1) and the REST helpers.
#include "dialect/smsgw/smsgw_codec.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "core/clock.h"

namespace herald::smsgw {
namespace {

namespace json = boost::json;
using k = auth_frame::kind;

std::shared_ptr<event> make_event(std::string type, std::string data, std::string app = "") {
  auto e = std::make_shared<event>();
  e->id = "evt_1";
  e->offset = 1;
  e->topic = "/sms/t1/status";
  e->type = std::move(type);
  e->tenant = "t1";
  e->app = std::move(app);
  e->subject = "msg_a1b2c3d4e5f6";
  e->time_ms = *parse_rfc3339_ms("2026-03-01T10:00:01Z");
  e->data = std::move(data);
  e->retain = true;
  return e;
}

event_draft draft(std::string type, std::string data, std::string app = "app_1") {
  event_draft d;
  d.topic = "/sms/t1/status";
  d.type = std::move(type);
  d.tenant = "t1";
  d.app = std::move(app);
  d.subject = "msg_abc123";
  d.retain = true;
  d.data = std::move(data);
  return d;
}

// Each row of §2.2's table that the codec decides (the credential rows are the socket's).
TEST(smsgw_codec, auth_frame_is_classified_as_the_error_table_says) {
  EXPECT_EQ(decode_auth("{nope", false).k, k::invalid_json);
  EXPECT_EQ(decode_auth(R"({"type":"auth","apiKey":"x"})", true).k, k::invalid_json);  // binary
  EXPECT_EQ(decode_auth("[1,2]", false).k, k::not_auth);
  EXPECT_EQ(decode_auth(R"({"type":"hello"})", false).k, k::not_auth);
  EXPECT_EQ(decode_auth(R"("auth")", false).k, k::not_auth);
  EXPECT_EQ(decode_auth(R"({"type":"auth"})", false).k, k::no_credential);
  EXPECT_EQ(decode_auth(R"({"type":"auth","apiKey":5})", false).k, k::no_credential);
  auto a = decode_auth(R"({"type":"auth","apiKey":"sgw_1","token":"wst_2"})", false);
  EXPECT_EQ(a.k, k::api_key);  // apiKey wins when it is a string
  EXPECT_EQ(a.credential, "sgw_1");
  auto t = decode_auth(R"({"type":"auth","apiKey":null,"token":"wst_2"})", false);
  EXPECT_EQ(t.k, k::token);
  EXPECT_EQ(t.credential, "wst_2");
}

TEST(smsgw_codec, only_a_ping_object_is_a_ping) {
  EXPECT_TRUE(is_ping(R"({"type":"ping"})", false));
  EXPECT_FALSE(is_ping(R"({"type":"ping"})", true));
  EXPECT_FALSE(is_ping(R"({"type":"pong"})", false));
  EXPECT_FALSE(is_ping("ping", false));
}

// The exact bytes of §2.3's examples: key order included, nothing extra.
TEST(smsgw_codec, status_frame_has_optional_fields_only_when_non_empty_strings) {
  auto e = make_event("sms.status", R"({"status":"sent","rcMessageId":"900001","error":""})",
                      "app_7f3c");
  EXPECT_EQ(render_event(*e),
            R"({"type":"sms_status","messageId":"msg_a1b2c3d4e5f6","appId":"app_7f3c",)"
            R"("tenantId":"t1","status":"sent","rcMessageId":"900001",)"
            R"("timestamp":"2026-03-01T10:00:01.000Z"})");
  auto f = make_event("sms.status",
                      R"({"status":"failed","error":"Number not SMS-enabled",)"
                      R"("rcMessageId":null})",
                      "app_7f3c");
  EXPECT_EQ(render_event(*f),
            R"({"type":"sms_status","messageId":"msg_a1b2c3d4e5f6","appId":"app_7f3c",)"
            R"("tenantId":"t1","status":"failed","error":"Number not SMS-enabled",)"
            R"("timestamp":"2026-03-01T10:00:01.000Z"})");
}

// Envelope fields win: a `messageId` inside data never replaces the subject.
TEST(smsgw_codec, inbound_frame_always_has_rc_message_id_and_never_app_id) {
  auto e = make_event("sms.inbound",
                      R"({"from":"+15559876543","to":"+15551234567",)"
                      R"("body":"Yes, I confirm","messageId":"spoof"})",
                      "app_x");
  EXPECT_EQ(render_event(*e),
            R"({"type":"sms_inbound","messageId":"msg_a1b2c3d4e5f6","from":"+15559876543",)"
            R"("to":"+15551234567","body":"Yes, I confirm","rcMessageId":null,"tenantId":"t1",)"
            R"("timestamp":"2026-03-01T10:00:01.000Z"})");
  EXPECT_TRUE(render_event(*make_event("probe", "{}")).empty());
}

TEST(smsgw_codec, record_has_every_key_and_nulls_for_absent_fields) {
  auto e = make_event("sms.status", R"({"status":"sent","to":"+15551234567"})", "app_1");
  auto r = json::parse(render_record(*e, e->time_ms - 1000)).as_object();
  EXPECT_EQ(r.size(), 13u);
  EXPECT_EQ(r.at("direction").as_string(), "outbound");
  EXPECT_EQ(r.at("status").as_string(), "sent");
  EXPECT_TRUE(r.at("from").is_null());
  EXPECT_TRUE(r.at("error").is_null());
  EXPECT_EQ(r.at("createdAt").as_string(), "2026-03-01T10:00:00.000Z");
  EXPECT_EQ(r.at("updatedAt").as_string(), "2026-03-01T10:00:01.000Z");
  auto in = make_event("sms.inbound", R"({"from":"+1","to":"+2","body":"b","error":"x"})");
  auto ri = json::parse(render_record(*in, in->time_ms)).as_object();
  EXPECT_EQ(ri.at("direction").as_string(), "inbound");
  EXPECT_EQ(ri.at("status").as_string(), "received");
  EXPECT_TRUE(ri.at("error").is_null());
  EXPECT_TRUE(ri.at("appId").is_null());
}

// §4.1: every rule the validator applies without the directory, each naming its field.
TEST(smsgw_codec, publish_rules_name_the_field) {
  EXPECT_TRUE(check_draft(draft("sms.status", R"({"status":"sent"})")));
  EXPECT_TRUE(check_draft(draft("other", "{}", "")));  // not reserved: not ours
  auto bad = [](const event_draft& d) {
    status s = check_draft(d);
    EXPECT_FALSE(s);
    return s ? std::string() : s.err().message;
  };
  auto d = draft("sms.status", R"({"status":"sent"})");
  d.subject = "abc";
  EXPECT_EQ(bad(d).rfind("subject:", 0), 0u);
  d = draft("sms.status", R"({"status":"sent"})");
  d.retain = false;
  EXPECT_EQ(bad(d).rfind("retain:", 0), 0u);
  EXPECT_EQ(bad(draft("sms.status", R"({"status":"sent"})", "")).rfind("app:", 0), 0u);
  EXPECT_EQ(bad(draft("sms.status", R"({"status":"delivered"})")).rfind("data.status", 0), 0u);
  EXPECT_EQ(bad(draft("sms.status", R"({"status":"failed"})")).rfind("data.error", 0), 0u);
  EXPECT_EQ(bad(draft("sms.status", R"({"status":"sent","userId":5})")).rfind("data.userId", 0),
            0u);
  EXPECT_EQ(bad(draft("sms.inbound", R"({"from":"a","to":"b"})", "")).rfind("data.body", 0), 0u);
  EXPECT_TRUE(check_draft(draft("sms.inbound", R"({"from":"a","to":"b","body":"c"})", "")));
}

TEST(smsgw_codec, ids_numbers_lengths_and_dates) {
  EXPECT_TRUE(valid_message_id("msg_a1b2c3d4e5f6"));
  EXPECT_FALSE(valid_message_id("msg_"));
  EXPECT_FALSE(valid_message_id("msg_a-b"));
  EXPECT_FALSE(valid_message_id("msg_" + std::string(65, 'a')));
  EXPECT_TRUE(valid_message_id("msg_" + std::string(64, 'a')));
  EXPECT_TRUE(valid_e164("+15551234567"));
  EXPECT_FALSE(valid_e164("15551234567"));
  EXPECT_FALSE(valid_e164("+05551234567"));
  EXPECT_FALSE(valid_e164("+1234567"));
  EXPECT_EQ(code_points("h\xC3\xA9llo"), 5u);
  EXPECT_EQ(parse_date("2026-03-01"), parse_rfc3339_ms("2026-03-01T00:00:00Z"));
  EXPECT_TRUE(parse_date("2026-03-01T10:00:00.5Z"));
  EXPECT_FALSE(parse_date("yesterday"));
  const std::string id = new_message_id();
  EXPECT_EQ(id.size(), 16u);
  EXPECT_TRUE(valid_message_id(id));
}

TEST(smsgw_codec, cursor_round_trips_and_garbage_is_refused) {
  cursor c{123, "t1", "msg_x", "abcd"};
  auto back = decode_cursor(encode_cursor(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->created_ms, 123);
  EXPECT_EQ(back->tenant, "t1");
  EXPECT_EQ(back->message_id, "msg_x");
  EXPECT_EQ(back->query_hash, "abcd");
  EXPECT_FALSE(decode_cursor("!!"));
  EXPECT_FALSE(decode_cursor("e30"));  // "{}"
}

}  // namespace
}  // namespace herald::smsgw
