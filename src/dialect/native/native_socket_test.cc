#include "dialect/native/native_socket.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "api/router.h"
#include "dialect/common/socket_conformance.h"
#include "dialect/common/socket_harness.h"

// State-machine tests of the native socket on the socket harness: one shard on the test thread,
// a fake connection and a manual clock, so every ordering and deadline is exact.
namespace herald {
namespace {

namespace json = boost::json;
using testing::fake_connection;
using testing::manual_now_ms;

json::object parse(const std::string& s) { return json::parse(s).as_object(); }
std::string type_of(const std::string& s) { return std::string(parse(s).at("type").as_string()); }

class native_socket_test : public ::testing::Test {
 protected:
  struct client {
    std::unique_ptr<fake_connection> conn;
    std::unique_ptr<native_socket> sock;
  };

  client open(const std::string& query = {}, bool header_auth = true) {
    client c{h_.connection(), nullptr};
    http_request up;
    up.path = "/v1/ws";
    up.query = query;
    if (header_auth) up.headers["authorization"] = "Bearer " + h_.access_token();
    c.sock = std::make_unique<native_socket>(cx_, *c.conn, up);
    c.sock->on_open();
    h_.run();
    return c;
  }
  void say(client& c, const std::string& text) {
    c.sock->on_traffic();
    c.sock->on_message(text, false);
    h_.run();
  }
  void gone(client& c) {
    c.sock->on_closed(1006);
    h_.run();
  }

  testing::socket_harness h_;
  router routes_;
  native_context cx_{h_.svc(), routes_, 0};
};

TEST_F(native_socket_test, header_auth_gets_welcome_with_session_and_limits) {
  auto c = open();
  ASSERT_EQ(c.conn->frames.size(), 1u);
  auto w = parse(c.conn->frames[0]);
  EXPECT_EQ(w.at("type").as_string(), "welcome");
  EXPECT_FALSE(w.at("session").as_string().empty());
  EXPECT_FALSE(w.at("recovered").as_bool());
  EXPECT_EQ(w.at("limits").as_object().at("max_inflight").as_int64(), 10);
  EXPECT_EQ(c.conn->close_code, 0);
}

TEST_F(native_socket_test, first_message_must_be_auth) {
  auto c = open({}, false);
  EXPECT_TRUE(c.conn->frames.empty());  // nothing is sent to an unauthenticated socket
  say(c, R"({"type":"ping"})");
  ASSERT_EQ(c.conn->frames.size(), 1u);
  auto e = parse(c.conn->frames[0]);
  EXPECT_EQ(e.at("code").as_string(), "auth_failed");
  EXPECT_EQ(c.conn->close_code, 4001);
}

TEST_F(native_socket_test, in_band_auth_with_a_bad_token_fails_4001_and_counts) {
  auto c = open({}, false);
  say(c, R"({"type":"auth","token":"nope"})");
  ASSERT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(parse(c.conn->frames[0]).at("code").as_string(), "auth_failed");
  EXPECT_EQ(c.conn->close_code, 4001);
}

TEST_F(native_socket_test, a_principal_without_subscribe_scope_gets_4003) {
  client c{h_.connection(), nullptr};
  http_request up;
  up.headers["authorization"] = "Bearer " + h_.access_token("app_mute");
  c.sock = std::make_unique<native_socket>(cx_, *c.conn, up);
  c.sock->on_open();
  h_.run();
  ASSERT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(parse(c.conn->frames[0]).at("code").as_string(), "forbidden");
  EXPECT_EQ(c.conn->close_code, 4003);
}

TEST_F(native_socket_test, ack_precedes_the_subscriptions_events) {
  auto c = open();
  say(c, R"({"type":"subscribe","id":"s1","filters":[{"topic":"/a/**"}]})");
  h_.publish("/a/x", R"({"n":1})");
  h_.publish("/b/x", R"({"n":2})");  // not matched
  ASSERT_EQ(c.conn->frames.size(), 3u);
  EXPECT_EQ(type_of(c.conn->frames[1]), "ack");
  auto ev = parse(c.conn->frames[2]);
  EXPECT_EQ(ev.at("type").as_string(), "event");
  EXPECT_EQ(ev.at("seq").as_int64(), 1);
  EXPECT_EQ(ev.at("event").as_object().at("data").as_object().at("n").as_int64(), 1);
}

TEST_F(native_socket_test, resume_replays_what_was_missed_then_live_events) {
  auto a = open();
  say(a, R"({"type":"subscribe","id":"s1","filters":[{"topic":"/a/**"}]})");
  h_.publish("/a/1");
  auto w = parse(a.conn->frames[0]);
  const std::string token(w.at("resume_token").as_string());
  gone(a);
  h_.publish("/a/2");  // missed while detached
  h_.publish("/a/3");
  auto b = open("resume=" + token + "&last_seq=1");
  ASSERT_EQ(b.conn->frames.size(), 3u);
  auto welcome = parse(b.conn->frames[0]);
  EXPECT_TRUE(welcome.at("recovered").as_bool());
  EXPECT_EQ(welcome.at("seq").as_int64(), 1);  // where the replay starts: after last_seq
  EXPECT_EQ(parse(b.conn->frames[1]).at("seq").as_int64(), 2);
  EXPECT_EQ(parse(b.conn->frames[2]).at("seq").as_int64(), 3);
  h_.publish("/a/4");
  EXPECT_EQ(parse(b.conn->last()).at("seq").as_int64(), 4);
}

TEST_F(native_socket_test, a_query_resume_applies_to_in_band_auth) {
  auto a = open();
  say(a, R"({"type":"subscribe","id":"s1","filters":[{"topic":"/a/**"}]})");
  const std::string token(parse(a.conn->frames[0]).at("resume_token").as_string());
  gone(a);
  h_.publish("/a/1");
  auto b = open("resume=" + token + "&last_seq=0", false);
  say(b, R"({"type":"auth","token":")" + h_.access_token() + R"("})");
  ASSERT_EQ(b.conn->frames.size(), 2u);
  EXPECT_TRUE(parse(b.conn->frames[0]).at("recovered").as_bool());
  EXPECT_EQ(parse(b.conn->frames[1]).at("seq").as_int64(), 1);
}

TEST_F(native_socket_test, an_unparseable_last_seq_is_refused_not_read_as_zero) {
  auto c = open("resume=ses_x.y&last_seq=10abc");
  ASSERT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(parse(c.conn->frames[0]).at("code").as_string(), "bad_message");
  EXPECT_EQ(c.conn->close_code, 1008);
}

TEST_F(native_socket_test, replay_is_paced_and_live_events_wait_behind_it) {
  auto a = open();
  say(a, R"({"type":"subscribe","id":"s1","filters":[{"topic":"/a/**"}]})");
  const std::string token(parse(a.conn->frames[0]).at("resume_token").as_string());
  gone(a);
  for (int i = 0; i < 5; ++i) h_.publish("/a/x");
  client b{h_.connection(), nullptr};
  b.conn->stall = true;                                 // nothing drains...
  b.conn->queued = h_.svc().core.send_queue_bytes / 2;  // ...and the queue is half full
  http_request up;
  up.query = "resume=" + token + "&last_seq=0";
  up.headers["authorization"] = "Bearer " + h_.access_token();
  b.sock = std::make_unique<native_socket>(cx_, *b.conn, up);
  b.sock->on_open();
  h_.run();
  ASSERT_EQ(b.conn->frames.size(), 1u);  // the welcome; the replay waits for the socket
  h_.publish("/a/live");
  EXPECT_EQ(b.conn->frames.size(), 1u);
  b.conn->stall = false;
  b.conn->complete_writes();  // drained: the 5 missed events, then the live one, in order
  ASSERT_EQ(b.conn->frames.size(), 7u);
  for (int i = 1; i <= 6; ++i) EXPECT_EQ(parse(b.conn->frames[i]).at("seq").as_int64(), i);
}

TEST_F(native_socket_test, a_full_send_queue_closes_4010_without_an_error_frame) {
  auto c = open();
  say(c, R"({"type":"subscribe","id":"s1","filters":[{"topic":"/a/**"}]})");
  c.conn->refuse = true;
  h_.publish("/a/x");
  EXPECT_EQ(c.conn->close_code, 4010);
  EXPECT_TRUE(c.conn->close_discarded);
  EXPECT_EQ(c.conn->frames.size(), 2u);  // welcome and ack only
}

TEST_F(native_socket_test, auth_deadline_is_exact) {
  auto c = open({}, false);
  const std::int64_t deadline = manual_now_ms + 10 * 1000;  // auth_timeout default 10 s
  EXPECT_EQ(c.sock->on_tick(deadline), deadline + 1);       // at the deadline: still waiting
  EXPECT_EQ(c.conn->close_code, 0);
  EXPECT_EQ(c.sock->on_tick(deadline + 1), 0);  // past it: closed
  EXPECT_EQ(c.conn->close_code, 4002);
  EXPECT_EQ(parse(c.conn->last()).at("code").as_string(), "auth_timeout");
}

TEST_F(native_socket_test, heartbeat_ping_then_4008_after_twice_the_interval_of_silence) {
  auto c = open();
  const std::int64_t t0 = manual_now_ms;
  const std::int64_t hb = 30 * 1000;  // heartbeat_interval default
  manual_now_ms = t0 + 1000;
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), t0 + hb);  // next: the first ping
  manual_now_ms = t0 + hb;
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), t0 + 2 * hb);  // pinged; next ping in an interval
  EXPECT_EQ(c.conn->pings, 1);
  EXPECT_EQ(type_of(c.conn->last()), "ping");
  manual_now_ms = t0 + 2 * hb;  // silent for exactly 2 intervals: not yet
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), t0 + 2 * hb + 1);
  EXPECT_EQ(c.conn->close_code, 0);
  manual_now_ms = t0 + 2 * hb + 1;
  EXPECT_EQ(c.sock->on_tick(manual_now_ms), 0);
  EXPECT_EQ(c.conn->close_code, 4008);
  EXPECT_EQ(c.conn->close_text, "heartbeat timeout");
}

TEST_F(native_socket_test, inbound_traffic_moves_the_silence_deadline) {
  auto c = open();
  const std::int64_t t0 = manual_now_ms;
  const std::int64_t hb = 30 * 1000;
  manual_now_ms = t0 + 50 * 1000;
  c.sock->on_traffic();  // a pong frame
  manual_now_ms = t0 + 2 * hb + 1;
  EXPECT_NE(c.sock->on_tick(manual_now_ms), 0);
  EXPECT_EQ(c.conn->close_code, 0);
}

TEST_F(native_socket_test, revoked_kick_is_4001_and_ends_the_session) {
  auto c = open();
  const std::string token(parse(c.conn->frames[0]).at("resume_token").as_string());
  h_.h().kick_where([](const session_sink& k) { return k.who().app_id == "app_1"; },
                    kick{close_reason::revoked, "credential revoked"});
  h_.run();
  EXPECT_EQ(c.conn->close_code, 4001);
  EXPECT_EQ(parse(c.conn->last()).at("code").as_string(), "auth_failed");
  gone(c);
  auto b = open("resume=" + token + "&last_seq=0");  // not resumable
  auto w = parse(b.conn->frames[0]);
  EXPECT_FALSE(w.at("recovered").as_bool());
  EXPECT_TRUE(w.contains("recovery_error"));
}

TEST_F(native_socket_test, drain_closes_1012_and_the_session_stays_resumable) {
  auto c = open();
  const std::string token(parse(c.conn->frames[0]).at("resume_token").as_string());
  c.sock->on_drain();
  EXPECT_EQ(c.conn->close_code, 1012);
  gone(c);
  auto b = open("resume=" + token + "&last_seq=0");
  EXPECT_TRUE(parse(b.conn->frames[0]).at("recovered").as_bool());
}

TEST_F(native_socket_test, requests_past_max_inflight_are_refused) {
  auto c = open();
  c.conn->stall = true;  // offload continuations are posted; run() is not called in between
  for (int i = 0; i < 11; ++i) {
    c.sock->on_message(R"({"type":"request","id":"r)" + std::to_string(i) +
                           R"(","method":"GET","path":"/v1/nothing"})",
                       false);
  }
  // The 11th is refused at once, before any of the first ten completes.
  ASSERT_EQ(c.conn->frames.size(), 2u);
  auto e = parse(c.conn->frames[1]);
  EXPECT_EQ(e.at("code").as_string(), "too_many_requests");
  EXPECT_EQ(e.at("id").as_string(), "r10");
  h_.run();
  EXPECT_EQ(c.conn->frames.size(), 12u);
}

TEST(native_socket_common, passes_the_common_socket_tests) {
  router routes;
  std::unique_ptr<native_context> cx;
  testing::dialect_script d;
  d.open = [&](testing::socket_harness& h,
               fake_connection& conn) -> std::unique_ptr<dialect_socket> {
    cx = std::make_unique<native_context>(native_context{h.svc(), routes, 0});
    http_request up;
    up.headers["authorization"] = "Bearer " + h.access_token();
    auto s = std::make_unique<native_socket>(*cx, conn, up);
    s->on_open();
    h.run();
    return s;
  };
  d.subscribe = [](testing::socket_harness& h, fake_connection&, dialect_socket& s,
                   const std::string& name) {
    testing::say(h, s,
                 R"({"type":"subscribe","id":"s","filters":[{"topic":"/c/)" + name + R"("}]})");
  };
  d.topic_for = [](const std::string& name) { return "/c/" + name; };
  d.is_ack = [](const std::string& f) { return type_of(f) == "ack"; };
  d.is_event = [](const std::string& f) { return type_of(f) == "event"; };
  testing::run_socket_conformance(d);
}

}  // namespace
}  // namespace herald
