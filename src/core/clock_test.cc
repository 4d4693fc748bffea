#include "core/clock.h"

#include <thread>

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
}

TEST(ids, shape) {
  const auto a = new_id("evt_"), b = new_id("evt_");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("evt_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 22u);
  const auto t = random_token(24);
  EXPECT_EQ(t.size(), 32u);
  EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
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
