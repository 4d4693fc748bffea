// A once-only initialisation, as std::call_once, without its system call: glibc's pthread_once
// (under std::call_once) wakes futex waiters unconditionally after the first call, which made
// the first rendering of every event cost a system call on the delivery path. Concurrent first
// calls are rare here (two shards rendering one event at the same moment) and short, so a
// caller that loses the race yields until the winner is done instead of sleeping on a futex.
// Thread-safe. If the function throws, the latch stays open and the next caller runs it.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace herald {

class once_latch {
 public:
  template <class F>
  void call(F&& f) {
    if (state_.load(std::memory_order_acquire) == done) return;
    for (;;) {
      std::uint8_t expect = idle;
      if (state_.compare_exchange_strong(expect, running, std::memory_order_acquire)) {
        try {
          f();
        } catch (...) {
          state_.store(idle, std::memory_order_release);
          throw;
        }
        state_.store(done, std::memory_order_release);
        return;
      }
      if (expect == done) return;
      std::this_thread::yield();  // running elsewhere: wait for it (or for its failure)
      if (state_.load(std::memory_order_acquire) == done) return;
    }
  }
  bool is_done() const noexcept { return state_.load(std::memory_order_acquire) == done; }

 private:
  static constexpr std::uint8_t idle = 0, running = 1, done = 2;
  std::atomic<std::uint8_t> state_{idle};
};

}  // namespace herald
