#include "dialect/smsgw/smsgw_socket.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "auth/crypto.h"
#include "dialect/common/socket_conformance.h"
#include "dialect/common/socket_harness.h"

// State-machine tests of the smsgw socket (smsgw.md §2, §3) on the socket harness: one shard on
// the test thread, a fake connection and a manual clock, so orderings and deadlines are exact.
namespace herald {
namespace {

namespace json = boost::json;
using testing::fake_connection;
using testing::manual_now_ms;

json::object parse(const std::string& s) { return json::parse(s).as_object(); }
std::string type_of(const std::string& s) { return std::string(parse(s).at("type").as_string()); }

const std::string key_a = "sgw_" + std::string(32, 'a');      // app_1 (role app, tenant acme)
const std::string key_b = "sgw_" + std::string(32, 'b');      // app_b (role app, tenant acme)
const std::string key_admin = "sgw_" + std::string(32, 'c');  // app_adm (role admin, tenant ops)
const std::string key_pub = "sgw_" + std::string(32, 'd');    // app_pub (publisher)
const std::string key_other = "sgw_" + std::string(32, 'e');  // app_c (role app, tenant beta)

class smsgw_socket_test : public ::testing::Test {
 protected:
  struct client {
    std::unique_ptr<fake_connection> conn;
    std::unique_ptr<smsgw_socket> sock;
  };

  smsgw_socket_test() {
    auto& dir = h_.dir();
    dir.add_tenant(tenant_record{"beta", ""});
    dir.add_tenant(tenant_record{"ops", ""});
    auto put = [&](const std::string& id, const std::string& tenant, role r,
                   const std::string& key) {
      app_record a;
      a.id = id;
      a.tenant = tenant;
      a.name = id;
      a.app_role = r;
      a.scopes = default_scopes(r);
      a.api_key_hash = hash_secret(key);
      a.api_key_format = "sgw";
      dir.put_app(a);
    };
    put("app_1", "acme", role::app, key_a);
    put("app_b", "acme", role::app, key_b);
    put("app_adm", "ops", role::admin, key_admin);
    put("app_pub", "acme", role::publisher, key_pub);
    put("app_c", "beta", role::app, key_other);
  }

  client open() {
    client c{h_.connection(), nullptr};
    http_request up;
    up.path = "/smsgw/ws";
    c.sock = std::make_unique<smsgw_socket>(cx_, *c.conn, up);
    c.sock->on_open();
    h_.run();
    return c;
  }
  void say(client& c, const std::string& text, bool binary = false) {
    c.sock->on_traffic();
    c.sock->on_message(text, binary);
    h_.run();
  }
  client authed(const std::string& key) {
    auto c = open();
    say(c, R"({"type":"auth","apiKey":")" + key + R"("})");
    return c;
  }
  // One sms event published natively (the store is bypassed: the hub is handed it directly).
  event_ptr publish(const std::string& type, const std::string& tenant, const std::string& app,
                    const std::string& subject, const std::string& data) {
    auto e = std::make_shared<event>();
    e->id = "evt_" + std::to_string(++offset_);
    e->offset = offset_;
    e->topic = "/sms/" + tenant + "/x";
    e->type = type;
    e->tenant = tenant;
    e->app = app;
    e->subject = subject;
    e->time_ms = manual_now_ms;
    e->data = data;
    e->retain = true;
    h_.h().publish({e});
    h_.run();
    return e;
  }
  void expect_refused(client& c, const std::string& text) {
    ASSERT_EQ(c.conn->frames.size(), 1u);
    EXPECT_EQ(c.conn->frames[0], R"({"type":"auth_error","error":")" + text + R"("})");
    EXPECT_EQ(c.conn->close_code, 1008);
    EXPECT_EQ(c.conn->close_text, text);
  }

  testing::socket_harness h_;
  smsgw_limits limits_{};
  smsgw_context cx_{h_.svc(), limits_, 0};
  std::int64_t offset_ = 0;
};

TEST_F(smsgw_socket_test, nothing_is_sent_before_auth_and_auth_ok_is_exact) {
  auto c = open();
  EXPECT_TRUE(c.conn->frames.empty());
  say(c, R"({"type":"auth","apiKey":")" + key_a + R"("})");
  ASSERT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(c.conn->frames[0], R"({"type":"auth_ok"})");
  EXPECT_EQ(c.conn->close_code, 0);
}

// §2.2's table, one socket per row: one auth_error frame, then 1008 with the same text.
TEST_F(smsgw_socket_test, the_first_frame_errors_of_the_table) {
  auto a = open();
  say(a, "{not json");
  expect_refused(a, "Invalid JSON");
  auto b = open();
  say(b, R"({"type":"auth","apiKey":"x"})", true);  // binary
  expect_refused(b, "Invalid JSON");
  auto c = open();
  say(c, R"({"type":"hello"})");
  expect_refused(c, "Send auth first");
  auto d = open();
  say(d, R"({"type":"auth"})");
  expect_refused(d, "Invalid API key");
  auto e = open();
  say(e, R"({"type":"auth","apiKey":"sgw_00000000000000000000000000000000"})");
  expect_refused(e, "Invalid API key");
  auto f = open();
  say(f, R"({"type":"auth","apiKey":")" + key_pub + R"("})");
  expect_refused(f, "API key not permitted");
  auto g = open();
  say(g, R"({"type":"auth","token":"wst_nope"})");
  expect_refused(g, "Invalid API key");
}

TEST_F(smsgw_socket_test, an_oversized_auth_frame_closes_1009_without_auth_error) {
  auto c = open();
  say(c, R"({"type":"auth","apiKey":")" + std::string(5000, 'x') + R"("})");
  EXPECT_TRUE(c.conn->frames.empty());
  EXPECT_EQ(c.conn->close_code, 1009);
}

// §7: auth_fail_limit failures from one address block it for auth_fail_block, valid key or not.
TEST_F(smsgw_socket_test, ten_failures_block_the_address_with_too_many_requests) {
  for (int i = 0; i < 10; ++i) {
    auto c = authed("sgw_wrong");
    expect_refused(c, "Invalid API key");
  }
  auto c = authed(key_a);  // a valid key from a blocked address is refused too
  expect_refused(c, "Too many requests");
  h_.advance(900 * 1000 + 1);
  auto d = authed(key_a);
  EXPECT_EQ(d.conn->frames[0], R"({"type":"auth_ok"})");
}

TEST_F(smsgw_socket_test, connections_per_key_are_limited) {
  std::vector<client> open_ones;
  open_ones.reserve(50);
  for (int i = 0; i < 50; ++i) open_ones.push_back(authed(key_a));
  auto c = authed(key_a);
  expect_refused(c, "Too many connections");
  open_ones.back().sock->on_closed(1000);  // one goes away: its slot is free again
  h_.run();
  auto d = authed(key_a);
  EXPECT_EQ(d.conn->frames[0], R"({"type":"auth_ok"})");
}

TEST_F(smsgw_socket_test, auth_deadline_is_exact) {
  auto c = open();
  const std::int64_t deadline = manual_now_ms + 10 * 1000;  // auth_timeout default 10 s
  EXPECT_NE(c.sock->on_tick(deadline), 0);                  // at the deadline: still waiting
  EXPECT_EQ(c.conn->close_code, 0);
  EXPECT_EQ(c.sock->on_tick(deadline + 1), 0);  // past it: closed
  expect_refused(c, "Authentication timeout");
}

TEST_F(smsgw_socket_test, ping_is_answered_and_other_frames_ignored) {
  auto c = authed(key_a);
  say(c, R"({"type":"ping"})");
  say(c, R"({"type":"auth","apiKey":"again"})");  // a second auth is ignored
  say(c, "garbage");
  ASSERT_EQ(c.conn->frames.size(), 2u);
  EXPECT_EQ(c.conn->frames[1], R"({"type":"pong"})");
  EXPECT_EQ(c.conn->close_code, 0);
}

TEST_F(smsgw_socket_test, a_client_flood_closes_1008_too_many_messages) {
  auto c = authed(key_a);
  for (int i = 0; i < 50; ++i) say(c, "{}");  // the burst
  EXPECT_EQ(c.conn->close_code, 0);
  say(c, "{}");
  EXPECT_EQ(c.conn->close_code, 1008);
  EXPECT_EQ(c.conn->close_text, "Too many messages");
}

// §2.4: the ping goes every interval whatever the traffic; silence past liveness_timeout is
// 4008, and exactly at it is not yet.
TEST_F(smsgw_socket_test, heartbeat_every_interval_then_4008_without_inbound) {
  auto c = authed(key_a);
  const std::int64_t t0 = manual_now_ms;
  EXPECT_EQ(c.sock->on_tick(t0 + 1000), t0 + 30000);
  manual_now_ms = t0 + 30000;
  c.sock->on_traffic();  // events or not, the ping goes every interval
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), t0 + 60000);
  EXPECT_EQ(c.conn->last(), R"({"type":"ping"})");
  EXPECT_EQ(c.conn->pings, 1);
  manual_now_ms = t0 + 30000 + 60000;  // silent for exactly liveness_timeout: not yet
  c.sock->on_tick(manual_now_ms);
  EXPECT_EQ(c.conn->close_code, 0);
  manual_now_ms += 1;
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), 0);
  EXPECT_EQ(c.conn->close_code, 4008);
}

TEST_F(smsgw_socket_test, age_over_absolute_timeout_closes_4009) {
  auto c = authed(key_a);
  manual_now_ms += 86400 * 1000 + 1;
  c.sock->on_traffic();
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), 0);
  EXPECT_EQ(c.conn->close_code, 4009);
}

TEST_F(smsgw_socket_test, events_render_as_the_spec_shows_and_other_types_never_arrive) {
  auto c = authed(key_a);
  publish("sms.status", "acme", "app_1", "msg_1", R"({"status":"sent","rcMessageId":"9"})");
  publish("probe", "acme", "", "", "{}");
  publish("sms.inbound", "acme", "", "msg_2", R"({"from":"+1","to":"+2","body":"hi"})");
  ASSERT_EQ(c.conn->frames.size(), 3u);
  auto s = parse(c.conn->frames[1]);
  EXPECT_EQ(s.at("type").as_string(), "sms_status");
  EXPECT_EQ(s.at("messageId").as_string(), "msg_1");
  EXPECT_EQ(s.at("rcMessageId").as_string(), "9");
  EXPECT_EQ(type_of(c.conn->frames[2]), "sms_inbound");
}

// §3 and §9 scenario 2: A and B of tenant acme, an admin app, C of tenant beta.
TEST_F(smsgw_socket_test, scoping_by_app_tenant_and_admin) {
  auto a = authed(key_a);
  auto b = authed(key_b);
  auto adm = authed(key_admin);
  auto other = authed(key_other);
  publish("sms.status", "acme", "app_1", "msg_1", R"({"status":"sent"})");  // A only (+admin)
  publish("sms.status", "acme", "app_b", "msg_2", R"({"status":"sent"})");  // B only (+admin)
  publish("sms.inbound", "acme", "", "msg_3", R"({"from":"+1","to":"+2","body":"x"})");  // A, B
  publish("sms.inbound", "beta", "", "msg_4", R"({"from":"+1","to":"+2","body":"y"})");  // C
  auto ids = [](const client& c) {
    std::vector<std::string> out;
    for (std::size_t i = 1; i < c.conn->frames.size(); ++i)
      out.emplace_back(parse(c.conn->frames[i]).at("messageId").as_string());
    return out;
  };
  EXPECT_EQ(ids(a), (std::vector<std::string>{"msg_1", "msg_3"}));
  EXPECT_EQ(ids(b), (std::vector<std::string>{"msg_2", "msg_3"}));
  EXPECT_EQ(ids(adm), (std::vector<std::string>{"msg_1", "msg_2", "msg_3", "msg_4"}));
  EXPECT_EQ(ids(other), (std::vector<std::string>{"msg_4"}));
}

TEST_F(smsgw_socket_test, revoked_key_gets_auth_error_api_key_revoked) {
  auto c = authed(key_a);
  h_.h().kick_where([](const session_sink& k) { return k.who().app_id == "app_1"; },
                    kick{close_reason::revoked, "credential revoked"});
  h_.run();
  ASSERT_EQ(c.conn->frames.size(), 2u);
  EXPECT_EQ(c.conn->frames[1], R"({"type":"auth_error","error":"API key revoked"})");
  EXPECT_EQ(c.conn->close_code, 1008);
  EXPECT_EQ(c.conn->close_text, "API key revoked");
}

TEST_F(smsgw_socket_test, drain_and_slow_consumer_codes) {
  auto c = authed(key_a);
  c.sock->on_drain();
  EXPECT_EQ(c.conn->close_code, 1012);
  auto d = authed(key_a);
  d.conn->refuse = true;
  publish("sms.status", "acme", "app_1", "msg_1", R"({"status":"sent"})");
  EXPECT_EQ(d.conn->close_code, 4010);
}

TEST_F(smsgw_socket_test, a_ws_token_works_once) {
  principal who = principal_of_app(*h_.dir().app("app_1"), true);
  auto tok = smsgw::issue_ws_token(cx_, who);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->size(), 68u);
  auto c = open();
  say(c, R"({"type":"auth","token":")" + *tok + R"("})");
  EXPECT_EQ(c.conn->frames[0], R"({"type":"auth_ok"})");
  auto d = open();
  say(d, R"({"type":"auth","token":")" + *tok + R"("})");
  expect_refused(d, "Invalid API key");
}

TEST(smsgw_socket_conformance, the_common_socket_rules_hold_on_the_smsgw_wire) {
  // Each of the suite's harnesses gets a context of its own (kept until the test ends).
  std::vector<std::unique_ptr<smsgw_context>> contexts;
  static const smsgw_limits limits{};
  testing::dialect_script d;
  d.open = [&](testing::socket_harness& h,
               fake_connection& conn) -> std::unique_ptr<dialect_socket> {
    app_record a = *h.dir().app("app_1");
    a.api_key_hash = hash_secret(key_a);
    h.dir().put_app(a);
    contexts.push_back(std::make_unique<smsgw_context>(h.svc(), limits, 0));
    http_request up;
    auto s = std::make_unique<smsgw_socket>(*contexts.back(), conn, up);
    s->on_open();
    testing::say(h, *s, R"({"type":"auth","apiKey":")" + key_a + R"("})");
    return s;
  };
  d.subscribed_at_open = true;  // the implicit subscription; auth_ok is its acknowledgement
  d.topic_for = [](const std::string& name) { return "/sms/acme/" + name; };
  d.shape_event = [](event& e) {
    // Only sms.* reaches this dialect; "/sms/acme/b" stands for an event of another app.
    e.type = "sms.status";
    e.app = e.topic == "/sms/acme/b" ? "app_other" : "app_1";
    e.subject = "msg_1";
    e.retain = true;
    e.data = R"({"status":"sent"})";
  };
  d.is_ack = [](const std::string& f) { return f == R"({"type":"auth_ok"})"; };
  d.is_event = [](const std::string& f) { return type_of(f) == "sms_status"; };
  d.slow_code = 4010;
  d.drain_code = 1012;
  d.revoked_code = 1008;
  testing::run_socket_conformance(d);
}

}  // namespace
}  // namespace herald
