// The subscription index of one shard: which of the shard's sessions an event may be for. A
// topic trie per tenant, plus one `wide` trie for sessions that span tenants (admin apps and
// explicit tenant sets), which every event consults. `session_wants` then decides a candidate:
// tenant set, visibility policy, snapshot floor and the filters.
//
// Ownership: one per shard (hub::shard_state::index), touched only on that shard's thread, like
// the sessions it points to. A session is in the index while `session::in_index`; it must be
// removed before it is destroyed or its subscription changes (hub's set_subscription,
// clear_subscription and drop_session do so), since the tries key it by its filters' topics.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/session.h"
#include "core/topic_trie.h"

namespace herald {

class directory;

class subscription_index {
 public:
  // Indexes `s` under each of its subscription's filter topics. No-op without a subscription
  // or when already indexed.
  void add(session& s);
  // Takes `s` out (with the subscription it was added with). No-op when not indexed.
  void remove(session& s);

  // Calls f(session*) once for every session whose filter topics match `e`'s topic (a session
  // reached through several filters or both tries is still called once: match stamps).
  // Inline: it is the inner loop of every fan-out.
  template <class F>
  void match(const event& e, F&& f) {
    const std::uint64_t stamp = ++match_stamp_;
    auto once = [&](session* s) {
      if (s->match_stamp == stamp) return;
      s->match_stamp = stamp;
      f(s);
    };
    if (auto it = by_tenant_.find(e.tenant); it != by_tenant_.end())
      it->second.match(e.topic, once);
    if (!wide_.empty()) wide_.match(e.topic, once);
  }

 private:
  // A tenant-bound session (default tenant set, not an admin app) lives in its tenant's trie.
  static bool tenant_bound(const session& s);
  std::unordered_map<std::string, topic_trie> by_tenant_;
  topic_trie wide_;
  std::uint64_t match_stamp_ = 0;  // dedupes sessions reached through several filters
};

// The first rule of session_wants() that keeps `e` from `s`, in the order it applies them
// (kind none: it wants `e`). The one source of those rules: session_wants() and
// session_may_see() are this == none, and hub::explain reports it.
struct refusal {
  enum kind_t : std::uint8_t {
    none,
    no_subscription,
    tenant_set,      // outside the subscription's explicit tenant set
    policy,          // may_see(): `why` says which rule
    snapshot_floor,  // a snapshot copy of a newer state of the subject superseded it
    filters,         // no filter matched
  };
  kind_t kind = none;
  hidden why = hidden::none;
};
// policy_only: the tenant set and may_see() only (session_may_see()).
refusal session_refusal(const session& s, const event& e, const directory* dir,
                        bool topic_matched = false, bool policy_only = false);

// Whether session `s` takes event `e`: its tenant set, may_see() (role, app binding, user
// restrictions, subject flags from `dir`), its snapshot floor, and its filters. topic_matched:
// the index found `s` for `e` by an exact topic match, so topic-only filters need no re-check.
// Pure with respect to `s`: also used on a probe copy off the shards (log resume).
inline bool session_wants(const session& s, const event& e, const directory* dir,
                          bool topic_matched = false) {
  return session_refusal(s, e, dir, topic_matched).kind == refusal::none;
}

// The policy part of session_wants(): its tenant set and may_see() with its current principal,
// without filters or snapshot floors. A resume's replay passes only what this allows (events
// matched under rights since withdrawn are left out; their seq numbers are skipped).
inline bool session_may_see(const session& s, const event& e, const directory* dir) {
  return session_refusal(s, e, dir, false, true).kind == refusal::none;
}

// Whether no event of `tenant` can reach `s`, whatever its other fields: its tenant set, or
// its principal's tenant or role rule, refuses the tenant itself. A log resume counts across
// a hole of such tenants' events (hub_options::hole_tenants).
bool tenant_closed(const session& s, std::string_view tenant, const directory* dir);

// Whether `who` may still hold `sub` (re-checked when its rights change): the subscribe
// scope, a role that subscribes, and for a user every filter topic within its restrictions
// (extension segments, as when the subscription was made).
bool subscription_allowed(const principal& who, const subscription& sub);

}  // namespace herald
