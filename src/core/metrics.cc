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

void labelled_counter::add(std::initializer_list<std::string_view> labels, std::uint64_t n) {
  std::vector<std::string> key(labels.begin(), labels.end());
  std::lock_guard l(mu_);
  values_[std::move(key)] += n;
}

std::map<std::vector<std::string>, std::uint64_t> labelled_counter::snapshot() const {
  std::lock_guard l(mu_);
  return values_;
}

void tenant_labels::set_limit(std::size_t limit) {
  std::lock_guard l(mu_);
  limit_ = limit;
}

std::string tenant_labels::label(std::string_view tenant) {
  if (tenant.empty()) return "_none";
  std::lock_guard l(mu_);
  if (seen_.find(tenant) != seen_.end()) return std::string(tenant);
  if (seen_.size() >= limit_) return "_other";
  return *seen_.emplace(tenant).first;
}

metrics& global_metrics() {
  static metrics m;
  return m;
}

}  // namespace herald
