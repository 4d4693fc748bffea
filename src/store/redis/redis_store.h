// The cluster store back end: every node of a cluster keeps its log, records, retained states
// and replay guards in one Redis (docs/cluster.md has the key layout). Appends go through the
// Redis Function `herald_append` (library `herald`, loaded at open): the node proposes the
// offsets and times it expects (its last known `herald:seq`), the function commits the batch
// only if `herald:seq` still equals it (else it answers the current seq/time and the node
// rebuilds and retries: optimistic concurrency between nodes). One writer thread group-commits
// the appends queued meanwhile into one call.
//
// The feed: each run of one tenant's events in an append is one message on the channel
// herald:ev:<tenant>. Following every tenant (follow_all), the append listener is called for
// EVERY batch appended by ANY node, in dense offset order, on this store's feed thread;
// following some (follow(), cluster mode's default), for every run of those tenants' events,
// in offset order. What the subscription may have missed is read from the logs (herald:runs,
// then each run's events from its tenant's log `herald:log:<tenant>`, in pages) before
// anything later is delivered:
// - at a mark (herald_mark, asked for once a barrier PING shows Redis ran a (P)SUBSCRIBE:
//   after a follow(), a resubscription after a drop, a feed queue past max_feed_queue or an
//   unreadable message), for every tenant followed before, up to the mark's offset; until
//   every such tenant has had its mark, nothing is delivered live;
// - following every tenant, before a message whose first offset is not last+1;
// - an append of this node waiting ~feed_wait_ms without the feed reaching it.
// Anything at or below the last delivered offset is dropped. append() returns once the
// listener has seen its batch's events of the tenants the feed delivers; else at its commit.
// Thread-safe: every member may be called from any thread but the listener's (the feed thread)
// and the connection's io_thread. No Asio here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/redis/connection.h"
#include "store/redis/options.h"
#include "store/store.h"

namespace herald {

struct redis_store_options {
  redis::options conn;                    // address, timeouts, bounds (the `[redis]` table)
  std::int64_t log_max_events = 1000000;  // prune() keeps at most this many (0: unbounded)
  // and at most this many in each tenant's log (0: unbounded)
  std::int64_t log_max_events_per_tenant = 1000000;
  std::int64_t feed_wait_ms = 100;  // an append waits this long before reading the log
  // Entries per XRANGE / HSCAN / HMGET page; a page past conn.max_reply_bytes (large events)
  // is read again a tenth as large, down to one entry.
  std::size_t page = 1000;
  std::size_t max_group_events = 4096;     // events per herald_append call, at most
  std::size_t max_group_bytes = 4u << 20;  // and about this many bytes (a bigger batch goes alone)
  std::size_t max_feed_queue = 100000;     // pub/sub messages queued; past it: re-read the log
  // The feed follows every tenant (the pattern herald:ev:*), or only those follow() names.
  bool follow_all = true;
};

class redis_store final : public store {
 public:
  // Connects (bounded by conn.connect_timeout_ms), reads the server's durability settings
  // (refusing an evicting maxmemory-policy: evicted stream entries would be lost events),
  // loads the function library and subscribes to `herald:ev`.
  static result<std::unique_ptr<redis_store>> open(redis_store_options opts);
  ~redis_store() override;
  redis_store(const redis_store&) = delete;
  redis_store& operator=(const redis_store&) = delete;

  void set_append_listener(append_listener l) override;
  // A record of one of `kinds` committed with a batch (append_record: a subject's change)
  // travels with it: in its `herald:ev` message and in its first log entry (field
  // `r`), so every node's feed — a log catch-up too — hands it to `l` right before the batch's
  // events, on the feed thread, without asking Redis, with the batch's first offset (a lagging
  // feed hands over records older than one read since: redis::record_order). Set once, before
  // the first append.
  using record_listener = std::function<void(const std::string& kind, const std::string& key,
                                             const std::string& json, std::int64_t offset)>;
  void set_record_listener(std::vector<std::string> kinds, record_listener l);
  // Following some tenants (follow_all false): the feed subscribes to `tenant`'s channel, then
  // asks Redis for a mark (herald_mark: herald:seq published on this store's own channel, after
  // every batch message up to it). From the mark on, every event of `tenant` after the offset
  // the follow listener is handed reaches the append listener, in offset order with the other
  // followed tenants'; the events of `tenant` up to that offset never do. "" follows every
  // tenant (the pattern herald:ev:*). No-op when followed already. unfollow: its messages stop
  // (those in flight are dropped).
  void follow(const std::string& tenant);
  void unfollow(const std::string& tenant);
  // Called on the feed thread when a followed tenant starts delivering: (tenant, from), before
  // any of its events after `from`. Set once, before the first follow().
  using follow_listener = std::function<void(const std::string& tenant, std::int64_t from)>;
  void set_follow_listener(follow_listener l);
  // Whether the events of `tenant` reach the append listener now (its mark came).
  bool delivering(const std::string& tenant) const;
  // Whether the feed hands over every event of `tenant` from some offset on (followed, its
  // first mark came): live, or from the logs after a reconnection.
  bool feeds(const std::string& tenant) const;
  using store::append;
  result<std::vector<event_ptr>> append(std::vector<event_draft> batch,
                                        append_record with) override;
  result<std::vector<event_ptr>> read(const log_query& q) override;
  // herald:runs names the tenant of every offset it covers: the tenants of the runs overlapping
  // [first, last]; nullopt when a part of it is in no run (below herald:runs's first run: time
  // or global retention, which took every tenant's; a hole Redis lost) or Redis cannot be read.
  std::optional<std::vector<std::string>> hole_tenants(std::int64_t first,
                                                       std::int64_t last) override;
  result<std::optional<event_ptr>> state(std::string_view tenant,
                                         std::string_view subject) override;
  result<std::vector<event_ptr>> states(const std::vector<std::string>& tenants) override;
  result<bool> subject_seen(std::string_view tenant, std::string_view subject) override;
  status put_record(std::string_view kind, std::string_view key, std::string_view json) override;
  status erase_record(std::string_view kind, std::string_view key) override;
  result<std::optional<std::string>> get_record(std::string_view kind,
                                                std::string_view key) override;
  // The record (kind, key) and herald:seq, read at once (one Redis Function): the copy is at
  // least as new as a record carried by any batch up to that offset (redis::record_order).
  struct record_at {
    std::optional<std::string> json;
    std::int64_t seq = 0;
  };
  result<record_at> get_record_at(std::string_view kind, std::string_view key);
  result<std::vector<stored_record>> load_records(std::string_view kind) override;
  status write_records(std::string_view kind, std::vector<record_write> writes) override;
  // write_records, answering herald:seq at the write (read in the same call): the writer's copy
  // reflects the log up to it (redis::record_order::wrote).
  result<std::int64_t> write_records_at(std::string_view kind, std::vector<record_write> writes);
  result<bool> claim_once(std::string_view key, std::int64_t expires_ms) override;
  status prune(std::int64_t before_ms) override;
  result<std::size_t> prune_records(std::string_view kind, std::int64_t now_ms) override;
  result<event_lookup> find_event(std::string_view id) override;
  std::int64_t last_offset() const override;
  status ping() override;
  void close() override;
  const char* name() const noexcept override { return "redis"; }
  std::string startup_note() const override;
  bool shared() const noexcept override { return true; }
  result<std::string> put_record_if_absent(std::string_view kind, std::string_view key,
                                           std::string_view json) override;

  const redis::server_config& server() const noexcept;
  // Tests: herald_append calls that found herald:seq moved and were rebuilt; log catch-ups.
  std::uint64_t retries_for_test() const;
  std::uint64_t catchups_for_test() const;
  // Tests: the feed ignores `herald:ev` messages while set (as if each were lost in transit).
  void drop_messages_for_test(bool drop);

  struct impl;

 private:
  explicit redis_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

// The event as stored in a tenant's log `herald:log:<tenant>` (field `e`), `herald:state` and
// carried on `herald:ev`:
// "<offset>:<time_ms>:" then id, topic, type, tenant, app, subject, data each as
// "<length>:<bytes>", then '1' or '0' (retain). Byte-exact for any field content.
std::string encode_event(const event& e);
// Strict: nullptr on any malformation (a count, a length past the end, trailing bytes).
event_ptr decode_event(std::string_view s);

}  // namespace herald
