// The control channel and node registry against a real redis-server: every message reaches
// every other node once and in stream order (also across CLIENT KILL TYPE pubsub), never its
// sender; a node starts after the messages already there; leases make the registry.
#include "store/redis/control.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace herald::redis
