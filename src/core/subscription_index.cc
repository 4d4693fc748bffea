#include "core/subscription_index.h"

#include <algorithm>

#include "core/directory.h"

namespace herald {

bool subscription_index::tenant_bound(const session& s) {
  return s.sub->tenants.root.empty() && !s.who.is_admin_app();
}

void subscription_index::add(session& s) {
  if (s.in_index || !s.sub) return;
  topic_trie& t = tenant_bound(s) ? by_tenant_[s.who.tenant] : wide_;
  for (const filter& f : s.sub->filters) t.add(f.spec().topic, &s);
  s.in_index = true;
}

void subscription_index::remove(session& s) {
  if (!s.in_index) return;
  if (tenant_bound(s)) {
    auto it = by_tenant_.find(s.who.tenant);
    if (it != by_tenant_.end()) {
      for (const filter& f : s.sub->filters) it->second.remove(f.spec().topic, &s);
      if (it->second.empty()) by_tenant_.erase(it);  // tenants come and go: no empty tries
    }
  } else {
    for (const filter& f : s.sub->filters) wide_.remove(f.spec().topic, &s);
  }
  s.in_index = false;
}

refusal session_refusal(const session& s, const event& e, const directory* dir, bool topic_matched,
                        bool policy_only) {
  if (!s.sub) return {refusal::no_subscription};
  const tenant_set& ts = s.sub->tenants;
  if (!ts.root.empty()) {
    if (ts.subtree ? !(dir != nullptr && dir->in_subtree(e.tenant, ts.root)) : e.tenant != ts.root)
      return {refusal::tenant_set};
  }
  // An explicit set (a stored subscription's) bounds the tenants itself (may_see_in_set).
  const hidden h = ts.root.empty() ? why_hidden(s.who, e, dir) : why_hidden_in_set(s.who, e, dir);
  if (h != hidden::none) return {refusal::policy, h};
  if (policy_only) return {};
  if (!s.snapshot_floor.empty() && !e.subject.empty()) {
    auto it = s.snapshot_floor.find(e.subject);
    if (it != s.snapshot_floor.end() && e.offset <= it->second) return {refusal::snapshot_floor};
  }
  // The trie's match is exact on topics: filters that constrain nothing else need no re-check.
  if (topic_matched && std::all_of(s.sub->filters.begin(), s.sub->filters.end(),
                                   [](const filter& f) { return f.topic_only(); }))
    return {};
  return any_matches(s.sub->filters, e) ? refusal{} : refusal{refusal::filters};
}

bool tenant_closed(const session& s, std::string_view tenant, const directory* dir) {
  event stub;
  stub.tenant = std::string(tenant);
  const refusal r = session_refusal(s, stub, dir, false, true);
  return r.kind == refusal::no_subscription || r.kind == refusal::tenant_set ||
         (r.kind == refusal::policy && (r.why == hidden::tenant || r.why == hidden::role));
}

bool subscription_allowed(const principal& who, const subscription& sub) {
  if (!who.has(scope_subscribe)) return false;
  if (who.kind == principal_kind::app) return who.app_role != role::publisher;
  return std::all_of(sub.filters.begin(), sub.filters.end(), [&](const filter& f) {
    return topic_allowed(who, who.tenant, f.spec().topic);
  });
}

}  // namespace herald
