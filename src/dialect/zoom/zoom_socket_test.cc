#include "dialect/zoom/zoom_socket.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "dialect/common/socket_harness.h"

// State-machine tests of the zoom socket on the socket harness: one shard on the test thread, a
// fake connection and a manual clock, so every ordering and deadline is exact (zoom.md §3).
namespace herald {
namespace {

namespace json = boost::json;
using testing::fake_connection;
using testing::manual_now_ms;

json::object parse(const std::string& s) { return json::parse(s).as_object(); }
std::string module_of(const std::string& s) {
  return std::string(parse(s).at("module").as_string());
}
std::string content_of(const std::string& s) {
  return std::string(parse(s).at("content").as_string());
}

class zoom_socket_test : public ::testing::Test {
 protected:
  struct client {
    std::unique_ptr<fake_connection> conn;
    std::unique_ptr<zoom_socket> sock;
  };

  zoom_socket_test() {
    cx_->svc = &h_.svc();
    cx_->cfg.set(limits_);
    cx_->prefix = "/zoom";
    h_.dir().add_tenant(tenant_record{"other", ""});
    h_.dir().add_tenant(tenant_record{"kid", "acme"});
    app_record a;
    a.id = "app_other";
    a.tenant = "other";
    a.app_role = role::app;
    a.scopes = scope_subscribe;
    h_.dir().put_app(a);
    a.id = "app_pub";
    a.tenant = "acme";
    a.app_role = role::publisher;
    a.scopes = scope_publish;
    h_.dir().put_app(a);
    a.id = "app_2";
    a.app_role = role::app;
    a.scopes = scope_subscribe;
    h_.dir().put_app(a);
    sub_id_ = store_sub("acme", {"meeting.*"}, false);
  }

  std::string store_sub(const std::string& tenant, std::vector<std::string> events, bool subtree,
                        const std::string& app = {}) {
    json::array ev;
    for (auto& e : events) ev.emplace_back(e);
    const std::string id = "sub" + std::to_string(++subs_) + std::string(19, 'x');
    json::object o{{"id", id},   {"tenant", tenant}, {"app", app},
                   {"name", ""}, {"events", ev},     {"include_sub_accounts", subtree}};
    EXPECT_TRUE(h_.svc().st.put_record(zoom_record_kind, id, json::serialize(o)).ok());
    return id;
  }

  // Opens a socket; `run` false leaves the store read's continuation posted (validation pending).
  client open(const std::string& query, bool run = true) {
    client c{h_.connection(), nullptr};
    http_request up;
    up.path = "/zoom/ws";
    up.query = query;
    c.sock = std::make_unique<zoom_socket>(cx_, *c.conn, up);
    c.sock->on_open();
    if (run) h_.run();
    return c;
  }
  std::string query(const std::string& sub, const std::string& app = "app_1") {
    return "subscriptionId=" + sub + "&access_token=" + h_.access_token(app);
  }
  void say(client& c, const std::string& text, bool binary = false) {
    c.sock->on_traffic();
    c.sock->on_message(text, binary);
    h_.run();
  }
  event_ptr publish(const std::string& type, const std::string& tenant = "acme",
                    const std::string& data = R"({"id":1})", const std::string& app = {}) {
    auto e = std::make_shared<event>();
    e->id = "evt_" + std::to_string(++offset_);
    e->offset = offset_;
    e->topic = "/m/" + type;
    e->type = type;
    e->tenant = tenant;
    e->app = app;
    e->time_ms = manual_now_ms;
    e->data = data;
    h_.h().publish({e});
    h_.run();
    return e;
  }
  void expect_failure(const client& c, const std::string& content, int code) {
    ASSERT_EQ(c.conn->frames.size(), 1u);
    auto f = parse(c.conn->frames[0]);
    EXPECT_EQ(f.at("module").as_string(), "build_connection");
    EXPECT_FALSE(f.at("success").as_bool());
    EXPECT_EQ(f.at("content").as_string(), content);
    EXPECT_EQ(c.conn->close_code, code);
  }

  testing::socket_harness h_;
  zoom_limits limits_;
  std::shared_ptr<zoom_context> cx_ = std::make_shared<zoom_context>();
  std::string sub_id_;
  int subs_ = 0;
  std::int64_t offset_ = 0;
};

TEST_F(zoom_socket_test, success_frame_first_then_only_subscribed_events_in_order) {
  auto c = open(query(sub_id_));
  ASSERT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(c.conn->frames[0],
            R"({"module":"build_connection","success":true,"content":"success","header":{}})");
  publish("meeting.started");
  publish("webinar.started");  // not subscribed
  publish("meeting.ended");
  ASSERT_EQ(c.conn->frames.size(), 3u);
  for (int i = 1; i <= 2; ++i) {
    auto f = parse(c.conn->frames[i]);
    EXPECT_EQ(f.at("module").as_string(), "message");
    ASSERT_TRUE(f.at("content").is_string());
    auto inner = json::parse(f.at("content").as_string()).as_object();
    EXPECT_EQ(inner.at("event").as_string(), i == 1 ? "meeting.started" : "meeting.ended");
    EXPECT_EQ(inner.at("payload").as_object().at("account_id").as_string(), "acme");
    EXPECT_TRUE(f.at("header").as_object().empty());
  }
  EXPECT_EQ(c.conn->close_code, 0);
}

TEST_F(zoom_socket_test, missing_or_empty_token_is_token_is_empty_4001) {
  auto a = open("subscriptionId=" + sub_id_);
  expect_failure(a, "token is empty", 4001);
  EXPECT_EQ(a.conn->close_text, "invalid_token");
  auto b = open("subscriptionId=" + sub_id_ + "&access_token=");
  expect_failure(b, "token is empty", 4001);
}

TEST_F(zoom_socket_test, a_bad_token_is_invalid_token_even_without_a_subscription) {
  auto c = open("access_token=nope.nope");  // the token is checked before the subscription
  expect_failure(c, "Invalid Token", 4001);
}

TEST_F(zoom_socket_test, subscription_problems_are_4003) {
  expect_failure(open(query("unknown")), "Invalid subscriptionId", 4003);
  expect_failure(open("access_token=" + h_.access_token()), "Invalid subscriptionId", 4003);
  const std::string theirs = store_sub("other", {"meeting.*"}, false);
  expect_failure(open(query(theirs)), "Invalid subscriptionId", 4003);
  const std::string bound = store_sub("acme", {"meeting.*"}, false, "app_2");
  expect_failure(open(query(bound)), "Invalid subscriptionId", 4003);
  expect_failure(open(query(sub_id_, "app_pub")), "Invalid subscriptionId", 4003);
  auto c = open(query(bound, "app_2"));  // its own app may open it
  EXPECT_TRUE(parse(c.conn->frames[0]).at("success").as_bool());
}

TEST_F(zoom_socket_test, the_connection_limit_is_4029) {
  h_.svc().core.max_connections_per_app = 1;
  auto a = open(query(sub_id_));
  const std::string other = store_sub("acme", {"x"}, false);
  auto b = open(query(other));
  expect_failure(b, "Too many connections", 4029);
  EXPECT_EQ(b.conn->close_text, "too_many_connections");
  EXPECT_EQ(a.conn->close_code, 0);
}

TEST_F(zoom_socket_test, no_success_within_validate_timeout_is_1013) {
  auto c = open(query(sub_id_), false);  // the store read never comes back
  const std::int64_t deadline = manual_now_ms + 10 * 1000;
  EXPECT_EQ(c.sock->on_tick(deadline), deadline + 1);
  EXPECT_TRUE(c.conn->frames.empty());
  EXPECT_EQ(c.sock->on_tick(deadline + 1), 0);
  expect_failure(c, "Service unavailable", 1013);
  EXPECT_EQ(c.conn->close_text, "try_again_later");
  h_.run();  // the late store answer finds the socket closed: nothing more is written
  EXPECT_EQ(c.conn->frames.size(), 1u);
}

TEST_F(zoom_socket_test, heartbeats_during_validation_are_answered_after_success) {
  auto c = open(query(sub_id_), false);
  c.sock->on_message(R"({"module":"heartbeat"})", false);
  c.sock->on_message("heartbeat", false);
  EXPECT_TRUE(c.conn->frames.empty());
  h_.run();
  ASSERT_EQ(c.conn->frames.size(), 3u);
  EXPECT_EQ(module_of(c.conn->frames[0]), "build_connection");
  EXPECT_EQ(content_of(c.conn->frames[1]), "live");
  EXPECT_EQ(content_of(c.conn->frames[2]), "live");
}

TEST_F(zoom_socket_test, heartbeats_after_a_failure_get_nothing) {
  auto c = open(query("unknown"), false);
  c.sock->on_message("heartbeat", false);
  h_.run();
  expect_failure(c, "Invalid subscriptionId", 4003);
}

TEST_F(zoom_socket_test, heartbeat_is_answered_live_at_once) {
  auto c = open(query(sub_id_));
  say(c, R"({"module":"heartbeat","ts":1})");
  ASSERT_EQ(c.conn->frames.size(), 2u);
  EXPECT_EQ(c.conn->frames[1],
            R"({"module":"heartbeat","success":true,"content":"live","header":{}})");
}

TEST_F(zoom_socket_test, unknown_modules_garbage_and_binary_are_ignored) {
  auto c = open(query(sub_id_));
  say(c, R"({"module":"subscribe"})");
  say(c, "garbage{");
  say(c, "\x01\x02", true);
  say(c, R"({"module":"heartbeat"})", true);  // binary is never a heartbeat
  EXPECT_EQ(c.conn->frames.size(), 1u);
  EXPECT_EQ(c.conn->close_code, 0);
}

TEST_F(zoom_socket_test, idle_deadline_is_exact_and_any_frame_moves_it) {
  auto c = open(query(sub_id_));
  const std::int64_t t0 = manual_now_ms;
  const std::int64_t idle = 90 * 1000;
  EXPECT_EQ(c.sock->on_tick(t0 + 1000), t0 + idle + 1);
  manual_now_ms = t0 + 60 * 1000;
  c.sock->on_traffic();  // a control frame counts
  EXPECT_NE(c.sock->on_tick(t0 + idle + 1), 0);
  EXPECT_EQ(c.conn->close_code, 0);
  EXPECT_EQ(c.sock->on_tick(manual_now_ms + idle), manual_now_ms + idle + 1);
  EXPECT_EQ(c.sock->on_tick(manual_now_ms + idle + 1), 0);
  EXPECT_EQ(c.conn->close_code, 4008);
  EXPECT_EQ(c.conn->close_text, "heartbeat timeout");
  EXPECT_EQ(c.conn->frames.size(), 1u);  // no frame before the close
}

TEST_F(zoom_socket_test, frames_past_the_rate_close_1008) {
  auto c = open(query(sub_id_));
  for (int i = 0; i < 100; ++i) c.sock->on_message("x", false);  // 10/s over 10 s: the budget
  EXPECT_EQ(c.conn->close_code, 0);
  manual_now_ms += 100;  // one more frame's worth of budget
  c.sock->on_message("x", false);
  EXPECT_EQ(c.conn->close_code, 0);
  c.sock->on_message("x", false);
  EXPECT_EQ(c.conn->close_code, 1008);
  EXPECT_EQ(c.conn->close_text, "rate limit");
}

TEST_F(zoom_socket_test, a_newer_socket_replaces_the_older_and_takes_its_events) {
  auto a = open(query(sub_id_));
  auto b = open(query(sub_id_));
  EXPECT_EQ(a.conn->close_code, 1000);
  EXPECT_EQ(a.conn->close_text, "replaced");
  EXPECT_EQ(b.conn->close_code, 0);
  publish("meeting.started");
  EXPECT_EQ(a.conn->frames.size(), 1u);
  EXPECT_EQ(b.conn->frames.size(), 2u);
  // The replaced socket's session left the registry: a third socket replaces b, not a.
  a.sock->on_closed(1000);
  auto c = open(query(sub_id_));
  EXPECT_EQ(b.conn->close_text, "replaced");
}

TEST_F(zoom_socket_test, a_superseded_socket_drops_what_is_still_on_its_way) {
  auto a = open(query(sub_id_));
  // The replacement's mark lands before its kick runs (a kick to another shard is posted).
  cx_->sockets.claim(
      sub_id_, {"con_new", sink_ref{}, nullptr, std::make_shared<std::atomic<bool>>(false)}, true);
  publish("meeting.started");
  EXPECT_EQ(a.conn->frames.size(), 1u);
}

// Cluster mode: another node's claim (zoom_on_broadcast) closes the sockets here that claimed
// no later, "replaced", and they drop what is on its way; a newer one here stays (§3.5).
TEST_F(zoom_socket_test, another_nodes_claim_replaces_only_older_sockets_here) {
  auto a = open(query(sub_id_));
  zoom_on_broadcast(*cx_, "claim " + sub_id_ + " " + std::to_string(manual_now_ms - 1));
  h_.run();
  EXPECT_EQ(a.conn->close_code, 0);  // claimed after the other node's socket: it wins
  zoom_on_broadcast(*cx_, "claim " + sub_id_ + " " + std::to_string(manual_now_ms));
  h_.run();
  EXPECT_EQ(a.conn->close_code, 1000);
  EXPECT_EQ(a.conn->close_text, "replaced");
  publish("meeting.started");
  EXPECT_EQ(a.conn->frames.size(), 1u);  // the success frame only
  auto b = open(query(sub_id_));
  for (const char* bad : {"claim", "claim x", "claim x y", "nope x", ""})
    zoom_on_broadcast(*cx_, bad);
  h_.run();
  EXPECT_EQ(b.conn->close_code, 0);
}

// Cluster mode: a subscription changed or deleted through another node's admin API.
TEST_F(zoom_socket_test, another_nodes_change_and_delete_reach_the_open_socket) {
  auto c = open(query(sub_id_));
  json::object o{{"id", sub_id_},
                 {"tenant", "acme"},
                 {"app", ""},
                 {"name", ""},
                 {"events", json::array{"webinar.*"}},
                 {"include_sub_accounts", false}};
  ASSERT_TRUE(h_.svc().st.put_record(zoom_record_kind, sub_id_, json::serialize(o)).ok());
  zoom_on_broadcast(*cx_, "changed " + sub_id_);
  h_.run();
  publish("meeting.started");
  publish("webinar.started");
  ASSERT_EQ(c.conn->frames.size(), 2u);
  ASSERT_TRUE(h_.svc().st.erase_record(zoom_record_kind, sub_id_).ok());
  zoom_on_broadcast(*cx_, "changed " + sub_id_);
  h_.run();
  EXPECT_EQ(c.conn->close_code, 1000);
  EXPECT_EQ(c.conn->close_text, "subscription deleted");
}

TEST_F(zoom_socket_test, without_single_connection_every_socket_gets_every_event) {
  limits_.single_connection = false;
  cx_->cfg.set(limits_);  // as a SIGHUP would
  auto a = open(query(sub_id_));
  auto b = open(query(sub_id_));
  publish("meeting.started");
  EXPECT_EQ(a.conn->frames.size(), 2u);
  EXPECT_EQ(b.conn->frames.size(), 2u);
}

TEST_F(zoom_socket_test, sub_accounts_only_with_include_sub_accounts) {
  auto own = open(query(sub_id_));
  const std::string wide = store_sub("acme", {"meeting.*"}, true);
  auto all = open(query(wide));
  publish("meeting.started", "kid");
  publish("meeting.started", "acme");
  ASSERT_EQ(own.conn->frames.size(), 2u);
  ASSERT_EQ(all.conn->frames.size(), 3u);
  auto kid = json::parse(content_of(all.conn->frames[1])).as_object();
  EXPECT_EQ(kid.at("payload").as_object().at("account_id").as_string(), "kid");
}

TEST_F(zoom_socket_test, an_event_naming_an_app_reaches_only_that_app) {
  auto mine = open(query(sub_id_));
  const std::string s2 = store_sub("acme", {"meeting.*"}, false);
  auto theirs = open(query(s2, "app_2"));
  publish("meeting.started", "acme", "{}", "app_2");
  EXPECT_EQ(mine.conn->frames.size(), 1u);
  EXPECT_EQ(theirs.conn->frames.size(), 2u);
}

TEST_F(zoom_socket_test, a_deleted_app_closes_4001_without_a_frame) {
  auto c = open(query(sub_id_));
  h_.h().kick_where([](const session_sink& k) { return k.who().app_id == "app_1"; },
                    kick{close_reason::revoked, "credential revoked"});
  h_.run();
  EXPECT_EQ(c.conn->close_code, 4001);
  EXPECT_EQ(c.conn->frames.size(), 1u);
}

TEST_F(zoom_socket_test, herald_extras_and_resume) {
  auto a = open(query(sub_id_) + "&herald=1");
  auto ok = parse(a.conn->frames[0]);
  auto header = ok.at("header").as_object();
  EXPECT_FALSE(header.at("recovered").as_bool());
  const std::string token(header.at("resume_token").as_string());
  publish("meeting.started");
  EXPECT_EQ(parse(a.conn->frames[1]).at("header").as_object().at("seq").as_int64(), 1);
  a.sock->on_closed(1006);
  h_.run();
  publish("meeting.ended");  // missed
  auto b = open(query(sub_id_) + "&herald=1&resume=" + token + "&last_seq=1");
  ASSERT_EQ(b.conn->frames.size(), 2u);
  EXPECT_TRUE(parse(b.conn->frames[0]).at("header").as_object().at("recovered").as_bool());
  auto missed = parse(b.conn->frames[1]);
  EXPECT_EQ(missed.at("header").as_object().at("seq").as_int64(), 2);
  EXPECT_EQ(json::parse(missed.at("content").as_string()).as_object().at("event").as_string(),
            "meeting.ended");
}

TEST_F(zoom_socket_test, patch_applies_to_the_open_socket) {
  auto c = open(query(sub_id_));
  zoom_subscription rec{sub_id_, "acme", "", "", {"webinar.*"}, false, 0};
  c.sock->apply(rec);
  h_.run();
  publish("meeting.started");
  publish("webinar.started");
  ASSERT_EQ(c.conn->frames.size(), 2u);
  EXPECT_EQ(json::parse(content_of(c.conn->frames[1])).as_object().at("event").as_string(),
            "webinar.started");
}

TEST_F(zoom_socket_test, connection_info_names_the_subscription) {
  auto c = open(query(sub_id_));
  auto extras = parse(c.sock->info().extras_json);
  EXPECT_EQ(extras.at("subscription_id").as_string(), sub_id_);
}

}  // namespace
}  // namespace herald
