#include "core/rate_limit.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(rate_limit, burst_then_rate) {
  rate_limiter r(10, 5);  // 10/s, burst 5
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.take("k", 1, 1000));
  EXPECT_FALSE(r.take("k", 1, 1000));
  EXPECT_FALSE(r.allows("k", 1000));
  EXPECT_TRUE(r.take("other", 1, 1000));  // keys are independent
  EXPECT_EQ(r.retry_after_s("k", 1, 1000), 1);
  EXPECT_TRUE(r.take("k", 1, 1100));  // 100 ms at 10/s = 1 token
  EXPECT_FALSE(r.take("k", 1, 1100));
  EXPECT_FALSE(r.take("k", 6, 100000));  // never more than the burst
  EXPECT_TRUE(r.take("k", 5, 100000));
}

}  // namespace
}  // namespace herald
