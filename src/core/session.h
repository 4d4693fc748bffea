// A session (native.md §1): the unit of delivery a connection belongs to. It holds the one
// subscription, the contiguous per-session `seq`, and the recovery ring of its last deliveries.
// Owned by its home shard (the shard it was created on) and touched only on that shard's thread;
// a connection on another shard reaches it through hub calls. Outlives its socket for the
// recovery window.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/close_reason.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/lazy_deque.h"
#include "core/principal.h"

namespace herald {

// Where a connection lives: its shard and its id on that shard's sink table. conn == 0: none.
struct sink_ref {
  std::size_t shard = 0;
  std::uint64_t conn = 0;
  explicit operator bool() const noexcept { return conn != 0; }
};

// An event held by the rings of one shard's sessions. A ring entry counts its reference here
// without atomics (only the shard's thread touches its sessions), and the pin holds the one
// shared reference of that shard: fanning an event out to 1,000 sessions of a shard costs one
// atomic count, not 1,000 (an atomic per ring entry was ~12 % of a fan-out profile).
class event_pin {
 public:
  event_pin() = default;
  static event_pin make(event_ptr e) { return event_pin(new held{std::move(e), 0}); }
  event_pin(const event_pin& o) noexcept : h_(o.h_) {
    if (h_ != nullptr) ++h_->refs;
  }
  event_pin(event_pin&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  event_pin& operator=(event_pin o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~event_pin() {
    if (h_ != nullptr && --h_->refs == 0) delete h_;
  }
  explicit operator bool() const noexcept { return h_ != nullptr; }
  const event_ptr& get() const noexcept { return h_->ev; }

 private:
  struct held {
    event_ptr ev;
    std::uint32_t refs;
  };
  explicit event_pin(held* h) noexcept : h_(h) { ++h_->refs; }
  held* h_ = nullptr;
};

// The tenant set a subscription matches in (native.md §1).
struct tenant_set {
  std::string root;      // "" = the principal's default reach (own tenant, or all for admins)
  bool subtree = false;  // root and its descendants
};

struct subscription {
  std::string id;  // "sub_…" (or a dialect's id)
  std::vector<filter> filters;
  bool snapshot = false;
  tenant_set tenants;
};

// What a session needs to survive a restart (drain persists it, start-up imports it). The
// ring is not kept: resumes re-derive it from the log through the anchor.
struct session_state {
  std::string id, resume_token, dialect;
  std::string resume_hash;  // hub_options::token_digest of the token: kept instead of it
  principal who;
  std::uint64_t seq = 0, seq_base = 0;
  bool has_sub = false;
  std::string sub_id;
  std::vector<filter_spec> filters;  // `~` already resolved
  bool snapshot = false;
  tenant_set tenants;
  bool anchor_valid = false;
  std::uint64_t anchor_seq = 0;
  std::int64_t anchor_offset = 0;
  std::int64_t processed_offset = 0;  // events above it were not matched yet at export
  // The dialect's recovery settings (a RingCentral session keeps its own buffer and window).
  std::size_t ring_capacity = 0;
  std::int64_t recovery_window_ms = 0;
  bool log_replay = true;
  // false: the seq could not be pinned when this was stored (a snapshot was being gathered):
  // imported, every resume answers buffer_overflow.
  bool exact = true;
};

struct session {
  std::string id;
  std::string resume_token;  // empty for a session imported from a record: see resume_hash
  std::string resume_hash;   // the token's digest (imported sessions), until a resume shows it
  principal who;
  std::string dialect;
  std::size_t home_shard = 0;
  // Imported with a seq that may not be exact (the log lost events after its anchor, or the
  // record was stored mid-snapshot): a resume answers buffer_overflow, never a relabelled replay.
  bool inexact = false;
  // Crash safety (hub_persist.cc): while a subscription's record is being made durable, acks
  // (with_session_then tasks) and live matches wait; hold_gen names the newest such write.
  bool durable_hold = false;
  // Cluster mode: being adopted from another node's record (hub_recovery.cc): its seq is not
  // caught up yet, so live matches wait in `pending` (durable_hold) and resumes in after_durable.
  bool adopting = false;
  std::uint64_t hold_gen = 0;
  std::vector<std::pair<sink_ref, std::function<void()>>> after_durable;

  std::optional<subscription> sub;
  std::shared_ptr<const std::string> sub_id;  // rendered once, shared by every delivery
  std::uint64_t seq = 0;
  std::uint64_t seq_base = 0;
  std::int64_t sub_from_offset = 0;  // events above this offset are matched by `sub`  // a
                                     // dialect's fixed offset (RingCentral wsc base)
  lazy_deque<std::pair<std::uint64_t, event_pin>> ring;
  std::size_t ring_capacity = 1000;
  // false: a resume never pages a gap older than the ring from the log (RingCentral: a gap
  // past recoveryBufferSize is HRD-1002, ringcentral.md §4.4).
  bool log_replay = true;
  std::int64_t recovery_window_ms = 180000;

  sink_ref sink;
  std::int64_t detached_at_ms = 0;  // valid while !sink
  // For hub::explain, set by detach(): the home shard's offset frontier then (later events
  // matched wait in the ring), and why the server closed the socket (none: the client left).
  std::int64_t detached_offset = 0;
  std::optional<close_reason> detached_why;
  bool listed_detached = false;  // in its shard's list of detached sessions (hub::tick)
  bool in_index = false;
  std::uint64_t match_stamp = 0;  // the last event this session was considered for
  // hub::fan_out's grouping of a batch by session: events matched, next slot to fill.
  std::uint32_t batch_hits = 0, batch_next = 0;
  bool route_via_post = false;
  // The log anchor: the seq and this shard's offset frontier when the current subscription
  // began matching live events. With it, deliveries older than the ring are re-derived from
  // the event log by matching again (same filters, same policy epoch).
  bool anchor_valid = false;
  std::uint64_t anchor_seq = 0;
  std::int64_t anchor_offset = 0;
  std::uint64_t anchor_epoch = 0;
  bool replaying = false;  // a resume is reading the log: new matches wait in the ring  // a resume
                           // hand-over is in flight: keep deliveries FIFO

  // Snapshot gating: while gathering, live matches wait in `pending` (no seq yet).
  bool gathering = false;
  std::vector<event_ptr> pending;
  std::unordered_map<std::string, std::int64_t> snapshot_floor;  // subject -> copy's offset
  // snapshot:true sessions: the offset of the last retained event of each subject delivered.
  std::unordered_map<std::string, std::int64_t> last_of_subject;
};

}  // namespace herald
