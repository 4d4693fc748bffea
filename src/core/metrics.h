// Process-wide counters for /metrics. Only the counting lives here: the Prometheus text writer is
// api/prometheus.h (core holds no wire format). Thread-safe: relaxed atomics; label maps behind
// a mutex; readers take a snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

// A fixed-bucket latency histogram in milliseconds.
class histogram {
 public:
  static constexpr std::array<double, 12> bounds_ms{0.25, 0.5, 1,   2,   5,   10,
                                                    25,   50,  100, 250, 500, 1000};

  // Per-bucket counts (not cumulative): buckets[i] counts observations <= bounds_ms[i] and
  // above the bound before; the last one counts those above every bound.
  struct snapshot_t {
    std::array<std::uint64_t, bounds_ms.size() + 1> buckets{};
    std::uint64_t count = 0;
    double sum_ms = 0;
  };

  void observe(double ms) noexcept;
  // Each field is read on its own (relaxed): under concurrent observe() they may disagree by
  // the observations in flight, which a scrape tolerates.
  snapshot_t snapshot() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, bounds_ms.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

// A counter split by label values, one per label name the writer gives (e.g. dialect and close
// code), in that order. Not for the delivery path: add() takes a lock.
class labelled_counter {
 public:
  void add(const std::string& label, std::uint64_t n = 1) { add({std::string_view(label)}, n); }
  void add(std::initializer_list<std::string_view> labels, std::uint64_t n = 1);
  // A copy, so that the writer formats without holding the lock.
  std::map<std::vector<std::string>, std::uint64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::uint64_t> values_;
};

// The `tenant` label value of a tenant: itself for the first `limit` tenants seen, `_other` past
// them (bounded cardinality: core.metrics_tenant_limit), `_none` when there is none.
class tenant_labels {
 public:
  void set_limit(std::size_t limit);
  std::string label(std::string_view tenant);

 private:
  std::mutex mu_;
  std::size_t limit_ = 100;
  std::set<std::string, std::less<>> seen_;
};

struct metrics {
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::int64_t> queued_bytes{0};
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> publish_requests{0};
  labelled_counter closes;                 // dialect, tenant, code
  labelled_counter auth_failures;          // dialect, reason
  labelled_counter refusals;               // dialect, limit
  labelled_counter recoveries_by_outcome;  // outcome
  std::atomic<std::uint64_t> store_errors{0};
  std::atomic<std::uint64_t> cluster_control_gaps{0};  // control messages trimmed unread, times
  histogram publish_commit_ms;                         // publish request received -> durable
  histogram publish_delivery_ms;  // publish request received -> frame queued on a socket
  tenant_labels tenants;
};

metrics& global_metrics();

}  // namespace herald
