#include "store/memory/memory_store.h"

#include <algorithm>

#include <boost/json/parse.hpp>

#include "core/clock.h"
#include "store/batch_check.h"

namespace herald {

namespace {

bool tenant_in(const std::vector<std::string>& tenants, const std::string& t) {
  return tenants.empty() || std::find(tenants.begin(), tenants.end(), t) != tenants.end();
}

error closed_error() { return {errc::unavailable, "store is closed"}; }

}  // namespace

void memory_store::set_append_listener(append_listener l) {
  std::lock_guard lk(append_mu_);
  listener_ = std::move(l);
}

result<std::vector<event_ptr>> memory_store::append(std::vector<event_draft> batch,
                                                    append_record with) {
  if (status st = store_detail::check_batch(batch); !st) return st.err();
  std::lock_guard append_lk(append_mu_);
  std::vector<event_ptr> out;
  out.reserve(batch.size());
  {
    std::unique_lock lk(mu_);
    if (closed_) return closed_error();
    if (batch.empty()) return out;
    const std::int64_t now = now_ms();
    for (event_draft& d : batch) {
      auto ev = store_detail::event_from_draft(std::move(d));
      ev->offset = ++last_offset_;
      last_time_ms_ = std::max(now, last_time_ms_);
      ev->time_ms = last_time_ms_;
      event_ptr p = std::move(ev);
      events_.emplace(p->offset, p);
      by_id_.emplace(p->id, p->offset);
      if (!p->subject.empty()) {
        subject_key k{p->tenant, p->subject};
        if (p->retain) states_[k] = p;
        seen_.insert(std::move(k));
      }
      out.push_back(std::move(p));
    }
    if (with.json) records_[with.kind][with.key] = with.json(out);
  }
  // Still under append_mu_ (so batches reach the listener in offset order) but not under mu_
  // (so the listener may read the store).
  if (listener_) listener_(out);
  return out;
}

result<std::vector<event_ptr>> memory_store::read(const log_query& q) {
  std::shared_lock lk(mu_);
  std::vector<event_ptr> out;
  for (auto it = events_.upper_bound(q.after_offset); it != events_.end(); ++it) {
    if (out.size() >= q.limit) break;
    const event& e = *it->second;
    if (q.until_ms && e.time_ms >= *q.until_ms) break;  // time never decreases along offsets
    if (q.since_ms && e.time_ms < *q.since_ms) continue;
    if (!tenant_in(q.tenants, e.tenant)) continue;
    if (q.subject && e.subject != *q.subject) continue;
    out.push_back(it->second);
  }
  return out;
}

result<store::event_lookup> memory_store::find_event(std::string_view id) {
  std::shared_lock lk(mu_);
  event_lookup out;
  if (auto at = by_id_.find(id); at != by_id_.end()) out.ev = events_.at(at->second);
  out.pruned_any = static_cast<std::int64_t>(events_.size()) < last_offset_;
  return out;
}

result<std::optional<event_ptr>> memory_store::state(std::string_view tenant,
                                                     std::string_view subject) {
  std::shared_lock lk(mu_);
  auto it = states_.find(subject_key{std::string(tenant), std::string(subject)});
  if (it == states_.end()) return std::optional<event_ptr>{};
  return std::optional<event_ptr>{it->second};
}

result<std::vector<event_ptr>> memory_store::states(const std::vector<std::string>& tenants) {
  std::shared_lock lk(mu_);
  std::vector<event_ptr> out;
  for (const auto& [k, e] : states_) {
    if (tenant_in(tenants, k.first)) out.push_back(e);
  }
  std::sort(out.begin(), out.end(),
            [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
  return out;
}

result<bool> memory_store::subject_seen(std::string_view tenant, std::string_view subject) {
  std::shared_lock lk(mu_);
  return seen_.count(subject_key{std::string(tenant), std::string(subject)}) > 0;
}

status memory_store::put_record(std::string_view kind, std::string_view key,
                                std::string_view json) {
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  auto& m = records_[std::string(kind)];
  auto it = m.find(key);
  if (it == m.end()) {
    m.emplace(std::string(key), std::string(json));
  } else {
    it->second.assign(json);
  }
  return {};
}

status memory_store::write_records(std::string_view kind, std::vector<record_write> writes) {
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  auto& m = records_[std::string(kind)];
  for (auto& r : writes) {
    if (r.json)
      m.insert_or_assign(std::move(r.key), std::move(*r.json));
    else if (auto it = m.find(r.key); it != m.end())
      m.erase(it);
  }
  return {};
}

status memory_store::erase_record(std::string_view kind, std::string_view key) {
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  auto k = records_.find(kind);
  if (k == records_.end()) return {};
  if (auto it = k->second.find(key); it != k->second.end()) k->second.erase(it);
  return {};
}

result<std::optional<std::string>> memory_store::get_record(std::string_view kind,
                                                            std::string_view key) {
  std::shared_lock lk(mu_);
  auto k = records_.find(kind);
  if (k == records_.end()) return std::optional<std::string>{};
  auto it = k->second.find(key);
  if (it == k->second.end()) return std::optional<std::string>{};
  return std::optional<std::string>{it->second};
}

result<std::vector<stored_record>> memory_store::load_records(std::string_view kind) {
  std::shared_lock lk(mu_);
  std::vector<stored_record> out;
  auto k = records_.find(kind);
  if (k == records_.end()) return out;
  out.reserve(k->second.size());
  for (const auto& [key, json] : k->second) out.push_back(stored_record{key, json});
  return out;
}

result<bool> memory_store::claim_once(std::string_view key, std::int64_t expires_ms) {
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  return once_.emplace(std::string(key), expires_ms).second;
}

status memory_store::prune(std::int64_t before_ms) {
  const std::int64_t now = now_ms();
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  for (auto it = events_.begin(); it != events_.end();) {
    const event& e = *it->second;
    if (e.time_ms >= before_ms) break;  // time never decreases along offsets
    if (e.retain) {
      auto s = states_.find(subject_key{e.tenant, e.subject});
      if (s != states_.end() && s->second->offset == e.offset) {
        ++it;
        continue;
      }
    }
    by_id_.erase(it->second->id);
    it = events_.erase(it);
  }
  std::erase_if(once_, [now](const auto& kv) { return kv.second < now; });
  return {};
}

result<std::size_t> memory_store::prune_records(std::string_view kind, std::int64_t now_ms) {
  std::unique_lock lk(mu_);
  if (closed_) return closed_error();
  auto k = records_.find(kind);
  if (k == records_.end()) return std::size_t{0};
  using entry = std::pair<const std::string, std::string>;
  return static_cast<std::size_t>(std::erase_if(k->second, [now_ms](const entry& kv) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(kv.second, ec);
    if (ec || !v.is_object()) return false;
    const auto* e = v.as_object().if_contains("expires_ms");
    if (e == nullptr || !e->is_number()) return false;
    const double at = e->to_number<double>();
    return at >= 1 && at <= static_cast<double>(now_ms);
  }));
}

status memory_store::ping() {
  std::shared_lock lk(mu_);
  if (closed_) return closed_error();
  return {};
}

void memory_store::close() {
  // The append mutex first (the lock order of append()): an append in progress, listener call
  // included, completes before the store reports closed; later ones fail.
  std::lock_guard append_lk(append_mu_);
  std::unique_lock lk(mu_);
  closed_ = true;
}

std::int64_t memory_store::last_offset() const {
  std::shared_lock l(mu_);
  return last_offset_;
}

}  // namespace herald
