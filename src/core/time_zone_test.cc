#include "core/time_zone.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

constexpr std::int64_t winter = 1772359205000;  // 2026-03-01T10:00:05Z
constexpr std::int64_t summer = 1783072800000;  // 2026-07-03T10:00:00Z

TEST(TimeZone, UtcAndUnknownNamesReadAsUtc) {
  EXPECT_EQ(format_local_time(winter, "UTC"), "2026-03-01 10:00:05");
  EXPECT_EQ(format_local_time(winter, ""), "2026-03-01 10:00:05");
  EXPECT_EQ(format_local_time(winter, "Nowhere/Atlantis"), "2026-03-01 10:00:05");
  EXPECT_EQ(format_local_time(winter, "../../etc/passwd"), "2026-03-01 10:00:05");
  EXPECT_FALSE(known_time_zone("Nowhere/Atlantis"));
  EXPECT_FALSE(known_time_zone("../etc/passwd"));
  EXPECT_TRUE(known_time_zone("UTC"));
}

TEST(TimeZone, DaylightSavingFollowsTheZoneFile) {
  if (!known_time_zone("Europe/Berlin")) GTEST_SKIP() << "no tzdata on this machine";
  EXPECT_EQ(format_local_time(winter, "Europe/Berlin"), "2026-03-01 11:00:05");
  EXPECT_EQ(format_local_time(summer, "Europe/Berlin"), "2026-07-03 12:00:00");
  EXPECT_EQ(utc_offset_s("America/New_York", summer), -4 * 3600);
  EXPECT_EQ(format_local_time(winter, "Asia/Kolkata"), "2026-03-01 15:30:05");
}

TEST(TimeZone, DatesBeforeTheEpochAndLeapDays) {
  EXPECT_EQ(format_local_time(-1000, "UTC"), "1969-12-31 23:59:59");
  EXPECT_EQ(format_local_time(951782400000, "UTC"), "2000-02-29 00:00:00");
}

}  // namespace
}  // namespace herald
