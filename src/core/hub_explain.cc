// Why: did session S get event E, and if not, the first rule that kept it (the admin API's
// GET /v1/admin/why). The verdict is built from the very predicates the fan-out applies
// (session_refusal, filter::check, why_hidden) and from the session's own state on its home
// shard: its ring (seq of recent deliveries), its log anchor (older seqs, counted from the log
// as a resume does), and where it was detached.
//
// Threads: explain() blocks its caller (the blocking pool) on a post to the session's home
// shard; a seq older than the ring is counted from the log on the caller's thread with a probe
// copy of the session, never the session itself.
#include <algorithm>
#include <future>

#include "core/clock.h"
#include "core/directory.h"
#include "core/hub_shard.h"

namespace herald {
namespace {

std::string offset_text(std::int64_t o) { return std::to_string(o); }

// The rule name and words for a refusal of session_refusal().
void describe(const refusal& r, const session& s, const event& e, why_verdict& v) {
  switch (r.kind) {
    case refusal::none:
      return;
    case refusal::no_subscription:
      v.rule = "no_subscription";
      v.detail = "the session holds no subscription";
      return;
    case refusal::tenant_set:
      v.rule = "tenant";
      v.detail = "tenant '" + e.tenant + "' is outside the subscription's tenant set (" +
                 s.sub->tenants.root + (s.sub->tenants.subtree ? " and its subtree)" : ")");
      return;
    case refusal::policy:
      v.rule = hidden_name(r.why);
      switch (r.why) {
        case hidden::role:
          v.detail = "app role 'publisher' sees no events";
          break;
        case hidden::tenant:
          v.detail = "event of tenant '" + e.tenant + "'; the session acts for tenant '" +
                     s.who.tenant + "'";
          break;
        case hidden::app:
          v.detail =
              "the event names app '" + e.app + "'; the session's app is '" + s.who.app_id + "'";
          break;
        case hidden::restriction:
          v.detail = "user '" + s.who.user_id + "' may not see topic '" + e.topic +
                     "' or subject '" + e.subject + "' (extension or tracker restriction)";
          break;
        case hidden::subject_blocked:
          v.detail = "subject '" + e.subject + "' is blocked";
          break;
        case hidden::subject_corrupted:
          v.detail = "subject '" + e.subject + "' is corrupted";
          break;
        case hidden::none:
          break;
      }
      return;
    case refusal::snapshot_floor:
      v.rule = "snapshot_superseded";
      v.detail = "a snapshot copy of a newer state of subject '" + e.subject + "' replaced it";
      return;
    case refusal::filters:
      v.rule = "no_filter_matched";
      v.detail = "none of the subscription's " + std::to_string(s.sub->filters.size()) +
                 " filters matched";
      return;
  }
}

}  // namespace

why_verdict hub::explain_on_home(shard_state& sh, session& s, const event_ptr& e,
                                 bool& need_count) {
  assert_on_shard(s.home_shard);
  need_count = false;
  why_verdict v;
  v.dialect = s.dialect;
  if (s.sub)
    for (const filter& f : s.sub->filters) {
      why_verdict::filter_result fr{f.spec(), false, {}};
      fr.matched = f.check(*e, &fr.why) == filter::miss::none;
      v.filters.push_back(std::move(fr));
    }
  const refusal r = session_refusal(s, *e, dir_);
  for (const auto& [seq, pin] : s.ring)
    if (pin.get()->offset == e->offset) v.seq = s.seq_base + seq;
  // In the ring: it matched (rules then) and took its seq; what became of it depends on the
  // socket. Outside it: today's rules first, then what the session's state says.
  const bool after_detach = s.detached_at_ms != 0 && e->offset > s.detached_offset;
  if (!v.seq && r.kind != refusal::none) {
    describe(r, s, *e, v);
    return v;
  }
  if (!v.seq) {
    if (e->offset > sh.last_offset) {
      v.rule = "not_yet_matched";
      v.detail = "the event (offset " + offset_text(e->offset) +
                 ") has not reached the session's shard yet (it is at offset " +
                 offset_text(sh.last_offset) + ")";
      return v;
    }
    if (std::any_of(s.pending.begin(), s.pending.end(),
                    [&](const event_ptr& p) { return p->offset == e->offset; })) {
      v.rule = "held";
      v.detail = s.gathering ? "held while the subscription's snapshot is gathered"
                             : "held until the subscription's record is durable";
      return v;
    }
    if (!s.anchor_valid || e->offset <= s.anchor_offset) {
      v.rule = "before_subscription";
      v.detail = "the session's subscription matches events after offset " +
                 offset_text(s.anchor_offset) + " (subscribed, re-anchored by a snapshot, an " +
                 "unblock or a rights change); the event is at offset " + offset_text(e->offset) +
                 " and no longer in the session's ring";
      return v;
    }
    need_count = true;
  }
  if (!s.sink && after_detach) {
    const bool slow = s.detached_why == close_reason::slow_consumer;
    v.rule = slow ? "slow_consumer" : "session_detached";
    v.detail = std::string(slow ? "the socket was cut as a slow consumer (send queue over its "
                                  "bound)"
                                : "the session has no socket") +
               " since " + format_rfc3339_ms(s.detached_at_ms) + " (offset " +
               offset_text(s.detached_offset) + "); the event matched after it and waits for a " +
               "resume within the recovery window" +
               (s.detached_why && !slow ? std::string(" (closed by the server: ") +
                                              close_reason_name(*s.detached_why) + ")"
                                        : std::string());
    return v;
  }
  // Matched after a detach and the session resumed since: the resume's replay passed only what
  // the policy allowed then (session_may_see), taken as today's.
  if (after_detach && (r.kind == refusal::policy || r.kind == refusal::tenant_set)) {
    describe(r, s, *e, v);
    v.detail += " (matched while the session was detached; its resume left it out)";
    return v;
  }
  v.delivered = true;
  v.at_ms = e->time_ms;
  if (r.kind != refusal::none) {
    why_verdict now;
    describe(r, s, *e, now);
    v.detail = "handed to the session's socket; today's rules would withhold it (" + now.rule +
               ": " + now.detail + ")";
  }
  return v;
}

std::optional<why_verdict> hub::explain(const std::string& session_id, const std::string& event_id,
                                        event_ptr e) {
  assert(this_shard == npos);  // blocks on a shard: a shard waiting on itself would hang
  std::size_t home = npos;
  std::optional<std::int64_t> expired_at;
  auto gone = [&]() -> std::optional<why_verdict> {
    if (!expired_at) return std::nullopt;
    why_verdict v;
    v.rule = "session_expired";
    v.detail = "the session ended at " + format_rfc3339_ms(*expired_at) +
               ": detached past its recovery window (or past the bound on detached sessions)";
    return v;
  };
  auto lookup = [&] {
    std::lock_guard l(registry_mu_);
    if (auto it = home_of_.find(session_id); it != home_of_.end()) home = it->second;
    if (auto it = expired_.find(session_id); it != expired_.end()) expired_at = it->second.second;
  };
  lookup();
  if (home == npos) return gone();

  // What the log count needs, copied on the home shard (a probe session, as a resume's replay).
  struct outcome {
    bool found = false, need_count = false;
    why_verdict v;
    std::shared_ptr<session> probe;
    std::int64_t anchor_offset = 0;
    std::uint64_t anchor_seq = 0, anchor_epoch = 0, seq_base = 0;
  };
  auto p = std::make_shared<std::promise<outcome>>();
  auto f = p->get_future();
  post(home, [this, home, p, session_id, event_id, e] {
    assert_on_shard(home);
    auto& sh = *state_[home];
    outcome o;
    session* s = sh.find_session(session_id);
    if (s == nullptr) return p->set_value(std::move(o));
    o.found = true;
    event_ptr ev = e;
    if (!ev)
      for (const auto& [seq, pin] : s->ring)
        if (pin.get()->id == event_id) ev = pin.get();
    if (!ev) {
      o.v.rule = "event_missing";
      o.v.dialect = s->dialect;
      return p->set_value(std::move(o));
    }
    o.v = explain_on_home(sh, *s, ev, o.need_count);
    if (o.need_count) {
      o.probe = std::make_shared<session>();
      o.probe->who = s->who;
      o.probe->sub = s->sub;
      o.probe->snapshot_floor = s->snapshot_floor;
      o.anchor_offset = s->anchor_offset;
      o.anchor_seq = s->anchor_seq;
      o.anchor_epoch = s->anchor_epoch;
      o.seq_base = s->seq_base;
    }
    p->set_value(std::move(o));
  });
  outcome o = f.get();
  if (!o.found) {
    lookup();  // it ended meanwhile
    return gone();
  }
  if (!o.need_count || !e) return o.v;
  // Past the ring: the k-th match after the anchor had seq anchor_seq + k (hub_recovery.cc),
  // if the policy is the anchor's and the log kept every event since (offsets are dense).
  const bool same_policy = o.anchor_epoch == (dir_ != nullptr ? dir_->policy_epoch() : 0);
  const std::size_t max_scan = opts_.max_log_replay * 10;
  std::string why_not;
  if (!opts_.read_log) {
    why_not = "no event log to count from";
  } else if (!same_policy) {
    why_not = "subject or user rights changed since the subscription's anchor";
  } else if (static_cast<std::uint64_t>(e->offset - o.anchor_offset) > max_scan) {
    why_not = "more than " + std::to_string(max_scan) + " events since the anchor";
  } else {
    std::int64_t after = o.anchor_offset;
    std::uint64_t k = o.anchor_seq;
    while (why_not.empty() && after < e->offset) {
      auto page = opts_.read_log(after, 1000);
      if (page.empty()) why_not = "the log ends before the event";
      for (const event_ptr& x : page) {
        if (x->offset != after + 1 && !hole_closed_to(*o.probe, after + 1, x->offset - 1)) {
          why_not = "log_retention pruned events since the anchor";
          break;
        }
        after = x->offset;
        if (wants(*o.probe, *x)) ++k;
        if (after == e->offset) break;
      }
    }
    if (why_not.empty()) o.v.seq = o.seq_base + k;
  }
  if (!why_not.empty()) o.v.detail = "seq unknown: " + why_not;
  return o.v;
}

}  // namespace herald
