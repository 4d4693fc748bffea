// The Redis connection layer against a real redis-server (started per test on a free loopback
// port, killed by PID): pipelining and order, binary-safe arguments, error replies, nested
// arrays, timeouts, the reply and send-buffer bounds, the server killed and restarted, the
// SELECTed database, CONFIG GET at start, and the subscriber noticing CLIENT KILL TYPE pubsub.
#include "store/redis/connection.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/redis/redis_server_for_test.h"
#include "store/redis/subscriber.h"
#include "store/test_helpers.h"

namespace herald::redis {
namespace {

using namespace std::chrono_literals;

options opts_for(const std::string& text) {
  auto u = parse_url(text);
  EXPECT_TRUE(u.ok());
  options o;
  o.address = *u;
  o.reconnect_min_ms = 20;
  o.reconnect_max_ms = 200;
  return o;
}

using test::eventually;

class redis_connection : public ::testing::Test {
 protected:
  // A connection, started and connected (a test fails if it does not connect in 5 s).
  std::unique_ptr<connection> open(options o) {
    auto c = std::make_unique<connection>(io_, std::move(o));
    c->start();
    auto st = c->wait_connected(5000);
    EXPECT_TRUE(st.ok()) << st.err().message;
    return c;
  }
  std::unique_ptr<connection> open(std::uint32_t db = 0) { return open(opts_for(server_.url(db))); }

  redis_server_for_test server_;
  io_thread io_;
};

TEST_F(redis_connection, PipelinesTenThousandCommandsInOrder) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  constexpr int n = 10000;
  std::mutex mu;
  std::vector<std::int64_t> seen;
  std::promise<void> all;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    c.exec(command{"INCR", "counter"}, [&](result<reply> r) {
      std::lock_guard lock(mu);
      seen.push_back(r.ok() && r->type == reply::kind::integer ? r->integer : -1);
      if (seen.size() == n) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(30s), std::future_status::ready);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], i + 1) << "at " << i;
  std::printf("pipelined %d INCR in %.1f ms (%.0f commands/s)\n", n, ms.count(),
              n / ms.count() * 1000);
  auto r = c.call(command{"GET", "counter"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "10000");
  EXPECT_EQ(c.connects(), 1u);
}

// A figure for the cluster's sizing model: one blocking round trip (the cost of a command that
// is not pipelined), measured over 2,000 sequential PINGs.
TEST_F(redis_connection, MeasuresTheRoundTrip) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  constexpr int n = 2000;
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = c.call(command{"PING"});
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->str, "PONG");
  }
  std::sort(us.begin(), us.end());
  std::printf("round trip over %d sequential PINGs: p50 %.0f us, p99 %.0f us\n", n, us[n / 2],
              us[n * 99 / 100]);
}

TEST_F(redis_connection, ArgumentsAreBinarySafe) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  std::string key("k\0\r\n*$", 6);
  auto set = c.call(command{"SET", key, all_bytes + "\r\n" + all_bytes});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->str, "OK");
  auto get = c.call(command{"GET", key});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->type, reply::kind::string);
  EXPECT_EQ(get->str, all_bytes + "\r\n" + all_bytes);
  auto empty = c.call(command{"SET", "e", ""});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(c.call(command{"STRLEN", "e"})->integer, 0);
  EXPECT_TRUE(c.call(command{"GET", "missing"})->is_nil());
}

TEST_F(redis_connection, ErrorRepliesAreRepliesAndTheConnectionGoesOn) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  auto r = c.call(command{"NO-SUCH-COMMAND", "x"});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_TRUE(r->is_error());
  EXPECT_NE(r->str.find("unknown command"), std::string::npos) << r->str;
  ASSERT_TRUE(c.call(command{"SET", "s", "text"}).ok());
  r = c.call(command{"INCR", "s"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_NE(r->str.find("not an integer"), std::string::npos) << r->str;
  // An error inside an array (EXEC of a transaction whose second command fails at run time).
  ASSERT_TRUE(c.call(command{"MULTI"}).ok());
  ASSERT_EQ(c.call(command{"SET", "a", "1"})->str, "QUEUED");
  ASSERT_EQ(c.call(command{"LPUSH", "a", "x"})->str, "QUEUED");
  r = c.call(command{"EXEC"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(r->elements[0].str, "OK");
  EXPECT_TRUE(r->elements[1].is_error());
  EXPECT_NE(r->elements[1].str.find("WRONGTYPE"), std::string::npos);
  EXPECT_EQ(c.call(command{"PING"})->str, "PONG");
  EXPECT_EQ(c.connects(), 1u);
}

TEST_F(redis_connection, NestedArrays) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  auto r = c.call(command{"EVAL", "return {1, {2, {3, 'x', {}}}, 'y', false, {err='boom'}}", "0"});
  ASSERT_TRUE(r.ok()) << r.err().message;
  // Lua false is nil; a table with err is an error element.
  EXPECT_EQ(r->to_string(),
            "[(integer) 1, [(integer) 2, [(integer) 3, x, []]], y, (nil), "
            "(error) boom]");
  ASSERT_TRUE(c.call(command{"XADD", "st", "1-1", "f", "v"}).ok());
  r = c.call(command{"XREAD", "STREAMS", "st", "0"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->to_string(), "[[st, [[1-1, [f, v]]]]]");
}

TEST_F(redis_connection, ACommandTimesOutAndADeadConnectionIsReplaced) {
  auto o = opts_for(server_.url());
  o.command_timeout_ms = 300;
  auto c_ptr = open(o);
  auto& c = *c_ptr;
  // BLPOP on an empty list blocks: no byte comes back, exactly like a dead peer.
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.call(command{"BLPOP", "nothing", "0"});
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_NE(r.err().message.find("no reply within 300 ms"), std::string::npos) << r.err().message;
  EXPECT_GE(waited, 290ms);
  EXPECT_LT(waited, 2000ms);
  // Nothing was read while it waited: the connection was deemed dead, dropped and replaced.
  ASSERT_TRUE(eventually([&] { return c.connects() == 2 && c.connected(); }));
  EXPECT_EQ(c.call(command{"PING"})->str, "PONG");
  // A per-command timeout overrides the default.
  t0 = std::chrono::steady_clock::now();
  r = c.call(command{"BLPOP", "nothing", "0"}, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("no reply within 100 ms"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);  // loose: CI machines are shared
}

TEST_F(redis_connection, AReplyPastTheBoundFailsNamingItAndTheConnectionRecovers) {
  auto o = opts_for(server_.url());
  o.max_reply_bytes = 1 << 20;
  auto c_ptr = open(o);
  auto& c = *c_ptr;
  ASSERT_TRUE(c.call(command{"SET", "big", std::string(2 << 20, 'b')}).ok());
  std::promise<result<reply>> behind;
  auto r = c.call(command{"GET", "big"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::too_large);
  EXPECT_NE(r.err().message.find("redis.max_reply_bytes (1048576 bytes)"), std::string::npos)
      << r.err().message;
  ASSERT_TRUE(eventually([&] { return c.connects() == 2 && c.connected(); }));
  r = c.call(command{"STRLEN", "big"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->integer, 2 << 20);
  r = c.call(command{"GETRANGE", "big", "0", "9"});
  EXPECT_EQ(r->str, "bbbbbbbbbb");
}

TEST_F(redis_connection, TheOutgoingBufferIsBounded) {
  auto o = opts_for(server_.url());
  o.max_send_buffer_bytes = 65536;
  auto c_ptr = open(o);
  auto& c = *c_ptr;
  auto r = c.call(command{"SET", "k", std::string(100000, 'x')});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::too_large);
  EXPECT_NE(r.err().message.find("redis.max_send_buffer_bytes (65536 bytes)"), std::string::npos);
  EXPECT_EQ(c.call(command{"SET", "k", std::string(1000, 'x')})->str, "OK");
  EXPECT_EQ(c.connects(), 1u);  // refusing a command does not drop the connection
}

TEST_F(redis_connection, CommandsAwaitingRepliesAreBounded) {
  auto o = opts_for(server_.url());
  o.max_pending_commands = 10;
  auto c_ptr = open(o);
  auto& c = *c_ptr;
  std::vector<std::future<result<reply>>> waiting;
  for (int i = 0; i < 10; ++i) {  // a blocked BLPOP holds the 9 behind it
    auto p = std::make_shared<std::promise<result<reply>>>();
    waiting.push_back(p->get_future());
    c.exec(
        i == 0 ? command{"BLPOP", "q", "0"} : command{"PING"},
        [p](result<reply> r) { p->set_value(std::move(r)); }, 30000);
  }
  auto r = c.call(command{"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::too_many_requests);
  EXPECT_NE(r.err().message.find("redis.max_pending_commands (10)"), std::string::npos)
      << r.err().message;
  auto other_ptr = open();
  ASSERT_EQ(other_ptr->call(command{"LPUSH", "q", "v"})->integer, 1);  // unblocks the BLPOP
  for (auto& f : waiting) {
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(c.call(command{"PING"})->str, "PONG");
}

TEST_F(redis_connection, KilledServerFailsPendingCommandsThenReconnectsAfterRestart) {
  std::vector<std::string> transitions;
  std::mutex mu;
  connection c(io_, opts_for(server_.url()));
  c.set_state_handler([&](bool up, const std::string& why) {
    std::lock_guard lock(mu);
    transitions.push_back(up ? "up" : "down: " + why);
  });
  c.start();
  ASSERT_TRUE(c.wait_connected(5000).ok());
  // Commands in flight when the server dies: a blocked BLPOP and 100 pipelined behind it.
  constexpr int n = 101;
  std::vector<std::future<result<reply>>> pending;
  for (int i = 0; i < n; ++i) {
    auto p = std::make_shared<std::promise<result<reply>>>();
    pending.push_back(p->get_future());
    command cmd = i == 0 ? command{"BLPOP", "nothing", "0"} : command{"INCR", "n"};
    c.exec(
        cmd, [p](result<reply> r) { p->set_value(std::move(r)); }, 30000);
  }
  std::this_thread::sleep_for(100ms);  // written and waiting on the server
  server_.kill_for_test();
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::unavailable);
    EXPECT_NE(r.err().message.find("connection lost"), std::string::npos) << r.err().message;
  }
  ASSERT_TRUE(eventually([&] { return !c.connected(); }));
  // While it is down a command fails at once, naming the server.
  auto r = c.call(command{"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("not connected to " + server_.url()), std::string::npos)
      << r.err().message;
  std::size_t downs_before = 0;
  {
    std::lock_guard lock(mu);
    downs_before = transitions.size();
  }
  std::this_thread::sleep_for(400ms);  // refused attempts, spaced 20, 40, 80, 160, 200 ms
  {
    std::lock_guard lock(mu);
    auto attempts = transitions.size() - downs_before;
    EXPECT_GE(attempts, 2u);  // it keeps trying...
    EXPECT_LE(attempts, 8u);  // ...with backoff, not in a hot loop
  }
  server_.restart_for_test();
  ASSERT_TRUE(c.wait_connected(5000).ok());
  EXPECT_EQ(c.call(command{"PING"})->str, "PONG");
  EXPECT_EQ(c.connects(), 2u);
  std::lock_guard lock(mu);
  ASSERT_GE(transitions.size(), 3u);
  EXPECT_EQ(transitions.front(), "up");
  EXPECT_EQ(transitions[1].rfind("down: ", 0), 0u) << transitions[1];  // EOF, or a reset
  EXPECT_EQ(transitions.back(), "up");
}

TEST_F(redis_connection, SelectsTheDatabaseOfTheUrlOnEveryConnection) {
  auto db3_ptr = open(3);
  auto db0_ptr = open(0);
  auto &db3 = *db3_ptr, &db0 = *db0_ptr;
  ASSERT_TRUE(db3.call(command{"SET", "where", "three"}).ok());
  EXPECT_TRUE(db0.call(command{"GET", "where"})->is_nil());
  EXPECT_EQ(db3.call(command{"GET", "where"})->str, "three");
  // Again after a reconnection: the handshake SELECTs it anew.
  ASSERT_TRUE(db0.call(command{"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}).ok());
  ASSERT_TRUE(eventually([&] { return db3.connects() == 2 && db3.connected(); }));
  EXPECT_EQ(db3.call(command{"GET", "where"})->str, "three");
  auto name = db3.call(command{"CLIENT", "GETNAME"});
  EXPECT_EQ(name->str, "herald");
}

TEST_F(redis_connection, ADatabaseOutOfRangeIsAClearError) {
  connection c(io_, opts_for(server_.url(99)));
  c.start();
  auto st = c.wait_connected(1000);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("SELECT 99: ERR DB index is out of range"), std::string::npos)
      << st.err().message;
  auto r = c.call(command{"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("SELECT 99"), std::string::npos) << r.err().message;
}

TEST_F(redis_connection, NoServerIsAClearError) {
  auto port = server_.port();
  server_.kill_for_test();
  connection c(io_, opts_for("redis://127.0.0.1:" + std::to_string(port)));
  c.start();
  auto st = c.wait_connected(300);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("connect to redis://127.0.0.1:" + std::to_string(port) +
                                  "/0: Connection refused"),
            std::string::npos)
      << st.err().message;
}

TEST_F(redis_connection, ReadsWhatAcknowledgedMeans) {
  auto c_ptr = open();
  auto& c = *c_ptr;
  auto cfg = read_server_config(c);
  ASSERT_TRUE(cfg.ok()) << cfg.err().message;
  EXPECT_EQ(cfg->appendonly, "no");
  EXPECT_EQ(cfg->appendfsync, "everysec");
  EXPECT_EQ(cfg->maxmemory_policy, "noeviction");
  EXPECT_FALSE(cfg->evicting());
  EXPECT_NE(cfg->durability().find("no AOF"), std::string::npos);
  ASSERT_TRUE(c.call(command{"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}).ok());
  ASSERT_TRUE(c.call(command{"CONFIG", "SET", "appendonly", "yes"}).ok());
  ASSERT_TRUE(c.call(command{"CONFIG", "SET", "appendfsync", "always"}).ok());
  cfg = read_server_config(c);
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(cfg->evicting());
  EXPECT_EQ(cfg->durability(),
            "appendonly=yes appendfsync=always: an acknowledged write survives a Redis crash");
}

TEST_F(redis_connection, SubscriberGetsPushesAndNoticesClientKill) {
  std::mutex mu;
  std::vector<std::string> got, barriers, states;
  auto o = opts_for(server_.url());
  o.client_name = "herald-sub";
  subscriber sub(
      io_, o,
      [&](message&& m) {
        std::lock_guard lock(mu);
        (m.barrier ? barriers : got).push_back(m.pattern + "|" + m.channel + "|" + m.payload);
      },
      [&](bool up, const std::string& why) {
        std::lock_guard lock(mu);
        states.push_back(up ? "up" : "down: " + why);
      });
  sub.subscribe({"news"});
  sub.psubscribe({"t.*"});
  sub.start();
  ASSERT_TRUE(sub.wait_connected(5000).ok());
  ASSERT_TRUE(eventually([&] { return sub.confirmed() == 2; }));
  auto pub_ptr = open();
  auto& pub = *pub_ptr;
  std::string bin("a\0\r\nb", 5);
  EXPECT_EQ(pub.call(command{"PUBLISH", "news", bin})->integer, 1);
  EXPECT_EQ(pub.call(command{"PUBLISH", "t.1", "x"})->integer, 1);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return got.size() == 2;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(got[0], "|news|" + bin);
    EXPECT_EQ(got[1], "t.*|t.1|x");
  }
  // Redis drops the pub/sub connection: noticed at once, then it comes back subscribed.
  auto killed = pub.call(command{"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(killed->integer, 1);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return states.size() >= 2;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(states[1], "down: connection closed by the server");
  }
  ASSERT_TRUE(eventually([&] { return sub.connects() == 2 && sub.confirmed() == 2; }));
  EXPECT_EQ(pub.call(command{"PUBLISH", "news", "again"})->integer, 1);
  // A barrier after an unsubscribe: once it is answered, Redis ran the unsubscribe.
  sub.unsubscribe({"news"});
  sub.barrier("b1");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return barriers.size() == 1;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(barriers[0], "||b1");
  }
  ASSERT_TRUE(eventually([&] { return sub.confirmed() == 1; }));
  EXPECT_EQ(pub.call(command{"PUBLISH", "news", "unheard"})->integer, 0);
  EXPECT_EQ(pub.call(command{"PUBLISH", "t.2", "y"})->integer, 1);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return got.size() == 4;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(got[2], "|news|again");
  EXPECT_EQ(got[3], "t.*|t.2|y");
}

TEST_F(redis_connection, SubscriberNoticesAStalledServer) {
  std::atomic<int> downs{0};
  auto o = opts_for(server_.url());
  o.ping_interval_ms = 100;
  subscriber sub(
      io_, o, [](message&&) {}, [&](bool up, const std::string&) { downs += up ? 0 : 1; });
  sub.subscribe({"c"});
  sub.start();
  ASSERT_TRUE(sub.wait_connected(5000).ok());
  auto admin_ptr = open();
  auto& admin = *admin_ptr;
  // CLIENT PAUSE ALL stops Redis answering anyone (the PING included) for 1 s.
  ASSERT_EQ(admin.call(command{"CLIENT", "PAUSE", "1000", "ALL"})->str, "OK");
  ASSERT_TRUE(eventually([&] { return downs.load() >= 1; }, 2000ms));
  ASSERT_TRUE(eventually([&] { return sub.connected() && sub.confirmed() == 1; }));
}

}  // namespace
}  // namespace herald::redis
