#include "core/metrics.h"

namespace herald {

void histogram::observe(double ms) noexcept {
  std::size_t i = 0;
  while (i < bounds_ms.size() && ms > bounds_ms[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000.0), std::memory_order_relaxed);
}

histogram::snapshot_t histogram::snapshot() const noexcept {
  snapshot_t s;
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  s.count = count_.load(std::memory_order_relaxed);
  s.sum_ms = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1000.0;
  return s;
}

void labelled_counter::add(const std::string& label, std::uint64_t n) {
  std::lock_guard l(mu_);
  values_[label] += n;
}

std::map<std::string, std::uint64_t> labelled_counter::snapshot() const {
  std::lock_guard l(mu_);
  return values_;
}

metrics& global_metrics() {
  static metrics m;
  return m;
}

}  // namespace herald
