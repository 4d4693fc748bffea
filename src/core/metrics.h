// Process-wide counters for /metrics, and a small Prometheus text-format writer (there is no
// bookworm package for one). Thread-safe: relaxed atomics; label maps behind a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace herald {

// A fixed-bucket latency histogram in milliseconds.
class histogram {
 public:
  static constexpr std::array<double, 12> bounds_ms{0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000};
  void observe(double ms) noexcept;
  void write(std::string& out, const char* name, const char* help) const;

 private:
  std::array<std::atomic<std::uint64_t>, bounds_ms.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

// A counter split by one label value (e.g. close code).
class labelled_counter {
 public:
  void add(const std::string& label, std::uint64_t n = 1);
  void write(std::string& out, const char* name, const char* label, const char* help) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> values_;
};

struct metrics {
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::int64_t> queued_bytes{0};
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> publish_requests{0};
  labelled_counter closes_by_code;
  labelled_counter recoveries_by_outcome;
  histogram publish_commit_ms;  // publish request received -> durable
};

metrics& global_metrics();

// Appends one series in Prometheus text format.
void write_metric(std::string& out, const char* name, const char* type, const char* help,
                  double value);

}  // namespace herald
