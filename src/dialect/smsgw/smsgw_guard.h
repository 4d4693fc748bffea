// The smsgw limits that are counted across requests and sockets (smsgw.md §7): the failed-auth
// block per address, the sliding-window REST rate per key, and the open sockets per key. Shared
// by the dialect's routes (blocking pool) and sockets (shards); one instance per server, owned
// by the dialect's context. Thread-safe: one mutex each; keys whose window emptied are dropped,
// so idle keys cost nothing.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace herald::smsgw {

// `limit` failures of one address within `window_ms` block it for `block_ms`.
class fail_block {
 public:
  fail_block(std::size_t limit, std::int64_t window_ms, std::int64_t block_ms)
      : limit_(limit), window_ms_(window_ms), block_ms_(block_ms) {}
  // Whole seconds the address stays blocked (0: not blocked).
  std::int64_t blocked_for_s(const std::string& addr, std::int64_t now_ms);
  // Records one failure (the one that reaches the limit starts the block).
  void fail(const std::string& addr, std::int64_t now_ms);

 private:
  struct entry {
    std::deque<std::int64_t> fails;  // times within the window, oldest first
    std::int64_t blocked_until = 0;
  };
  void sweep(std::int64_t now_ms);
  std::size_t limit_;
  std::int64_t window_ms_, block_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, entry> by_addr_;
  std::int64_t last_sweep_ms_ = 0;
};

// At most `limit` requests per key within any `window_ms` (a sliding log of request times).
class sliding_window {
 public:
  explicit sliding_window(std::int64_t window_ms) : window_ms_(window_ms) {}
  // Counts one request; 0 when allowed, else whole seconds (>= 1) until one would be.
  std::int64_t take(const std::string& key, std::size_t limit, std::int64_t now_ms);

 private:
  std::int64_t window_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<std::int64_t>> by_key_;
  std::int64_t last_sweep_ms_ = 0;
};

// Open sockets per key (an app's API key: its app id).
class key_slots {
 public:
  bool acquire(const std::string& key, std::size_t limit);
  void release(const std::string& key);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> open_;
};

}  // namespace herald::smsgw
