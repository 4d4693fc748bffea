#include "core/live.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

struct pair_limits {
  long a = 1;
  long b = -1;  // always -a: a torn read would show a + b != 0
};

TEST(live, set_replaces_the_value_and_old_references_stay_valid) {
  live<pair_limits> l;
  const pair_limits& before = l.get();
  EXPECT_EQ(l->a, 1);
  EXPECT_EQ(l.generation(), 1U);
  l.set({5, -5});
  EXPECT_EQ(l->a, 5);
  EXPECT_EQ((*l).b, -5);
  EXPECT_EQ(before.a, 1);  // a reader holding the old value still reads it whole
  EXPECT_EQ(l.generation(), 2U);
}

TEST(live, readers_never_see_a_torn_value_while_a_writer_publishes) {
  live<pair_limits> l;
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, reads{0}, started{0};
  std::vector<std::thread> readers;
  readers.reserve(3);
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      long last = 0;
      started.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        const pair_limits& v = l.get();
        if (v.a + v.b != 0 || v.a < last) bad.fetch_add(1);  // whole, and never going back
        last = v.a;
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  while (started.load() < 3) std::this_thread::yield();  // the writes overlap the reads
  for (long n = 2; n <= 2000; ++n) l.set({n, -n});
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(l->a, 2000);
  EXPECT_EQ(l.generation(), 2000U);
}

}  // namespace
}  // namespace herald
