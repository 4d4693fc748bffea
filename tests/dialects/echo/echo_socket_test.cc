#include "echo/echo_socket.h"

#include <gtest/gtest.h>

#include "dialect/common/socket_conformance.h"

// The test-only echo dialect passes the common socket tests: a new dialect written against the
// seam gets the lifecycle rules (ack before events, slow consumer, drain, revocation) for free.
namespace herald {
namespace {

using testing::fake_connection;
using testing::socket_harness;

TEST(echo_socket, passes_the_common_socket_tests) {
  testing::dialect_script d;
  d.open = [](socket_harness& h, fake_connection& conn) -> std::unique_ptr<dialect_socket> {
    http_request up;
    up.headers["authorization"] = "Bearer " + h.access_token();
    auto s = std::make_unique<echo::echo_socket>(h.svc(), conn, up, 30);
    s->on_open();
    h.run();
    return s;
  };
  d.subscribe = [](socket_harness& h, fake_connection&, dialect_socket& s, const std::string& n) {
    testing::say(h, s, "sub /e/" + n);
  };
  d.topic_for = [](const std::string& n) { return "/e/" + n; };
  d.is_ack = [](const std::string& f) { return f.rfind("ack ", 0) == 0; };
  d.is_event = [](const std::string& f) { return f.rfind("event ", 0) == 0; };
  testing::run_socket_conformance(d);
}

TEST(echo_socket, echoes_and_answers_ping) {
  socket_harness h;
  auto conn = h.connection();
  http_request up;
  up.headers["authorization"] = "Bearer " + h.access_token();
  echo::echo_socket s(h.svc(), *conn, up, 30);
  s.on_open();
  testing::say(h, s, "hello");
  testing::say(h, s, "ping");
  ASSERT_EQ(conn->frames.size(), 3u);
  EXPECT_EQ(conn->frames[1], "hello");
  EXPECT_EQ(conn->frames[2], "pong");
  s.on_closed(1000);
}

TEST(echo_socket, no_credential_closes_4001) {
  socket_harness h;
  auto conn = h.connection();
  echo::echo_socket s(h.svc(), *conn, http_request{}, 30);
  s.on_open();
  EXPECT_EQ(conn->close_code, 4001);
}

}  // namespace
}  // namespace herald
