// Unit tests of the RingCentral codec: client frames, server frames, filter normalization,
// subscription paths and the wsc token.
#include "dialect/ringcentral/rc_codec.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace herald::rc {
namespace json = boost::json;
namespace {

principal user(std::string tenant, std::string ext, bool admin = false) {
  principal p;
  p.kind = principal_kind::user;
  p.tenant = std::move(tenant);
  p.user_id = "usr_1";
  p.app_id = "app_1";
  p.extension_id = std::move(ext);
  p.user_admin = admin;
  p.scopes = scope_subscribe | scope_history;
  return p;
}

principal app(std::string tenant, role r = role::app) {
  principal p;
  p.kind = principal_kind::app;
  p.tenant = std::move(tenant);
  p.app_id = "app_1";
  p.app_role = r;
  p.scopes = scope_subscribe | scope_history;
  return p;
}

json::value parse(const std::string& s) { return json::parse(s); }

TEST(RcFrame, ClientRequestWithBodyKeepsBytes) {
  client_frame f;
  const std::string text =
      R"([{"type":"ClientRequest","messageId":"eQUK+a/0","method":"post","path":"/restapi/v1.0/subscription/?x=1","headers":{"X-User-Agent":"t"},"query":{"a":"b c","n":[1,2]}},{"eventFilters": ["/a"] ,"n":1.50}])";
  ASSERT_TRUE(parse_client_frame(text, f).ok());
  EXPECT_EQ(f.type, "ClientRequest");
  EXPECT_EQ(f.message_id, "eQUK+a/0");
  EXPECT_EQ(f.method, "POST");
  EXPECT_EQ(f.path, "/restapi/v1.0/subscription/");
  EXPECT_EQ(f.query, "x=1&a=b%20c&n=1&n=2");
  ASSERT_TRUE(f.body.has_value());
  EXPECT_EQ(*f.body, R"({"eventFilters": ["/a"] ,"n":1.50})");
}

TEST(RcFrame, BodylessForms) {
  for (const char* text :
       {R"([{"type":"ClientRequest","messageId":"1","method":"GET","path":"/x"}])",
        R"([{"type":"ClientRequest","messageId":"1","method":"GET","path":"/x"},null])",
        R"([{"type":"ClientRequest","messageId":"1","method":"GET","path":"/x"},""])"}) {
    client_frame f;
    ASSERT_TRUE(parse_client_frame(text, f).ok()) << text;
    EXPECT_FALSE(f.body.has_value()) << text;
  }
}

TEST(RcFrame, Heartbeat) {
  client_frame f;
  ASSERT_TRUE(parse_client_frame(R"([{"type":"Heartbeat","messageId":"hb1"}])", f).ok());
  EXPECT_EQ(f.type, "Heartbeat");
  EXPECT_EQ(f.message_id, "hb1");
}

TEST(RcFrame, Errors) {
  client_frame f;
  EXPECT_EQ(parse_client_frame("not json", f).err().code, errc::bad_json);
  EXPECT_EQ(parse_client_frame(R"({"type":"Heartbeat"})", f).err().code, errc::bad_message);
  EXPECT_EQ(parse_client_frame("[]", f).err().code, errc::bad_message);
  EXPECT_EQ(parse_client_frame("[1]", f).err().code, errc::bad_message);
  auto st = parse_client_frame(R"([{"type":"Bogus","messageId":"m9"}])", f);
  EXPECT_EQ(st.err().code, errc::unknown_type);
  EXPECT_EQ(f.message_id, "m9");
  st = parse_client_frame(
      R"([{"type":"ClientRequest","messageId":"m1","method":"GET","path":"x"}])", f);
  EXPECT_EQ(st.err().code, errc::bad_message);
  EXPECT_EQ(f.message_id, "m1");
}

TEST(RcRender, ConnectionDetails) {
  connection_details d;
  d.creation_ms = 0;
  d.max_connections_per_session = 50;
  d.recovery_buffer_size = 100;
  d.recovery_timeout_s = 180;
  d.idle_timeout_s = 1800;
  d.absolute_timeout_s = 86400;
  d.max_active_requests = 10;
  d.recovery_state = "Failed";
  d.recovery_error_code = "HRD-1001";
  const auto v = parse(render_connection_details("m1", wsc_value{"tok", 7}, d));
  const auto& a = v.as_array();
  ASSERT_EQ(a.size(), 2u);
  const auto& meta = a[0].as_object();
  EXPECT_EQ(meta.at("type").as_string(), "ConnectionDetails");
  EXPECT_EQ(meta.at("status").as_int64(), 200);
  EXPECT_EQ(meta.at("headers").as_object().at("RCRequestId").as_string(), "m1");
  EXPECT_EQ(meta.at("wsc").as_object().at("sequence").as_int64(), 7);
  const auto& body = a[1].as_object();
  for (const char* k : {"creationTime", "maxConnectionsPerSession", "recoveryBufferSize",
                        "recoveryTimeout", "idleTimeout", "absoluteTimeout", "maxActiveRequests",
                        "recoveryState", "recoveryErrorCode"})
    EXPECT_TRUE(body.contains(k)) << k;
  EXPECT_EQ(body.at("creationTime").as_string(), "1970-01-01T00:00:00.000Z");
}

TEST(RcRender, ReplyHeartbeatError) {
  auto v = parse(render_reply("m/1", 204, nullptr, "{\"x\":1}"));
  ASSERT_EQ(v.as_array().size(), 1u);  // 204: no body element
  EXPECT_EQ(v.as_array()[0].as_object().at("type").as_string(), "ClientRequest");
  wsc_value w{"t", 3};
  v = parse(render_reply("m/1", 200, &w, "{\"x\":1}"));
  ASSERT_EQ(v.as_array().size(), 2u);
  EXPECT_EQ(v.as_array()[0].as_object().at("wsc").as_object().at("token").as_string(), "t");
  v = parse(render_heartbeat("hb"));
  EXPECT_EQ(v.as_array()[0].as_object().at("status").as_int64(), 200);
  v = parse(render_error("e1", 401, "HRD-401", "bad \"token\""));
  EXPECT_EQ(v.as_array()[0].as_object().at("type").as_string(), "Error");
  EXPECT_EQ(v.as_array()[1].as_object().at("errorCode").as_string(), "HRD-401");
}

TEST(RcRender, NotificationBodyIsByteExact) {
  event e;
  e.id = "evt_1";
  e.topic = "/restapi/v1.0/account/4100/extension/101/message-store";
  e.time_ms = 1000;
  e.data = "{ \"n\" : 1.0e0 , \"s\":\"\\u00e9\" }";
  const std::string frame = notification_head(e.id, wsc_value{"tk", 2}) + notification_shared(e) +
                            notification_tail("sub_1", "101");
  EXPECT_NE(frame.find("\"body\":" + e.data), std::string::npos);
  const auto v = parse(frame);
  const auto& meta = v.as_array()[0].as_object();
  const auto& body = v.as_array()[1].as_object();
  EXPECT_EQ(meta.at("type").as_string(), "ServerNotification");
  EXPECT_EQ(meta.at("messageId").as_string(), "evt_1");
  EXPECT_EQ(body.at("uuid").as_string(), "evt_1");
  EXPECT_EQ(body.at("event").as_string(), e.topic);
  EXPECT_EQ(body.at("timestamp").as_string(), "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(body.at("subscriptionId").as_string(), "sub_1");
  EXPECT_EQ(body.at("ownerId").as_string(), "101");
}

TEST(RcErrors, Bodies) {
  auto v = parse(api_error_body("CMN-102", "nope", "id"));
  EXPECT_EQ(v.as_object().at("errorCode").as_string(), "CMN-102");
  EXPECT_EQ(v.as_object().at("errors").as_array()[0].as_object().at("parameterName").as_string(),
            "id");
  v = parse(oauth_error_body("invalid_grant", "OAU-140", "bad"));
  EXPECT_EQ(v.as_object().at("error").as_string(), "invalid_grant");
  EXPECT_EQ(v.as_object().at("errors").as_array()[0].as_object().at("errorCode").as_string(),
            "OAU-140");
}

TEST(RcFilter, TildeExpansion) {
  const auto u = user("4100", "101");
  auto n = normalize_filter("/restapi/v1.0/account/~/extension/~/message-store", u);
  EXPECT_EQ(n.verdict, filter_verdict::ok);
  EXPECT_EQ(n.topic, "/restapi/v1.0/account/4100/extension/101/message-store");
  n = normalize_filter("/restapi/v1.0/account/~/extension/~/presence?detailedTelephonyState=true",
                       u);
  EXPECT_EQ(n.verdict, filter_verdict::ok);
  EXPECT_EQ(n.topic, "/restapi/v1.0/account/4100/extension/101/presence");
  n = normalize_filter("/restapi/v1.0/account/4100/extension/101/message-store/", u);
  EXPECT_EQ(n.verdict, filter_verdict::ok);
  EXPECT_EQ(n.topic, "/restapi/v1.0/account/4100/extension/101/message-store");
}

TEST(RcFilter, InvalidShapes) {
  const auto u = user("4100", "101");
  for (const char* f :
       {"", "restapi/v1.0", "/restapi//v1.0", "/restapi/*/x", "/restapi/**", "/restapi/~/x", "/"})
    EXPECT_EQ(normalize_filter(f, u).verdict, filter_verdict::invalid) << f;
  // An app has no own extension.
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/~/extension/~/presence", app("4100")).verdict,
            filter_verdict::invalid);
}

TEST(RcFilter, Reach) {
  const auto u = user("4100", "101");
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/4200/extension/101/x", u).verdict,
            filter_verdict::forbidden);
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/~/extension/102/x", u).verdict,
            filter_verdict::forbidden);
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/~/extension/102/x", user("4100", "101", true))
                .verdict,
            filter_verdict::ok);
  EXPECT_EQ(
      normalize_filter("/restapi/v1.0/account/4200/extension/102/x", user("4100", "101", true))
          .verdict,
      filter_verdict::forbidden);
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/~/extension/102/x", app("4100")).verdict,
            filter_verdict::ok);
  EXPECT_EQ(normalize_filter("/restapi/v1.0/account/4200/extension/102/x", app("4100", role::admin))
                .verdict,
            filter_verdict::forbidden);
}

TEST(RcPaths, Subscription) {
  EXPECT_EQ(classify_subscription_path("/restapi/v1.0/subscription").kind,
            sub_path_kind::collection);
  EXPECT_EQ(classify_subscription_path("/restapi/v1.0/subscription/").kind,
            sub_path_kind::collection);
  EXPECT_EQ(classify_subscription_path("//restapi/v1.0/subscription").kind,
            sub_path_kind::collection);
  auto p = classify_subscription_path("/restapi/v1.0/subscription/sub_1/");
  EXPECT_EQ(p.kind, sub_path_kind::item);
  EXPECT_EQ(p.id, "sub_1");
  p = classify_subscription_path("/restapi/v1.0/subscription/sub_1/renew");
  EXPECT_EQ(p.kind, sub_path_kind::renew);
  EXPECT_EQ(p.id, "sub_1");
  EXPECT_EQ(classify_subscription_path("/restapi/v1.0/subscription/a/b").kind, sub_path_kind::none);
  EXPECT_EQ(classify_subscription_path("/restapi/v1.0/account/~").kind, sub_path_kind::none);
}

TEST(RcPaths, SubscriptionRecord) {
  subscription_record s;
  s.id = "sub_9";
  s.event_filters = {"/a/b"};
  s.disabled = {{"/x/*", "Invalid"}};
  const auto v = parse(render_subscription(s, "http://h:1/ringcentral", 0));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("uri").as_string(), "http://h:1/ringcentral/restapi/v1.0/subscription/sub_9");
  EXPECT_EQ(o.at("eventFilters").as_array().size(), 1u);
  EXPECT_EQ(o.at("disabledFilters").as_array()[0].as_object().at("reason").as_string(), "Invalid");
  EXPECT_EQ(o.at("deliveryMode").as_object().at("transportType").as_string(), "WebSocket");
  EXPECT_EQ(o.at("status").as_string(), "Active");
}

TEST(RcWsc, RoundTripAndTamper) {
  const wsc_codec codec("0123456789abcdef0123456789abcdef");
  const wsc_state st{"ses_abc.s3cr3t-_", 42, 7, "lgn_x"};
  const std::string tok = codec.encode(st);
  EXPECT_EQ(
      tok.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      std::string::npos);
  auto back = codec.decode(tok);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, st);
  // Another key, a flipped character, truncation, garbage: all refused.
  EXPECT_FALSE(wsc_codec("another key of sixteen+ bytes").decode(tok).has_value());
  std::string bad = tok;
  bad[3] = bad[3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(codec.decode(bad).has_value());
  EXPECT_FALSE(codec.decode(tok.substr(0, tok.size() - 2)).has_value());
  EXPECT_FALSE(codec.decode("").has_value());
  EXPECT_FALSE(codec.decode("abc").has_value());
  EXPECT_FALSE(codec.decode(std::string(2000, 'a')).has_value());
}

}  // namespace
}  // namespace herald::rc
