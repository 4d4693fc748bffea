#include "core/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace herald {

rate_limiter::bucket& rate_limiter::refill(const std::string& key, std::int64_t now) {
  if (now - last_sweep_ms_ > 60000) {
    // Forget buckets that have refilled completely: they behave exactly like new ones.
    std::erase_if(buckets_, [&](const auto& kv) {
      return kv.second.tokens + static_cast<double>(now - kv.second.at_ms) / 1000.0 * rate_ >=
             burst_;
    });
    last_sweep_ms_ = now;
  }
  auto [it, fresh] = buckets_.try_emplace(key, bucket{burst_, now});
  bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now - b.at_ms) / 1000.0 * rate_);
    b.at_ms = now;
  }
  return b;
}

void rate_limiter::set_rates(double rate, double burst) {
  std::lock_guard l(mu_);
  rate_ = rate;
  burst_ = burst;
  for (auto& [key, b] : buckets_) b.tokens = std::min(b.tokens, burst);
}

bool rate_limiter::take(const std::string& key, double n, std::int64_t now) {
  std::lock_guard l(mu_);
  bucket& b = refill(key, now);
  if (b.tokens < n) return false;
  b.tokens -= n;
  return true;
}

bool rate_limiter::allows(const std::string& key, std::int64_t now) {
  std::lock_guard l(mu_);
  return refill(key, now).tokens >= 1.0;
}

std::int64_t rate_limiter::retry_after_s(const std::string& key, double n, std::int64_t now) {
  std::lock_guard l(mu_);
  const bucket& b = refill(key, now);
  const double missing = std::max(0.0, std::min(n, burst_) - b.tokens);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(missing / rate_)));
}

}  // namespace herald
