// Keyed token buckets: `rate` tokens a second up to `burst`, per key (an app, a remote address).
// Used for publish rates and failed authentication attempts. Thread-safe (one mutex; keys
// whose bucket is full again are dropped, so idle keys cost nothing).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace herald {

class rate_limiter {
 public:
  rate_limiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // Takes `n` tokens from `key`'s bucket; false (nothing taken) when it holds fewer.
  bool take(const std::string& key, double n, std::int64_t now_ms);
  // True when `key` has at least one token (takes none).
  bool allows(const std::string& key, std::int64_t now_ms);
  // Whole seconds until `key` holds `n` tokens (at least 1), for Retry-After.
  std::int64_t retry_after_s(const std::string& key, double n, std::int64_t now_ms);
  // New rate and burst from now on (SIGHUP); every bucket keeps its tokens up to the new burst.
  void set_rates(double rate, double burst);

 private:
  struct bucket {
    double tokens;
    std::int64_t at_ms;
  };
  bucket& refill(const std::string& key, std::int64_t now_ms);
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, bucket> buckets_;
  std::int64_t last_sweep_ms_ = 0;
};

}  // namespace herald
