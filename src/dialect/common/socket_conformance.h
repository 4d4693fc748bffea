// Test-only: the common socket tests every dialect's socket passes. A dialect describes how its
// client authenticates, subscribes and recognises frames (a dialect_script); the suite then
// checks the rules dialect_socket owns, through the dialect's own wire:
//   - a subscription's acknowledgement precedes its first event;
//   - events keep their order, and an unmatched topic is not delivered;
//   - a full send queue closes with the dialect's slow-consumer code;
//   - a drain closes with the dialect's drain code and leaves the session resumable (the sink is
//     gone, the session is kept);
//   - a revoked credential closes with the dialect's revoked code;
//   - an admin close is 1000;
//   - the socket is unregistered from the hub once closed (a later kick finds nothing).
// A dialect that subscribes at authentication and sees only its own event types says so in
// its script (subscribed_at_open, shape_event); the rules checked are the same.
// Call run_socket_conformance(script) from a TEST in the dialect's socket test.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "dialect/common/socket_harness.h"

namespace herald::testing {

struct dialect_script {
  // Makes the socket for `conn` and authenticates it (on_open, then whatever frames the
  // dialect's handshake needs; the harness runs posted work in between).
  std::function<std::unique_ptr<dialect_socket>(socket_harness&, fake_connection&)> open;
  // Sends the dialect's subscribe for topic `topic` (an exact topic of tenant "acme").
  // Whatever the dialect's acknowledgement starts (a pause) is over when it returns.
  std::function<void(socket_harness&, fake_connection&, dialect_socket&, const std::string& topic)>
      subscribe;
  // The topic the dialect's subscribe for `name` matches ("/c/x" for native, the RingCentral
  // event filter's topic for RingCentral).
  std::function<std::string(const std::string& name)> topic_for;
  std::function<bool(const std::string& frame)> is_ack;
  std::function<bool(const std::string& frame)> is_event;
  int slow_code = 4010, drain_code = 1012, revoked_code = 4001;
  // Dialects whose socket subscribes itself at authentication (smsgw): open() ends with that
  // subscription's acknowledgement (its success frame), and `subscribe` is not called.
  bool subscribed_at_open = false;
  // How the events the suite publishes look to the dialect (type, subject, app...), for
  // dialects that only see their own event types; default: the harness's "probe" events.
  std::function<void(event&)> shape_event;
};

inline void say(socket_harness& h, dialect_socket& s, const std::string& text) {
  s.on_traffic();
  s.on_message(text, false);
  h.run();
}

inline void run_socket_conformance(const dialect_script& d) {
  {  // ack before events, in order, unmatched not delivered
    socket_harness h;
    auto conn = h.connection();
    auto s = d.open(h, *conn);
    ASSERT_EQ(conn->close_code, 0) << "the socket must open";
    ASSERT_FALSE(d.subscribed_at_open && conn->frames.empty()) << "open() ends with the ack";
    const std::size_t before = conn->frames.size() - (d.subscribed_at_open ? 1 : 0);
    if (!d.subscribed_at_open) d.subscribe(h, *conn, *s, "a");
    h.publish(d.topic_for("a"), "{}", d.shape_event);
    h.publish(d.topic_for("b"), "{}", d.shape_event);
    h.publish(d.topic_for("a"), "{}", d.shape_event);
    ASSERT_EQ(conn->frames.size(), before + 3) << "ack + 2 events";
    EXPECT_TRUE(d.is_ack(conn->frames[before])) << conn->frames[before];
    EXPECT_TRUE(d.is_event(conn->frames[before + 1])) << conn->frames[before + 1];
    EXPECT_TRUE(d.is_event(conn->frames[before + 2])) << conn->frames[before + 2];
    s->on_closed(1000);
    h.run();
  }
  {  // a full send queue: the dialect's slow-consumer close
    socket_harness h;
    auto conn = h.connection();
    auto s = d.open(h, *conn);
    if (!d.subscribed_at_open) d.subscribe(h, *conn, *s, "a");
    conn->refuse = true;
    h.publish(d.topic_for("a"), "{}", d.shape_event);
    EXPECT_EQ(conn->close_code, d.slow_code);
    s->on_closed(conn->close_code);
    h.run();
  }
  {  // drain, revoke, admin: each through the dialect's table; closed sockets leave the hub
    for (const auto& [why, code] :
         {std::pair{close_reason::drain, d.drain_code},
          std::pair{close_reason::revoked, d.revoked_code}, std::pair{close_reason::admin, 1000}}) {
      socket_harness h;
      auto conn = h.connection();
      auto s = d.open(h, *conn);
      if (why == close_reason::drain) {
        s->on_drain();
      } else {
        h.h().kick_where([](const session_sink&) { return true; }, kick{why, "test"});
        h.run();
      }
      EXPECT_EQ(conn->close_code, code) << close_reason_name(why);
      s->on_closed(conn->close_code);
      h.run();
      int found = 0;
      h.h().kick_where([&found](const session_sink&) { return ++found > 0; },
                       kick{close_reason::admin, "again"});
      h.run();
      EXPECT_EQ(found, 0) << "a closed socket is no longer the hub's sink";
    }
  }
}

}  // namespace herald::testing
