// Which point of the log a node's copy of each record reflects, so that an older copy never
// replaces a newer one. A directory record reaches a node two ways, on two threads with no
// order between them (docs/cluster.md "Records"): carried with its batch (the feed: the
// batch's first offset) and read after a control message (redis_store::get_record_at: the
// record with herald:seq read at once). A lagging feed (a resync replaying the log, a queue
// overflow) may hand over a batch's record after a newer copy was read: that copy reflects the
// log up to its herald:seq, which covers the batch — the carried one is skipped.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace herald::redis {

class record_order {
 public:
  // The record (kind, key) carried by the batch at `offset`: `apply()` runs unless the held
  // copy reflects `offset` or later. One apply at a time (both threads): false when skipped.
  template <class F>
  bool carried(std::string_view kind, std::string_view key, std::int64_t offset, F&& apply) {
    std::lock_guard lk(mu_);
    std::int64_t& at = at_[id(kind, key)];
    if (offset <= at) return false;
    at = offset;
    apply();
    return true;
  }
  // The record (kind, key) read when herald:seq was `seq`: `apply()` runs unless the held copy
  // came with a batch after `seq` (newer than what was read).
  template <class F>
  bool read(std::string_view kind, std::string_view key, std::int64_t seq, F&& apply) {
    std::lock_guard lk(mu_);
    std::int64_t& at = at_[id(kind, key)];
    if (seq < at) return false;
    at = seq;
    apply();
    return true;
  }
  // This node wrote (kind, key) when herald:seq was `seq`: `apply()` (its directory taking its
  // own change) runs unless the held copy came with a batch after `seq` — a change made
  // through another node that this node's feed delivered before the write's reply was handled.
  // From then on a record carried by a batch up to `seq` is older than the held copy. Under the
  // same lock as carried(): the write's apply and the feed's cannot interleave.
  template <class F>
  bool wrote(std::string_view kind, std::string_view key, std::int64_t seq, F&& apply) {
    return read(kind, key, seq, std::forward<F>(apply));
  }

 private:
  static std::string id(std::string_view kind, std::string_view key) {
    std::string s(kind);
    s += '\n';
    s += key;
    return s;
  }
  std::mutex mu_;
  std::map<std::string, std::int64_t, std::less<>> at_;  // one entry per record applied
};

}  // namespace herald::redis
