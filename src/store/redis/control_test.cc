// The control channel and node registry against a real redis-server: every message reaches
// every other node once and in stream order (also across CLIENT KILL TYPE pubsub), never its
// sender; a node starts after the messages already there; leases make the registry.
#include "store/redis/control.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "store/redis/redis_server_for_test.h"
#include "store/test_helpers.h"

namespace herald::redis {
namespace {

using namespace std::chrono_literals;
using test::eventually;

// One node: its control and what it received.
struct node {
  std::mutex mu;
  std::vector<control_message> got;
  std::unique_ptr<control> ctl;
  std::size_t count() {
    std::lock_guard l(mu);
    return got.size();
  }
  std::vector<std::string> ids() {
    std::lock_guard l(mu);
    std::vector<std::string> out;
    for (const auto& m : got) out.push_back(m.id);
    return out;
  }
};

class redis_control : public ::testing::Test {
 protected:
  options conn() {
    options o;
    o.address = *parse_url(server_.url());
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    o.ping_interval_ms = 200;
    return o;
  }
  std::unique_ptr<node> start(const std::string& id, std::int64_t lease_ms = 3000,
                              std::int64_t renew_ms = 1000) {
    auto n = std::make_unique<node>();
    control_options co;
    co.node_id = id;
    co.lease_ms = lease_ms;
    co.renew_ms = renew_ms;
    co.page = 7;  // several pages per burst
    n->ctl = std::make_unique<control>(io_, conn(), co, [p = n.get()](const control_message& m) {
      std::lock_guard l(p->mu);
      p->got.push_back(m);
    });
    auto st = n->ctl->start(5000);
    EXPECT_TRUE(st.ok()) << st.err().message;
    return n;
  }
  // The stream's IDs by sender, in stream order.
  std::vector<std::string> stream_ids(const std::string& except) {
    connection c(io_, conn());
    c.start();
    EXPECT_TRUE(c.wait_connected(5000).ok());
    auto r = c.call(command{"XRANGE", "herald:ctl", "-", "+"});
    std::vector<std::string> out;
    for (const auto& e : r->elements) {
      const auto& f = e.elements[1].elements;
      if (f[1].str != except) out.push_back(e.elements[0].str);
    }
    return out;
  }

  redis_server_for_test server_;
  io_thread io_;
};

TEST_F(redis_control, a_message_reaches_the_others_once_and_never_its_sender) {
  auto a = start("a");
  auto b = start("b");
  ASSERT_TRUE(a->ctl->publish("kick", "con_1").ok());
  ASSERT_TRUE(eventually([&] { return b->count() == 1; }));
  std::this_thread::sleep_for(1200ms);  // a poll later: still once, and not to its sender
  EXPECT_EQ(b->count(), 1u);
  EXPECT_EQ(a->count(), 0u);
  std::lock_guard l(b->mu);
  EXPECT_EQ(b->got[0].node, "a");
  EXPECT_EQ(b->got[0].kind, "kick");
  EXPECT_EQ(b->got[0].arg, "con_1");
}

TEST_F(redis_control, a_node_starts_after_the_messages_already_there) {
  auto a = start("a");
  ASSERT_TRUE(a->ctl->publish("taken", "ses_old").ok());
  auto b = start("b");
  ASSERT_TRUE(a->ctl->publish("taken", "ses_new").ok());
  ASSERT_TRUE(eventually([&] { return b->count() == 1; }));
  std::lock_guard l(b->mu);
  EXPECT_EQ(b->got[0].arg, "ses_new");
}

TEST_F(redis_control, concurrent_senders_and_pubsub_kills_lose_nothing_and_keep_stream_order) {
  auto a = start("a");
  auto b = start("b");
  auto c = start("c");
  constexpr int per_sender = 150;
  std::atomic<bool> stop{false};
  std::thread killer([&] {
    connection k(io_, conn());
    k.start();
    (void)k.wait_connected(5000);
    while (!stop) {
      (void)k.call(command{"CLIENT", "KILL", "TYPE", "pubsub"});
      std::this_thread::sleep_for(15ms);
    }
  });
  auto send = [&](node& n, const std::string& tag) {
    for (int i = 0; i < per_sender; ++i)
      ASSERT_TRUE(n.ctl->publish("login_end", tag + std::to_string(i)).ok());
  };
  std::thread ta([&] { send(*a, "a"); });
  std::thread tb([&] { send(*b, "b"); });
  ta.join();
  tb.join();
  stop = true;
  killer.join();
  ASSERT_TRUE(eventually([&] { return c->count() == 2 * per_sender; }))
      << "c got " << c->count() << " of " << 2 * per_sender;
  EXPECT_EQ(c->ids(), stream_ids("c"));  // once each, in the stream's order
  ASSERT_TRUE(eventually([&] { return a->count() == per_sender; }));
  EXPECT_EQ(a->ids(), stream_ids("a"));
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(c->count(), 2u * per_sender);  // no duplicate after the next poll either
}

TEST_F(redis_control, the_registry_lists_nodes_with_a_live_lease) {
  auto a = start("a", 600, 100);
  auto b = start("b", 600, 100);
  {
    connection dead(io_, conn());  // a node that died without deregistering
    dead.start();
    ASSERT_TRUE(dead.wait_connected(5000).ok());
    ASSERT_TRUE(dead.call(command{"HSET", "herald:node:z", "node", "z"}).ok());
    ASSERT_TRUE(dead.call(command{"PEXPIRE", "herald:node:z", "300"}).ok());
    ASSERT_TRUE(dead.call(command{"SADD", "herald:nodes", "z"}).ok());
  }
  auto live = a->ctl->live_nodes();
  ASSERT_TRUE(live.ok()) << live.err().message;
  EXPECT_EQ(*live, (std::vector<std::string>{"a", "b", "z"}));
  std::this_thread::sleep_for(1000ms);  // z's lease lapses; a and b renew theirs
  EXPECT_EQ(*a->ctl->live_nodes(), (std::vector<std::string>{"a", "b"}));
  b->ctl->stop();  // a drain deregisters at once
  EXPECT_EQ(*a->ctl->live_nodes(), (std::vector<std::string>{"a"}));
}

// A lapsed node's session records (as the store's herald_records indexes them: recnode, held):
// two live nodes give them an expiry once — now + the record's window, else held_window_ms —
// skipping one another node has written since; the node back takes them back.
TEST_F(redis_control, a_lapsed_nodes_records_expire_once_skipping_another_holders) {
  connection r(io_, conn());
  r.start();
  ASSERT_TRUE(r.wait_connected(5000).ok());
  auto hold = [&](const std::string& key, const std::string& json, const std::string& node) {
    ASSERT_TRUE(r.call(command{"HSET", "herald:rec:session", key, json}).ok());
    ASSERT_TRUE(r.call(command{"HSET", "herald:recnode:session", key, node}).ok());
    ASSERT_TRUE(r.call(command{"SADD", "herald:held:session:" + node, key}).ok());
  };
  auto get = [&](const char* key, const std::string& k) {
    auto v = r.call(command{key[0] == 'Z' ? "ZSCORE" : "HGET",
                            key[0] == 'Z' ? "herald:recexp:session" : "herald:rec:session", k});
    return v && v->is_string() ? v->str : std::string("(nil)");
  };
  // z: a node whose records we set up by hand; it runs, then its lease "lapses" (DEL).
  control_options zo;
  zo.node_id = "z";
  zo.lease_ms = 60000;
  zo.renew_ms = 100;
  control z(io_, conn(), zo, [](const control_message&) {});
  ASSERT_TRUE(z.start(5000).ok());
  hold("ses_w", R"({"id":"ses_w","recovery_window_ms":5000,"node":"z"})", "z");
  hold("ses_d", R"({"id":"ses_d","node":"z"})", "z");
  // Adopted by y (a node not registered: nobody deals with its records here), and still in
  // z's set: expire_one goes by the record's holder, not the set.
  hold("ses_y", R"({"id":"ses_y","recovery_window_ms":5000,"node":"y"})", "y");
  ASSERT_TRUE(r.call(command{"SADD", "herald:held:session:z", "ses_y"}).ok());
  z.stop();  // its hash goes at once, its id stays in herald:nodes
  const std::int64_t before = now_ms();
  std::vector<std::string> notes;
  std::mutex notes_mu;
  auto live = [&](const std::string& id) {
    control_options o;
    o.node_id = id;
    o.renew_ms = 50;
    o.held_window_ms = 2000;
    o.on_note = [&](const std::string& line) {
      std::lock_guard l(notes_mu);
      notes.push_back(line);
    };
    auto c = std::make_unique<control>(io_, conn(), o, [](const control_message&) {});
    EXPECT_TRUE(c->start(5000).ok());
    return c;
  };
  auto a = live("a");
  auto b = live("b");
  ASSERT_TRUE(
      eventually([&] { return get("Z", "ses_w") != "(nil)" && get("Z", "ses_d") != "(nil)"; }));
  const std::int64_t after = now_ms();
  const std::int64_t w = std::stoll(get("Z", "ses_w")), d = std::stoll(get("Z", "ses_d"));
  EXPECT_GE(w, before + 5000);
  EXPECT_LE(w, after + 5000);
  EXPECT_GE(d, before + 2000);  // no window in the record: held_window_ms
  EXPECT_LE(d, after + 2000);
  EXPECT_EQ(get("H", "ses_w"), R"({"expires_ms":)" + std::to_string(w) +
                                   R"(,"id":"ses_w","recovery_window_ms":5000,"node":"z"})");
  EXPECT_EQ(get("Z", "ses_y"), "(nil)");  // another node's now: untouched
  EXPECT_EQ(get("H", "ses_y"), R"({"id":"ses_y","recovery_window_ms":5000,"node":"y"})");
  ASSERT_TRUE(eventually([&] {
    auto m = r.call(command{"SISMEMBER", "herald:nodes", "z"});
    return m && m->integer == 0;
  }));
  std::this_thread::sleep_for(300ms);  // renewals of both: never moved
  EXPECT_EQ(std::stoll(get("Z", "ses_w")), w);
  EXPECT_EQ(std::stoll(get("Z", "ses_d")), d);
  {
    std::lock_guard l(notes_mu);
    // One of a and b did it; the other, if it got there too, found nothing left to do.
    ASSERT_FALSE(notes.empty());
    EXPECT_EQ(notes[0],
              "node z's lease lapsed: 2 of its session records now expire within their recovery "
              "window");
    for (std::size_t i = 1; i < notes.size(); ++i)
      EXPECT_NE(notes[i].find(": 0 of its session records"), std::string::npos) << notes[i];
  }
  a->stop();
  b->stop();
}

// A node whose lease lapsed while it ran (a stall) takes its records back when it renews.
TEST_F(redis_control, a_node_back_from_a_stall_takes_its_records_back) {
  connection r(io_, conn());
  r.start();
  ASSERT_TRUE(r.wait_connected(5000).ok());
  control_options zo;
  zo.node_id = "z";
  zo.renew_ms = 1000;
  std::mutex mu;
  std::vector<std::string> notes;
  zo.on_note = [&](const std::string& line) {
    std::lock_guard l(mu);
    notes.push_back(line);
  };
  control z(io_, conn(), zo, [](const control_message&) {});
  ASSERT_TRUE(z.start(5000).ok());
  const std::string rec = R"({"id":"ses_1","node":"z"})";
  ASSERT_TRUE(r.call(command{"HSET", "herald:rec:session", "ses_1", rec}).ok());
  ASSERT_TRUE(r.call(command{"HSET", "herald:recnode:session", "ses_1", "z"}).ok());
  ASSERT_TRUE(r.call(command{"SADD", "herald:held:session:z", "ses_1"}).ok());
  control_options ao;
  ao.node_id = "a";
  ao.renew_ms = 20;
  control a(io_, conn(), ao, [](const control_message&) {});
  ASSERT_TRUE(a.start(5000).ok());
  auto expiry = [&] {
    auto v = r.call(command{"ZSCORE", "herald:recexp:session", "ses_1"});
    return v && v->is_string() ? v->str : std::string();
  };
  // z's lease "lapses" (its hash deleted, as the lease would), until a gives ses_1 an expiry
  // before z's next renewal.
  for (int i = 0; i < 10 && expiry().empty(); ++i) {
    ASSERT_TRUE(r.call(command{"DEL", "herald:node:z"}).ok());
    (void)eventually([&] { return !expiry().empty(); }, 300ms);
  }
  ASSERT_FALSE(expiry().empty());
  EXPECT_NE(r.call(command{"HGET", "herald:rec:session", "ses_1"})->str, rec);
  // z's next renewal finds its hash gone: it takes the record back.
  ASSERT_TRUE(eventually([&] {
    return expiry().empty() && r.call(command{"HGET", "herald:rec:session", "ses_1"})->str == rec;
  }));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard l(mu);
    return !notes.empty() && notes.back() ==
                                 "node z's lease had lapsed and is renewed: 1 of its session "
                                 "records no longer expire";
  }));
  a.stop();
  z.stop();
}

// A node started under the id of an earlier run (a restart on the same host and port) holds
// none of what that run left: those records get their expiry and no longer name anyone.
TEST_F(redis_control, a_restarted_node_releases_what_its_earlier_run_held) {
  connection r(io_, conn());
  r.start();
  ASSERT_TRUE(r.wait_connected(5000).ok());
  const std::string rec = R"({"id":"ses_1","recovery_window_ms":3000,"node":"z"})";
  ASSERT_TRUE(r.call(command{"HSET", "herald:rec:session", "ses_1", rec}).ok());
  ASSERT_TRUE(r.call(command{"HSET", "herald:recnode:session", "ses_1", "z"}).ok());
  ASSERT_TRUE(r.call(command{"SADD", "herald:held:session:z", "ses_1"}).ok());
  ASSERT_TRUE(r.call(command{"HSET", "herald:node:z", "node", "z"}).ok());  // still "live"
  const std::int64_t before = now_ms();
  auto z = start("z");
  const std::int64_t after = now_ms();
  auto exp = r.call(command{"ZSCORE", "herald:recexp:session", "ses_1"});
  ASSERT_TRUE(exp && exp->is_string());
  EXPECT_GE(std::stoll(exp->str), before + 3000);
  EXPECT_LE(std::stoll(exp->str), after + 3000);
  EXPECT_EQ(r.call(command{"SCARD", "herald:held:session:z"})->integer, 0);
  EXPECT_TRUE(r.call(command{"HGET", "herald:recnode:session", "ses_1"})->is_nil());
}

// Messages trimmed before a node read them: found exactly (each carries a dense number), and
// reported once, in stream order, before the messages after the gap.
TEST_F(redis_control, messages_trimmed_unread_are_counted_as_a_gap) {
  {
    connection c(io_, conn());  // small stream nodes, so MAXLEN ~ 10 trims every few entries
    c.start();
    ASSERT_TRUE(c.wait_connected(5000).ok());
    ASSERT_TRUE(c.call(command{"CONFIG", "SET", "stream-node-max-entries", "4"}).ok());
  }
  // b reads on an io_thread of its own, and stalls in its handler on the first message.
  io_thread b_io;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::string> seen;  // "m:<arg>" and "gap:<n>", in the order b heard them
  control_options co;
  co.node_id = "b";
  co.max_len = 10;
  co.page = 7;
  co.on_gap = [&](std::uint64_t n) {
    std::lock_guard l(mu);
    seen.push_back("gap:" + std::to_string(n));
  };
  control b(b_io, conn(), co, [&](const control_message& m) {
    std::unique_lock l(mu);
    seen.push_back("m:" + m.arg);
    cv.notify_all();
    if (m.arg == "0") cv.wait(l, [&] { return release; });
  });
  ASSERT_TRUE(b.start(5000).ok());
  control_options ao;
  ao.node_id = "a2";
  ao.max_len = 10;
  control a2(io_, conn(), ao, [](const control_message&) {});
  ASSERT_TRUE(a2.start(5000).ok());
  ASSERT_TRUE(a2.publish("kick", "0").ok());
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return !seen.empty(); }));
  }
  constexpr int more = 100;  // while b is stalled: the stream keeps about 10 of them
  for (int i = 1; i <= more; ++i) ASSERT_TRUE(a2.publish("kick", std::to_string(i)).ok());
  {
    std::lock_guard l(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard l(mu);
    return !seen.empty() && seen.back() == "m:" + std::to_string(more);
  }));
  std::lock_guard l(mu);
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0], "m:0");
  ASSERT_EQ(seen[1].rfind("gap:", 0), 0u) << seen[1];
  const int missed = std::stoi(seen[1].substr(4));
  const int first_after = std::stoi(seen[2].substr(2));
  EXPECT_EQ(missed, first_after - 1);  // exactly the ones trimmed: 1 .. first_after-1
  EXPECT_GT(missed, 50);
  std::printf("gap: %d of %d messages trimmed unread, then %d read in order\n", missed, more + 1,
              more - first_after + 1);
  EXPECT_EQ(seen.size(), 2u + static_cast<std::size_t>(more - first_after + 1));
  for (std::size_t i = 2; i < seen.size(); ++i)  // then every later one, in order, no other gap
    EXPECT_EQ(seen[i], "m:" + std::to_string(first_after + static_cast<int>(i) - 2));
  b.stop();
}

// A node that cannot read but loses nothing sees no gap.
TEST_F(redis_control, no_gap_without_trimming) {
  std::atomic<int> gaps{0};
  auto a = start("a");
  control_options co;
  co.node_id = "b";
  co.on_gap = [&](std::uint64_t) { ++gaps; };
  std::atomic<int> got{0};
  control b(io_, conn(), co, [&](const control_message&) { ++got; });
  ASSERT_TRUE(b.start(5000).ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(a->ctl->publish("kick", std::to_string(i)).ok());
  ASSERT_TRUE(eventually([&] { return got == 50; }));
  EXPECT_EQ(gaps, 0);
}

}  // namespace
}  // namespace herald::redis
