// Cluster mode following tenants (docs/cluster.md "Fan-out"): a node receives the events of the
// tenants its sessions need, not every tenant's. A subscription, a resume or an adoption waits
// (when_delivering) until the store delivers every tenant it needs; the store's answer
// (tenant_delivering) raises each shard's frontier to where the tenant starts, so that no
// anchor taken after it counts an event of the tenant this node never delivered.
#include <algorithm>
#include <memory>

#include "core/clock.h"
#include "core/hub.h"
#include "core/hub_shard.h"

namespace herald {

std::vector<std::string> hub::tenants_needed(const principal& who, const tenant_set* set) {
  if (set != nullptr && !set->root.empty()) return {set->subtree ? std::string() : set->root};
  if (who.is_admin_app()) return {std::string()};
  return {who.tenant};
}

bool hub::covered(const std::vector<std::string>& need) const {
  if (delivering_.count(std::string_view()) != 0) return true;
  return std::all_of(need.begin(), need.end(),
                     [&](const std::string& t) { return delivering_.count(t) != 0; });
}

bool hub::delivers(const std::vector<std::string>& need) {
  if (!opts_.follow) return true;
  std::lock_guard l(follow_mu_);
  // Needed now, under the same lock as the answer: a sweep cannot drop what a caller was just
  // told delivers.
  const std::int64_t now = now_ms();
  for (const std::string& n : need) needed_at_[n] = now;
  return covered(need);
}

void hub::when_delivering(std::vector<std::string> need, sink_ref me, task t) {
  if (!opts_.follow) return t();
  {
    // follow() and unfollow() are called under follow_mu_ (queue pushes to the store): the
    // store sees them in the order this hub decided them.
    std::lock_guard l(follow_mu_);
    const std::int64_t now = now_ms();
    for (const std::string& n : need) needed_at_[n] = now;
    if (!covered(need)) {
      for (const std::string& n : need) {
        if (delivering_.count(n) == 0 && following_.insert(n).second) opts_.follow(n);
      }
      follow_waiters_.push_back(follow_waiter{std::move(need), me, std::move(t)});
      t = nullptr;
    }
  }
  if (!t) return;
  if (this_shard == me.shard) return t();
  on_socket_shard(me, std::move(t));
}

bool hub::wait_for_tenants(const principal& who, const tenant_set* set, sink_ref sink, task again) {
  auto need = tenants_needed(who, set);
  if (delivers(need)) return true;
  const std::size_t home = this_shard;
  when_delivering(std::move(need), sink, [this, home, again = std::move(again)]() mutable {
    run_on(home, std::move(again));
  });
  return false;
}

void hub::tenant_delivering(const std::string& tenant, std::int64_t from) {
  auto left = std::make_shared<std::atomic<std::size_t>>(shards_.size());
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, tenant, from, left] {
      auto& sh = *state_[i];
      sh.last_offset = std::max(sh.last_offset, from);
      if (left->fetch_sub(1) != 1) return;  // the last shard past it runs the waiting tasks
      std::vector<follow_waiter> ready;
      {
        std::lock_guard l(follow_mu_);
        following_.insert(tenant);
        delivering_.insert(tenant);
        auto keep = std::stable_partition(follow_waiters_.begin(), follow_waiters_.end(),
                                          [&](const follow_waiter& w) { return !covered(w.need); });
        std::move(keep, follow_waiters_.end(), std::back_inserter(ready));
        follow_waiters_.erase(keep, follow_waiters_.end());
      }
      for (follow_waiter& w : ready) on_socket_shard(w.me, std::move(w.t));
    });
  }
}

// Each shard, on its tick: the tenants its sessions (attached or detached: a detached
// session's ring keeps taking events) need are needed now. A tenant no session needed for
// unfollow_after_ms, and no task waits for, is unfollowed. "" (every tenant) last: while it
// delivers, the tenants its sessions need are followed one by one first, so that none of them
// stops delivering when it goes.
void hub::sweep_follows(shard_state& sh, std::int64_t now) {
  std::set<std::string, std::less<>> need;
  for (const auto& [id, s] : sh.sessions) {
    for (std::string& t : tenants_needed(s->who, s->sub ? &s->sub->tenants : nullptr))
      need.insert(std::move(t));
  }
  std::vector<std::string> drop;
  {
    std::lock_guard l(follow_mu_);
    for (const std::string& t : need) {
      needed_at_[t] = now;
      // Needed but not followed (nor covered by ""): asked for again, whatever dropped it.
      if (!covered({t}) && following_.insert(t).second) opts_.follow(t);
    }
    std::set<std::string, std::less<>> waited;
    for (const follow_waiter& w : follow_waiters_) waited.insert(w.need.begin(), w.need.end());
    bool all_idle = false;
    for (const std::string& t : following_) {
      if (waited.count(t) != 0) continue;
      auto at = needed_at_.find(t);
      if (at != needed_at_.end() && now - at->second <= opts_.unfollow_after_ms) continue;
      if (t.empty()) {
        all_idle = true;
        continue;
      }
      drop.push_back(t);
    }
    if (all_idle) {
      // Every tenant needed lately must deliver on its own before "" goes.
      bool alone = true;
      for (const auto& [t, at] : needed_at_) {
        if (t.empty() || now - at > opts_.unfollow_after_ms) continue;
        if (delivering_.count(t) != 0) continue;
        alone = false;
        if (following_.insert(t).second) opts_.follow(t);
      }
      if (alone) drop.emplace_back();
    }
    for (const std::string& t : drop) {
      following_.erase(t);
      delivering_.erase(t);
      needed_at_.erase(t);
      opts_.unfollow(t);
    }
    std::erase_if(needed_at_, [&](const auto& kv) {
      return following_.count(kv.first) == 0 && now - kv.second > opts_.unfollow_after_ms;
    });
  }
}

}  // namespace herald
