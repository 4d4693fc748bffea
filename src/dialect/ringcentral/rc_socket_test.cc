#include "dialect/ringcentral/rc_socket.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "api/authn.h"
#include "dialect/common/socket_conformance.h"
#include "dialect/common/socket_harness.h"

// State-machine tests of the RingCentral socket on the socket harness (one shard on the test
// thread, a fake connection, a manual clock): the handshake, the §8.4 notify pause, Heartbeat
// replies during it, the ClientRequest limit, the §6 timers, and the common socket tests.
namespace herald {
namespace {

namespace json = boost::json;
using testing::fake_connection;
using testing::manual_now_ms;
using testing::socket_harness;

// [header, body?]: the frame's header object.
json::object header_of(const std::string& frame) {
  return json::parse(frame).as_array().at(0).as_object();
}
std::string type_of(const std::string& frame) {
  return std::string(header_of(frame).at("type").as_string());
}

constexpr const char* presence_filter = "/restapi/v1.0/account/~/extension/777/presence";

class rc_fixture {
 public:
  explicit rc_fixture(socket_harness& h) : h_(h) {
    ringcentral_limits l;
    l.notify_pause_ms = 50;
    cx_ = std::make_shared<rc_context>(h.svc(), routes_, l, "/ringcentral", 1);
    login_record lg;
    lg.id = "lgn_1";
    lg.tenant = "acme";
    lg.app_id = "app_1";
    lg.dialect = "ringcentral";
    h.dir().put_login(lg);
  }
  // A socket opened with a ws token of app_1's login session, ConnectionDetails written and its
  // pause over.
  std::unique_ptr<rc_socket> open(fake_connection& conn, std::string query = {}) {
    principal p = principal_of_app(*h_.dir().app("app_1"), false);
    p.login_session = "lgn_1";
    http_request up;
    up.path = "/ringcentral/ws";
    up.host = "127.0.0.1:1";
    up.query = "access_token=" + h_.svc().signer.issue(claims_for(p, "ringcentral", "ws", 600000)) +
               (query.empty() ? "" : "&" + query);
    auto s = std::make_unique<rc_socket>(cx_, conn, up);
    s->on_open();
    h_.run();
    end_pause(conn);
    return s;
  }
  void end_pause(fake_connection& conn) {
    manual_now_ms += 50;
    conn.fire_timers();
    h_.run();
  }
  std::shared_ptr<rc_context> cx() const { return cx_; }
  static std::string subscribe_frame(const std::string& id, const std::string& filter) {
    return R"([{"type":"ClientRequest","messageId":")" + id +
           R"(","method":"POST","path":"/restapi/v1.0/subscription"},{"eventFilters":[")" + filter +
           R"("],"deliveryMode":{"transportType":"WebSocket"}}])";
  }

 private:
  socket_harness& h_;
  router routes_;
  std::shared_ptr<rc_context> cx_;
};

TEST(rc_socket, handshake_sends_connection_details_with_a_wsc) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  auto s = f.open(*conn);
  ASSERT_EQ(conn->frames.size(), 1u);
  auto hd = header_of(conn->frames[0]);
  EXPECT_EQ(hd.at("type").as_string(), "ConnectionDetails");
  EXPECT_TRUE(hd.contains("wsc"));
  EXPECT_EQ(conn->close_code, 0);
}

TEST(rc_socket, a_missing_token_is_refused_with_an_error_frame_and_4001) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  http_request up;
  rc_socket s(f.cx(), *conn, up);
  s.on_open();
  ASSERT_EQ(conn->frames.size(), 1u);
  EXPECT_EQ(type_of(conn->frames[0]), "Error");
  EXPECT_EQ(conn->close_code, 4001);
}

TEST(rc_socket, a_malformed_wsc_closes_1008) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  auto s = f.open(*conn, "wsc=not-a-wsc");
  EXPECT_EQ(type_of(conn->frames.at(0)), "Error");
  EXPECT_EQ(conn->close_code, 1008);
}

TEST(rc_socket, frames_wait_out_the_notify_pause_but_heartbeats_do_not) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  auto s = f.open(*conn);
  testing::say(h, *s, rc_fixture::subscribe_frame("m1", presence_filter));
  ASSERT_EQ(conn->frames.size(), 2u);                    // the subscription reply, then a pause
  EXPECT_EQ(type_of(conn->frames[1]), "ClientRequest");  // a reply keeps its request's type
  h.publish("/restapi/v1.0/account/acme/extension/777/presence");
  EXPECT_EQ(conn->frames.size(), 2u);  // held during the pause
  testing::say(h, *s, R"([{"type":"Heartbeat","messageId":"hb1"}])");
  ASSERT_EQ(conn->frames.size(), 3u);  // a Heartbeat reply goes at once
  EXPECT_EQ(type_of(conn->frames[2]), "Heartbeat");
  manual_now_ms += 49;
  conn->fire_timers();
  EXPECT_EQ(conn->frames.size(), 3u);  // 49 ms: still paused
  f.end_pause(*conn);
  ASSERT_EQ(conn->frames.size(), 4u);
  EXPECT_EQ(type_of(conn->frames[3]), "ServerNotification");
}

TEST(rc_socket, client_requests_past_max_active_requests_get_429) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  auto s = f.open(*conn);
  // Ten requests dispatched to the (empty) router; their answers wait in the shard's queue.
  for (int i = 0; i < 11; ++i) {
    s->on_message(R"([{"type":"ClientRequest","messageId":"r)" + std::to_string(i) +
                      R"(","method":"GET","path":"/restapi/v1.0/account/~/extension/~"}])",
                  false);
  }
  ASSERT_EQ(conn->frames.size(), 2u);
  EXPECT_NE(conn->frames[1].find("429"), std::string::npos);
  EXPECT_NE(conn->frames[1].find("CMN-301"), std::string::npos);
  h.run();
  EXPECT_EQ(conn->frames.size(), 12u);
}

TEST(rc_socket, silence_closes_4008_with_wsg_902_at_the_exact_deadline) {
  socket_harness h;
  rc_fixture f(h);
  auto conn = h.connection();
  auto s = f.open(*conn);
  const std::int64_t last_in = manual_now_ms - 50;  // the socket's last inbound: its opening
  const std::int64_t silent_at = last_in + 2 * 30 * 1000;
  manual_now_ms = silent_at;
  EXPECT_NE(s->on_tick(silent_at), 0);
  EXPECT_EQ(conn->close_code, 0);
  EXPECT_EQ(s->on_tick(silent_at + 1), 0);
  EXPECT_EQ(conn->close_code, 4008);
  EXPECT_NE(conn->last().find("WSG-902"), std::string::npos);
}

TEST(rc_socket, passes_the_common_socket_tests) {
  std::unique_ptr<rc_fixture> fx;
  testing::dialect_script d;
  d.open = [&](socket_harness& h, fake_connection& conn) -> std::unique_ptr<dialect_socket> {
    fx = std::make_unique<rc_fixture>(h);
    return fx->open(conn);
  };
  d.subscribe = [&](socket_harness& h, fake_connection& conn, dialect_socket& s,
                    const std::string& name) {
    testing::say(h, s,
                 rc_fixture::subscribe_frame("m1", "/restapi/v1.0/account/~/extension/" + name));
    fx->end_pause(conn);  // the subscription reply's notify pause
  };
  d.topic_for = [](const std::string& name) {
    return "/restapi/v1.0/account/acme/extension/" + name;
  };
  d.is_ack = [](const std::string& f) { return type_of(f) == "ClientRequest"; };
  d.is_event = [](const std::string& f) { return type_of(f) == "ServerNotification"; };
  testing::run_socket_conformance(d);
}

}  // namespace
}  // namespace herald
