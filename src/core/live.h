// live<T>: a value replaced whole at run time (SIGHUP) and read without a lock. Readers take the
// value in force with one acquire load (get(), `->`, `*`); a writer publishes a new immutable
// copy (set()). Every copy ever published is kept until the live<T> goes: a reader's reference
// never dangles and the read path touches no reference count. A copy is published only when a
// reload changed one of its keys (a few hundred bytes each), so what is kept stays small.
// Thread-safe: any number of readers with any number of writers (writers take a mutex that
// readers never see).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace herald {

template <class T>
class live {
 public:
  live(T initial = T{}) { set(std::move(initial)); }  // NOLINT: implicit, a value becomes live
  live(const live&) = delete;
  live& operator=(const live&) = delete;

  // The value in force. Read it once per operation: a reload between two reads may change it.
  const T& get() const noexcept { return *cur_.load(std::memory_order_acquire); }
  const T& operator*() const noexcept { return get(); }
  const T* operator->() const noexcept { return &get(); }

  // Makes `next` the value in force for every read from now on; reads already made keep theirs.
  void set(T next) {
    auto copy = std::make_unique<const T>(std::move(next));
    std::lock_guard l(mu_);
    cur_.store(copy.get(), std::memory_order_release);
    kept_.push_back(std::move(copy));
  }
  // Values published so far, the first included (1 until a reload changes it).
  std::size_t generation() const {
    std::lock_guard l(mu_);
    return kept_.size();
  }

 private:
  mutable std::mutex mu_;                       // writers only
  std::vector<std::unique_ptr<const T>> kept_;  // every value published, the current last
  std::atomic<const T*> cur_{nullptr};
};

}  // namespace herald
