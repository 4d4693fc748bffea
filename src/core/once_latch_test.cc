#include "core/once_latch.h"

#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(once_latch, runs_once_however_many_threads_race_and_all_see_its_result) {
  for (int round = 0; round < 200; ++round) {
    once_latch latch;
    std::atomic<int> runs{0};
    int value = 0;  // written by the one run, read by every caller after call() returns
    std::atomic<bool> go{false};
    std::vector<int> seen(8, -1);
    std::vector<std::thread> ts;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      ts.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        latch.call([&] {
          runs.fetch_add(1);
          value = 42;
        });
        seen[i] = value;
      });
    }
    go = true;
    for (auto& t : ts) t.join();
    EXPECT_EQ(runs.load(), 1);
    for (int v : seen) EXPECT_EQ(v, 42);
    EXPECT_TRUE(latch.is_done());
  }
}

TEST(once_latch, a_throwing_run_leaves_it_open_for_the_next_caller) {
  once_latch latch;
  EXPECT_THROW(latch.call([] { throw std::runtime_error("no"); }), std::runtime_error);
  EXPECT_FALSE(latch.is_done());
  int runs = 0;
  latch.call([&] { ++runs; });
  latch.call([&] { ++runs; });
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(latch.is_done());
}

}  // namespace
}  // namespace herald
