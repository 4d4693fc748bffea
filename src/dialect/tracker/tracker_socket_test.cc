// The tracker socket's state machine on the common harness (no network, a manual clock): the
// conformance rules every dialect socket keeps, then the tracker wire: handshake and tracking
// ids, statuses and snapshots, live states and lifecycle, errors in the spec's order, rate,
// heartbeats, logout and close requests.
#include "dialect/tracker/tracker_socket.h"

#include <gtest/gtest.h>

#include "dialect/common/socket_conformance.h"
#include "dialect/tracker/tracker_codec.h"
#include "dialect/tracker/tracker_context.h"

namespace herald::testing {
namespace {

constexpr const char* hash_a = "0123456789abcdef0123456789abcdef";   // user u1 (acme)
constexpr const char* hash_a2 = "1123456789abcdef0123456789abcdef";  // user u1 again
constexpr const char* hash_b = "fedcba9876543210fedcba9876543210";   // user u2 (acme, restricted)

tracker_limits test_limits() {
  tracker_limits l;
  l.heartbeat_interval_ms = 2000;
  l.heartbeat_timeout_ms = 6000;
  l.max_trackers_per_request = 7;
  l.max_trackers_per_socket = 8;
  l.max_frames_per_second = 20;
  return l;
}

void add_login(directory& d, const std::string& hash, const std::string& user) {
  login_record l;
  l.id = tracker::login_id_of(hash);
  l.tenant = "acme";
  l.user_id = user;
  l.dialect = "tracker";
  l.expires_ms = manual_now_ms + 86400000;
  d.put_login(l);
}

void add_tracker(directory& d, const std::string& tenant, const std::string& id,
                 bool blocked = false, bool corrupted = false) {
  d.put_subject({tenant, id, "tracker", id, "{\"source_id\":" + id + "}", blocked, corrupted, 0});
}

// The directory every test starts from: users u1 (all trackers) and u2 (only 101), trackers 101
// and 102 of acme, 103 blocked, 104 corrupted, 201 of another tenant.
struct fixture {
  socket_harness h;
  tracker_context cx{h.svc(), test_limits(), 7};
  fixture() {
    directory& d = h.dir();
    d.add_tenant(tenant_record{"other", ""});
    user_record u;
    u.id = "u1";
    u.tenant = "acme";
    u.login = "alice";
    u.time_zone = "UTC";
    d.put_user(u);
    u.id = "u2";
    u.login = "bob";
    u.trackers = std::vector<std::string>{"101"};
    d.put_user(u);
    add_login(d, hash_a, "u1");
    add_login(d, hash_a2, "u1");
    add_login(d, hash_b, "u2");
    add_tracker(d, "acme", "101");
    add_tracker(d, "acme", "102");
    add_tracker(d, "acme", "103", true);
    add_tracker(d, "acme", "104", false, true);
    add_tracker(d, "other", "201");
  }
  std::unique_ptr<tracker_socket> open(fake_connection& c, const std::string& query = "") {
    http_request up;
    up.query = query;
    auto s = std::make_unique<tracker_socket>(cx, c, up);
    s->on_open();
    h.run();
    return s;
  }
  void publish_state(const std::string& id, const std::string& data,
                     const std::string& tenant = "acme", const std::string& type = "state") {
    h.publish("/trackers/" + id, data, [&](event& e) {
      e.type = type;
      e.subject = id;
      e.tenant = tenant;
      e.retain = type == "state";
    });
  }
};

std::string frame_of(const std::string& action, const std::string& hash,
                     const std::string& trackers) {
  return R"({"action":")" + action + R"(","hash":")" + hash +
         R"(","events":["state"],"trackers":)" + trackers + "}";
}

TEST(TrackerSocket, Conformance) {
  dialect_script d;
  auto cx = std::make_shared<std::unique_ptr<tracker_context>>();
  d.open = [cx](socket_harness& h, fake_connection& c) -> std::unique_ptr<dialect_socket> {
    *cx = std::make_unique<tracker_context>(h.svc(), test_limits(), 7);
    user_record u;
    u.id = "u1";
    u.tenant = "acme";
    u.login = "alice";
    h.dir().put_user(u);
    add_login(h.dir(), hash_a, "u1");
    add_tracker(h.dir(), "acme", "101");
    add_tracker(h.dir(), "acme", "102");
    auto s = std::make_unique<tracker_socket>(**cx, c, http_request{});
    s->on_open();
    h.run();
    return s;
  };
  d.topic_for = [](const std::string& name) {
    return std::string(name == "a" ? "/trackers/101" : "/trackers/102");
  };
  d.subscribe = [](socket_harness& h, fake_connection&, dialect_socket& s, const std::string& t) {
    say(h, s, frame_of("subscribe", hash_a, t == "a" ? "[101]" : "[102]"));
  };
  d.shape_event = [](event& e) {
    e.type = "state";
    e.subject = e.topic.substr(std::string("/trackers/").size());
  };
  d.is_ack = [](const std::string& f) {
    return f.find("\"subscription/subscribe\"") != std::string::npos;
  };
  d.is_event = [](const std::string& f) {
    return f.find("\"event\":\"state\"") != std::string::npos;
  };
  d.revoked_code = 1000;  // an unbound socket has no logout to send: closed
  run_socket_conformance(d);
}

TEST(TrackerSocket, HandshakeFirstAndTrackingIdReuse) {
  fixture f;
  auto c1 = f.h.connection();
  const std::string id = "3f0c9a6e-8d2b-4b71-9e55-0c1d2e3f4a5b";
  auto s1 = f.open(*c1, "X-Atmosphere-tracking-id=" + id + "&X-Atmosphere-TrackMessageSize=true");
  ASSERT_EQ(c1->frames.size(), 1u);
  EXPECT_EQ(c1->frames[0], "44|" + id + "|2000|X|");
  // The same id while the first socket holds it: a new one.
  auto c2 = f.h.connection();
  auto s2 = f.open(*c2, "X-Atmosphere-tracking-id=" + id);
  ASSERT_EQ(c2->frames.size(), 1u);
  EXPECT_EQ(c2->frames[0].find(id), std::string::npos);
  EXPECT_TRUE(tracker::valid_uuid(c2->frames[0].substr(0, 36))) << c2->frames[0];
  EXPECT_EQ(c2->frames[0].substr(36), "|2000|X|");
  // "0" (atmosphere.js's first connect) and garbage: new ids.
  auto c3 = f.h.connection();
  auto s3 = f.open(*c3, "X-Atmosphere-tracking-id=0");
  EXPECT_TRUE(tracker::valid_uuid(c3->frames[0].substr(0, 36)));
  // Freed by a close: reusable.
  s1->on_closed(1000);
  f.h.run();
  auto c4 = f.h.connection();
  auto s4 = f.open(*c4, "X-Atmosphere-tracking-id=" + id);
  EXPECT_EQ(c4->frames[0], id + "|2000|X|");
  EXPECT_TRUE(f.cx.sockets.find(id));
  for (auto* s : {s2.get(), s3.get(), s4.get()}) s->on_closed(1000);
  f.h.run();
}

TEST(TrackerSocket, StatusesSnapshotsThenLiveStatesInOrder) {
  fixture f;
  // Retained states in the store for the snapshot (offset order 102, then 101).
  for (const char* id : {"102", "101"}) {
    event_draft d{"/trackers/" + std::string(id),
                  "state",
                  "acme",
                  "",
                  id,
                  "{\"source_id\":" + std::string(id) + "}",
                  true};
    ASSERT_TRUE(f.h.svc().st.append({d}));
  }
  // The harness numbers its own publishes: past the store's two, as one log would.
  f.h.publish("/warmup");
  f.h.publish("/warmup");
  auto c = f.h.connection();
  auto s = f.open(*c);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101,201,103,102,104,999,101]"));
  ASSERT_EQ(c->frames.size(), 4u) << c->frames.back();
  EXPECT_EQ(c->frames[1],
            R"({"type":"response","action":"subscription/subscribe","events":["state"],)"
            R"("data":{"state":{"101":"normal","201":"unknown","103":"blocked","102":"normal",)"
            R"("104":"unknown","999":"unknown"}}})");
  // Snapshots in request order, not offset order.
  EXPECT_NE(c->frames[2].find(R"("data":{"source_id":101})"), std::string::npos) << c->frames[2];
  EXPECT_NE(c->frames[3].find(R"("data":{"source_id":102})"), std::string::npos) << c->frames[3];
  EXPECT_NE(c->frames[2].find(R"("user_time":")"), std::string::npos);
  // Live: held normal ones only; another tenant's and a blocked one's never.
  f.publish_state("101", R"({"n":1})");
  f.publish_state("201", R"({"n":2})", "other");
  f.publish_state("103", R"({"n":3})");
  f.publish_state("102", R"({"n":4})");
  ASSERT_EQ(c->frames.size(), 6u);
  EXPECT_NE(c->frames[4].find(R"("data":{"n":1}})"), std::string::npos);
  EXPECT_NE(c->frames[5].find(R"("data":{"n":4}})"), std::string::npos);
  s->on_closed(1000);
}

TEST(TrackerSocket, RestrictedUserGetsDisallowedAndNoStates) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  say(f.h, *s, frame_of("subscribe", hash_b, "[101,102]"));
  ASSERT_EQ(c->frames.size(), 2u);
  EXPECT_NE(c->frames[1].find(R"("101":"normal","102":"disallowed")"), std::string::npos);
  f.publish_state("102", "{}");
  EXPECT_EQ(c->frames.size(), 2u);
  s->on_closed(1000);
}

TEST(TrackerSocket, ErrorsInTheSpecsOrderAndTheSocketKeepsWorking) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  auto last_code = [&] {
    const std::string& l = c->last();
    const auto at = l.find("\"code\":");
    return at == std::string::npos ? -1 : std::stoi(l.substr(at + 7));
  };
  say(f.h, *s, "not json");
  EXPECT_EQ(last_code(), 5);
  EXPECT_NE(c->last().find(R"("action":null)"), std::string::npos);
  say(f.h, *s, R"({"action":"subscribe","hash":"abc","events":["state"],"trackers":[101]})");
  EXPECT_EQ(last_code(), 3);
  EXPECT_NE(c->last().find(R"("data":{"events":["state"],"trackers":[101]})"), std::string::npos);
  say(f.h, *s, frame_of("subscribe", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "[101]"));
  EXPECT_EQ(last_code(), 4);
  // A dead hash wins over bad events (4 before 7).
  say(f.h, *s,
      R"({"action":"subscribe","hash":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","events":["foo"],"trackers":[1]})");
  EXPECT_EQ(last_code(), 4);
  say(f.h, *s,
      R"({"action":"subscribe","hash":")" + std::string(hash_a) +
          R"(","events":["foo"],"trackers":[101]})");
  EXPECT_EQ(last_code(), 7);
  say(f.h, *s, frame_of("subscribe", hash_a, "[1,2,3,4,5,6,7,8]"));
  EXPECT_EQ(last_code(), 9);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101]"));
  EXPECT_NE(c->last().find(R"("101":"normal")"), std::string::npos);
  // Bound to u1: u2's hash is refused (13); another hash of u1 is fine.
  say(f.h, *s, frame_of("subscribe", hash_b, "[101]"));
  EXPECT_EQ(last_code(), 13);
  say(f.h, *s, frame_of("subscribe", hash_a2, "[102]"));
  EXPECT_NE(c->last().find(R"("102":"normal")"), std::string::npos);
  // Per socket: 8 held at most.
  say(f.h, *s, frame_of("subscribe", hash_a, "[1,2,3,4,5]"));  // unknown: not held
  EXPECT_NE(c->last().find(R"("5":"unknown")"), std::string::npos);
  for (int i = 300; i < 306; ++i) add_tracker(f.h.dir(), "acme", std::to_string(i));
  say(f.h, *s, frame_of("subscribe", hash_a, "[300,301,302,303,304]"));
  EXPECT_NE(c->last().find(R"("304":"normal")"), std::string::npos);
  say(f.h, *s, frame_of("subscribe", hash_a, "[305,103]"));  // 7 held + 2 > 8
  EXPECT_EQ(last_code(), 9);
  EXPECT_EQ(c->close_code, 0);
  f.publish_state("101", R"({"still":true})");
  EXPECT_NE(c->last().find(R"({"still":true})"), std::string::npos);
  s->on_closed(1000);
}

TEST(TrackerSocket, FrameRateDropsExcessAndSaysSoOnceASecond) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  for (int i = 0; i < 20; ++i) say(f.h, *s, "X");
  EXPECT_EQ(c->frames.size(), 1u);
  for (int i = 0; i < 5; ++i) say(f.h, *s, frame_of("subscribe", hash_a, "[101]"));
  ASSERT_EQ(c->frames.size(), 2u);
  EXPECT_NE(c->last().find(R"("code":15)"), std::string::npos);
  EXPECT_NE(c->last().find(R"("action":null)"), std::string::npos);
  f.h.advance(1000);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101]"));
  EXPECT_NE(c->last().find(R"("101":"normal")"), std::string::npos);
  s->on_closed(1000);
}

TEST(TrackerSocket, HeartbeatsAfterSilenceAndTimeout) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c, "X-Atmosphere-TrackMessageSize=true");
  f.h.advance(2000);
  s->on_tick(manual_now_ms);
  EXPECT_EQ(c->last(), "1|X");
  const std::size_t n = c->frames.size();
  f.h.advance(1000);
  s->on_tick(manual_now_ms);
  EXPECT_EQ(c->frames.size(), n) << "no X before the interval";
  // Client X frames keep it alive; silence for the timeout closes 4008.
  say(f.h, *s, "X");
  f.h.advance(5000);
  s->on_tick(manual_now_ms);
  EXPECT_EQ(c->close_code, 0);
  f.h.advance(1500);
  s->on_tick(manual_now_ms);
  EXPECT_EQ(c->close_code, 4008);
  s->on_closed(4008);
}

TEST(TrackerSocket, LifecycleUnblockAndCorrupt) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101,103]"));
  const std::size_t n = c->frames.size();
  f.publish_state("103", R"({"source_id":103,"lifecycle_event":"unblock"})", "acme", "lifecycle");
  ASSERT_EQ(c->frames.size(), n + 1);
  EXPECT_EQ(c->last(), R"({"type":"event","event":"lifecycle","data":{"source_id":103,)"
                       R"("lifecycle_event":"unblock"}})");
  add_tracker(f.h.dir(), "acme", "101", false, true);
  f.publish_state("101", R"({"source_id":101,"lifecycle_event":"corrupt"})", "acme", "lifecycle");
  EXPECT_NE(c->last().find("corrupt"), std::string::npos);
  add_tracker(f.h.dir(), "acme", "101");  // even if it came back, the socket dropped it
  f.publish_state("101", "{}");
  EXPECT_NE(c->last().find("corrupt"), std::string::npos);
  s->on_closed(1000);
}

TEST(TrackerSocket, UnsubscribeLogoutAndCloseRequest) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101]"));
  say(f.h, *s, frame_of("subscribe", hash_a2, "[102]"));
  say(f.h, *s, frame_of("unsubscribe", hash_a, "[102,999]"));
  EXPECT_EQ(c->last(), R"({"type":"response","action":"subscription/unsubscribe",)"
                       R"("events":["state"],"data":[102,999]})");
  std::size_t n = c->frames.size();
  f.publish_state("102", "{}");
  EXPECT_EQ(c->frames.size(), n);
  // Logout of hash_a: one frame, 101 goes; the socket stays open.
  f.cx.on_socket(*f.cx.sockets.find(s->tracking_id()),
                 [](tracker_socket& t) { t.logout(tracker::login_id_of(hash_a)); });
  f.h.run();
  ASSERT_EQ(c->frames.size(), n + 1);
  EXPECT_EQ(c->last(), R"({"type":"event","event":"logout","data":"session closed"})");
  f.publish_state("101", "{}");
  EXPECT_EQ(c->frames.size(), n + 1);
  EXPECT_EQ(c->close_code, 0);
  // A user-wide revocation (block, password): the other hash's logout, still open.
  say(f.h, *s, frame_of("subscribe", hash_a2, "[102]"));
  n = c->frames.size();
  f.h.h().kick_where([](const session_sink& k) { return k.who().user_id == "u1"; },
                     kick{close_reason::revoked, "credential revoked"});
  f.h.run();
  ASSERT_EQ(c->frames.size(), n + 1);
  EXPECT_EQ(c->last(), R"({"type":"event","event":"logout","data":"session closed"})");
  EXPECT_EQ(c->close_code, 0);
  // The close request: 1000.
  f.cx.on_socket(*f.cx.sockets.find(s->tracking_id()),
                 [](tracker_socket& t) { t.close_requested(); });
  f.h.run();
  EXPECT_EQ(c->close_code, 1000);
  s->on_closed(1000);
  EXPECT_FALSE(f.cx.sockets.find(s->tracking_id()));
}

TEST(TrackerSocket, AllowListChangeDropsExcludedTrackers) {
  fixture f;
  auto c = f.h.connection();
  auto s = f.open(*c);
  say(f.h, *s, frame_of("subscribe", hash_a, "[101,102]"));
  auto u = *f.h.dir().user("u1");
  u.trackers = std::vector<std::string>{"101"};
  f.h.dir().put_user(u);
  // The core's rights refresh (an admin PATCH) reaches the socket.
  f.h.h().refresh_where([](const session_sink& k) { return k.who().user_id == "u1"; },
                        [](const principal& p) { return std::optional<principal>(p); });
  f.h.run();
  EXPECT_EQ(c->close_code, 0);
  const std::size_t n = c->frames.size();
  f.publish_state("102", "{}");
  EXPECT_EQ(c->frames.size(), n);
  f.publish_state("101", "{}");
  EXPECT_EQ(c->frames.size(), n + 1);
  s->on_closed(1000);
}

}  // namespace
}  // namespace herald::testing
