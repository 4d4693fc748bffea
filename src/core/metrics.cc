#include "core/metrics.h"

#include <fmt/format.h>

namespace herald {

void histogram::observe(double ms) noexcept {
  std::size_t i = 0;
  while (i < bounds_ms.size() && ms > bounds_ms[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000.0), std::memory_order_relaxed);
}

void histogram::write(std::string& out, const char* name, const char* help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds_ms.size(); ++i) {
    cum += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_ms[i], cum);
  }
  cum += buckets_[bounds_ms.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cum);
  out += fmt::format("{}_sum {}\n", name,
                     static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1000.0);
  out += fmt::format("{}_count {}\n", name, count_.load(std::memory_order_relaxed));
}

void labelled_counter::add(const std::string& label, std::uint64_t n) {
  std::lock_guard l(mu_);
  values_[label] += n;
}

void labelled_counter::write(std::string& out, const char* name, const char* label,
                             const char* help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
  std::lock_guard l(mu_);
  for (const auto& [k, v] : values_) out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, k, v);
}

metrics& global_metrics() {
  static metrics m;
  return m;
}

void write_metric(std::string& out, const char* name, const char* type, const char* help,
                  double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace herald
