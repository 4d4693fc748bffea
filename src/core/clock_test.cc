#include "core/clock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/event.h"

namespace herald {
namespace {

TEST(clock, format_and_parse) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1772359201123), "2026-03-01T10:00:01.123Z");
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T10:00:01.123Z"), 1772359201123);
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T10:00:01Z"), 1772359201000);
  EXPECT_EQ(parse_rfc3339_ms("2026-03-01T12:00:01.5+02:00"), 1772359201500);
  EXPECT_FALSE(parse_rfc3339_ms("2026-03-01"));
  EXPECT_FALSE(parse_rfc3339_ms("2026-13-01T10:00:01Z"));
  EXPECT_FALSE(parse_rfc3339_ms("2026-03-01T10:00:01"));
  EXPECT_FALSE(parse_rfc3339_ms("garbage"));
  const auto now = now_ms();
  EXPECT_EQ(parse_rfc3339_ms(format_rfc3339_ms(now)), now);
  EXPECT_EQ(format_rfc3339_ms(253402300799999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(253402300800000), "10000-01-01T00:00:00.000Z");  // general path
  // The digit-by-digit writer against snprintf over many times (every field's digits vary).
  for (std::int64_t ms = 0; ms < 253402300799999; ms += 9876543210987 / 7) {
    const std::int64_t secs = ms / 1000;
    const std::time_t t = secs;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char want[80];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    EXPECT_EQ(format_rfc3339_ms(ms), want) << ms;
  }
}

TEST(ids, shape) {
  const auto a = new_id("evt_"), b = new_id("evt_");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("evt_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 22u);
  EXPECT_EQ(
      a.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 4),
      std::string::npos);
  const auto t = random_token(24);
  EXPECT_EQ(t.size(), 32u);
  EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
}

// Ids come from a per-thread block of CSPRNG bytes: unique across many draws (past several
// refills of the block) and across threads, and a forked child does not repeat its parent's.
TEST(ids, unique_across_refills_threads_and_fork) {
  std::set<std::string> seen;
  std::mutex mu;
  auto draw = [&](int n) {
    std::vector<std::string> mine;
    for (int i = 0; i < n; ++i) mine.push_back(new_id("x_"));
    std::lock_guard l(mu);
    for (auto& id : mine) EXPECT_TRUE(seen.insert(id).second) << id;
  };
  std::thread t1(draw, 5000), t2(draw, 5000);
  draw(5000);
  t1.join();
  t2.join();
  EXPECT_EQ(seen.size(), 15000u);
  // A forked child draws fresh bytes: its next id differs from the parent's next one.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string id = new_id("x_");
    (void)!write(fds[1], id.data(), id.size());
    _exit(0);
  }
  close(fds[1]);
  char buf[64];
  const auto n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  ASSERT_GT(n, 0);
  const std::string child(buf, static_cast<std::size_t>(n));
  EXPECT_NE(child, new_id("x_"));
}

TEST(coarse_clock, is_the_system_clock_until_a_thread_stores_one_then_that_value) {
  std::thread([] {
    const std::int64_t before = now_ms();
    const std::int64_t c = coarse_now_ms();
    EXPECT_GE(c, before);
    EXPECT_LE(c, now_ms());
    set_coarse_now_ms(1234);
    EXPECT_EQ(coarse_now_ms(), 1234);
  }).join();
  std::thread([] { EXPECT_NE(coarse_now_ms(), 1234); }).join();  // per thread
}

}  // namespace
}  // namespace herald
