// Internal to the hub's .cc files (hub.cc, hub_shards.cc, hub_fanout.cc, hub_recovery.cc,
// hub_persist.cc): what one shard owns, and the thread binding that says which shard a thread
// is. Not for dialects or anything outside core/hub*.
//
// Ownership: each shard_state is touched only on its shard's thread (current_shard() == its
// index), except by the hub's constructor, export_sessions() and import_sessions(), which run
// while no shard thread does. Nothing here takes a lock; the cross-shard registry (home_of_,
// expired_) is the hub's, under registry_mu_.
#pragma once

#include <cassert>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/hub.h"
#include "core/subscription_index.h"

namespace herald {

// The shard whose thread this is (hub::bind_thread), or hub::npos. constinit: other files read
// it without a TLS init wrapper call.
extern constinit thread_local std::size_t this_shard;

// Debug builds: the calling thread must be shard `shard`'s — the one the function's contract
// names (a session's home shard, a sink's shard), not merely some shard. Compiled out by NDEBUG.
inline void assert_on_shard([[maybe_unused]] std::size_t shard) noexcept {
  assert(this_shard == shard);
}

struct hub::shard_state {
  // --- the sink table (hub_shards.cc): the connections of this shard by id. Ids are never
  // reused, so a registered id still names the same socket.
  std::unordered_map<std::uint64_t, session_sink*> sinks;
  session_sink* find_sink(std::uint64_t conn) const {
    auto it = sinks.find(conn);
    return it == sinks.end() ? nullptr : it->second;
  }

  // --- sessions homed on this shard (hub.cc; dropped by hub_recovery.cc).
  std::unordered_map<std::string, std::unique_ptr<session>> sessions;
  session* find_session(const std::string& id) const {
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second.get();
  }
  // Ids of sessions that were detached (some since re-attached or dropped): the tick looks at
  // these for expiry, not at every session of the shard (hub_recovery.cc).
  std::vector<std::string> detached;

  // --- the subscription index (subscription_index.h).
  subscription_index index;

  // --- fan-out (hub_fanout.cc). Per batch: deliveries for sinks on other shards (one vector
  // per target shard, posted once per batch), and local sinks to flush.
  std::vector<std::vector<std::pair<std::uint64_t, delivery>>> outbox;
  std::vector<session_sink*> touched;
  // fan_out's scratch, kept for its capacity: (session, event index) matches in event order,
  // the sessions matched, the matches grouped by session, one pin per event of the batch.
  std::vector<std::pair<session*, std::uint32_t>> hits;
  std::vector<session*> hit_sessions;
  std::vector<std::uint32_t> grouped;
  std::vector<event_pin> pins;
  std::int64_t last_offset = 0;  // the highest offset fanned out on this shard

  // --- the inbox (hub_fanout.cc), the one part of a shard_state other threads touch (under
  // inbox_mu): per drain task posted and not yet run, oldest first, the batches it will fan out
  // as one. Batches published while the shard is busy join the newest drain, so a socket that
  // several of them reach gets one write; a batch joins it only if no other task was posted to
  // the shard since that drain was (`posts` still equals `inbox_posts`), so every task posted
  // to the shard still runs in the order it was posted relative to the events' fan-out.
  // A drain's batches, up to hub::max_drain_events events in all.
  struct drain_group {
    std::vector<std::shared_ptr<const std::vector<event_ptr>>> batches;
    std::size_t events = 0;
  };
  std::mutex inbox_mu;
  std::deque<drain_group> inbox;
  std::uint64_t inbox_posts = 0;        // `posts` as the newest drain task was posted
  std::atomic<std::uint64_t> posts{0};  // tasks posted to this shard through the hub
  std::vector<event_ptr> merged;  // drain_inbox's scratch: the batches joined, in offset order
  std::uint64_t deliveries = 0;   // counted locally, published to stats_ per batch
  // Outbox tasks this shard posted to itself that have not run yet (flush_outboxes). While any
  // is pending no delivery takes the direct path: a session's events routed by post during a
  // resume's hand-over would otherwise be overtaken by its next batch, delivered directly once
  // the hand-over cleared route_via_post (a later seq first; the socket drops the earlier).
  std::size_t self_posts_pending = 0;
};

inline bool hub::wants(const session& s, const event& e, bool topic_matched) const {
  return session_wants(s, e, dir_, topic_matched);
}

// Makes this thread stand in for shard `shard` while in scope: import_sessions() fills shards
// before their threads run, through code that asserts it is on the session's home shard.
class shard_binding {
 public:
  explicit shard_binding(std::size_t shard) noexcept : saved_(this_shard) { this_shard = shard; }
  ~shard_binding() { this_shard = saved_; }
  shard_binding(const shard_binding&) = delete;
  shard_binding& operator=(const shard_binding&) = delete;

 private:
  std::size_t saved_;
};

}  // namespace herald
