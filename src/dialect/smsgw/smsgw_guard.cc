#include "dialect/smsgw/smsgw_guard.h"

#include <algorithm>

namespace herald::smsgw {
namespace {
constexpr std::int64_t sweep_every_ms = 60000;
std::int64_t ceil_s(std::int64_t ms) { return std::max<std::int64_t>(1, (ms + 999) / 1000); }
}  // namespace

void fail_block::sweep(std::int64_t now) {
  // Bounded memory under an address scan: forget addresses with nothing left to remember.
  if (now - last_sweep_ms_ < sweep_every_ms) return;
  last_sweep_ms_ = now;
  std::erase_if(by_addr_, [&](const auto& kv) {
    const entry& e = kv.second;
    return e.blocked_until <= now && (e.fails.empty() || e.fails.back() <= now - window_ms_);
  });
}

std::int64_t fail_block::blocked_for_s(const std::string& addr, std::int64_t now) {
  std::lock_guard g(mu_);
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end() || it->second.blocked_until <= now) return 0;
  return ceil_s(it->second.blocked_until - now);
}

void fail_block::fail(const std::string& addr, std::int64_t now) {
  std::lock_guard g(mu_);
  sweep(now);
  entry& e = by_addr_[addr];
  while (!e.fails.empty() && e.fails.front() <= now - window_ms_) e.fails.pop_front();
  e.fails.push_back(now);
  if (e.fails.size() >= limit_) {
    e.blocked_until = now + block_ms_;
    e.fails.clear();  // the block is the penalty; afterwards the count starts again
  }
}

// A log of request times rather than a token bucket: §7 names a sliding 60 s window, and a
// key's log holds at most `limit` entries, so memory stays bounded per key.
std::int64_t sliding_window::take(const std::string& key, std::size_t limit, std::int64_t now) {
  std::lock_guard g(mu_);
  if (now - last_sweep_ms_ >= sweep_every_ms) {
    last_sweep_ms_ = now;
    std::erase_if(by_key_, [&](const auto& kv) {
      return kv.second.empty() || kv.second.back() <= now - window_ms_;
    });
  }
  auto& log = by_key_[key];
  while (!log.empty() && log.front() <= now - window_ms_) log.pop_front();
  if (log.size() >= limit) return ceil_s(log.front() + window_ms_ - now);
  log.push_back(now);
  return 0;
}

// Counted per app id: an app has one API key at a time, and rotation closes the old key's
// sockets (which release their slots as they close).
bool key_slots::acquire(const std::string& key, std::size_t limit) {
  std::lock_guard g(mu_);
  std::size_t& n = open_[key];
  if (n >= limit) return false;
  ++n;
  return true;
}

void key_slots::release(const std::string& key) {
  std::lock_guard g(mu_);
  auto it = open_.find(key);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

}  // namespace herald::smsgw
