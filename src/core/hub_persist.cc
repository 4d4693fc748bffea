// Session persistence. Across a drain: export_sessions() after the server stopped,
// import_sessions() before the new one starts. Across a crash (kill -9, power loss): with
// hub_options::persist set, every change of what a resume needs (subscription, anchor,
// principal, resume-token digest) is written as a record, and a subscription is acknowledged
// only once its record is durable (the store group-commits these writes with the appends).
// The ring is never kept: import re-derives seq by matching the log after each session's
// recorded offset, and a resume re-derives older deliveries from the log through the anchor.
//
// Why a crash record stores the anchor, not the live seq: between two records every seq a
// session hands out is a log match in offset order after its anchor (a snapshot copy or an
// unblocked state moves the anchor and writes a new record), and the hub sees an event only
// once it is durable, so counting the committed matches after the anchor gives back exactly
// the seq each delivered event had. Where that count cannot be trusted (the log lost events
// after the anchor, a record written mid-snapshot) the session is marked inexact and every
// resume answers buffer_overflow.
//
// Threads: export/import run while no shard thread does (that is the contract), so they touch
// every shard's state from the calling thread; import binds the thread to the shard it fills,
// so the home-shard asserts of the code it reuses hold. save_session/forget_session run on the
// session's home shard; submit_persist is thread-safe (persist_mu_).
#include <algorithm>
#include <limits>

#include "core/clock.h"
#include "core/directory.h"
#include "core/hub_shard.h"

namespace herald {

session_state hub::state_of(const session& s, std::uint64_t seq, std::int64_t processed) const {
  session_state st;
  st.id = s.id;
  if (s.resume_token.empty())
    st.resume_hash = s.resume_hash;  // imported, not resumed since: the token is unknown
  else if (opts_.token_digest)
    st.resume_hash = opts_.token_digest(s.resume_token);
  else
    st.resume_token = s.resume_token;
  st.dialect = s.dialect;
  st.who = s.who;
  st.seq = seq;
  st.seq_base = s.seq_base;
  if (s.sub) {
    st.has_sub = true;
    st.sub_id = s.sub->id;
    for (const auto& f : s.sub->filters) st.filters.push_back(f.spec());
    st.snapshot = s.sub->snapshot;
    st.tenants = s.sub->tenants;
  }
  st.anchor_valid = s.anchor_valid && !s.gathering;
  st.anchor_seq = s.anchor_seq;
  st.anchor_offset = s.anchor_offset;
  st.processed_offset = processed;
  st.ring_capacity = s.ring_capacity;
  st.recovery_window_ms = s.recovery_window_ms;
  st.log_replay = s.log_replay;
  st.exact = !s.inexact;
  return st;
}

std::vector<session_state> hub::export_sessions() const {
  std::vector<session_state> out;
  for (const auto& sh : state_)
    for (const auto& [id, sp] : sh->sessions)
      out.push_back(state_of(*sp, sp->seq, sh->last_offset));
  return out;
}

// ---- crash-safe records

void hub::save_session(session& s, bool hold_acks) {
  assert_on_shard(s.home_shard);
  // A session that cannot outlive a restart (smsgw: a window of 1 ms) needs no record.
  if (!opts_.persist || s.recovery_window_ms < 1000) return;
  const auto& sh = *state_[s.home_shard];
  session_state st;
  if (!s.sub)
    st = state_of(s, s.seq, sh.last_offset);  // nothing matches: seq stays as it is
  else if (s.anchor_valid && !s.gathering)
    st = state_of(s, s.anchor_seq, s.anchor_offset);  // import counts the matches after it
  else {
    st = state_of(s, s.seq, sh.last_offset);
    st.exact = false;  // a snapshot is being gathered: its copies' seqs are not in the log
  }
  std::function<void()> done;
  if (hold_acks) {
    s.durable_hold = true;
    const std::uint64_t gen = ++s.hold_gen;
    done = [this, home = s.home_shard, id = s.id, gen] {
      run_on(home, [this, home, id, gen] {
        session* s2 = state_[home]->find_session(id);
        if (s2 != nullptr && s2->hold_gen == gen) release_hold(*s2);
      });
    };
  }
  submit_persist(s.id, std::move(st), std::move(done));
}

void hub::forget_session(const std::string& id) {
  if (opts_.persist) submit_persist(id, std::nullopt, {});
}

void hub::submit_persist(const std::string& id, std::optional<session_state> st,
                         std::function<void()> done) {
  {
    std::lock_guard l(persist_mu_);
    auto [it, fresh] = persisting_.try_emplace(id);
    if (!fresh) {  // one in flight: this one replaces whatever waited behind it
      it->second.queued = true;
      it->second.next = std::move(st);
      if (done) it->second.dones.push_back(std::move(done));
      return;
    }
  }
  // Runs when the write is durable: its own callback, then the newest state queued meanwhile.
  auto finished = [this, id, done = std::move(done)] {
    if (done) done();
    std::optional<session_state> next;
    std::vector<std::function<void()>> dones;
    {
      std::lock_guard l(persist_mu_);
      auto it = persisting_.find(id);
      if (it == persisting_.end()) return;
      if (!it->second.queued) {
        persisting_.erase(it);
        return;
      }
      next = std::move(it->second.next);
      dones = std::move(it->second.dones);
      persisting_.erase(it);
    }
    submit_persist(id, std::move(next), [dones = std::move(dones)] {
      for (const auto& d : dones) d();
    });
  };
  opts_.persist(id, std::move(st), std::move(finished));
}

// The record is durable: the acks that waited go out, then the matches held meanwhile.
void hub::release_hold(session& s) {
  assert_on_shard(s.home_shard);
  auto& sh = *state_[s.home_shard];
  s.durable_hold = false;
  for (auto& [me, t] : std::exchange(s.after_durable, {})) on_socket_shard(me, std::move(t));
  if (s.gathering) return;  // a snapshot's release delivers them
  std::vector<event_ptr> held;
  held.swap(s.pending);
  for (const event_ptr& e : held)
    if (wants(s, *e)) emit(sh, s, e, false);
  flush_outboxes(sh);
}

// ---- import

session& hub::install_session(const session_state& st, std::size_t shard, std::int64_t now) {
  assert_on_shard(shard);
  auto& sh = *state_[shard];
  auto s = std::make_unique<session>();
  s->id = st.id;
  s->resume_token = st.resume_token;
  s->resume_hash = st.resume_hash;
  s->inexact = !st.exact;
  s->who = st.who;
  s->dialect = st.dialect;
  s->home_shard = shard;
  s->seq = st.seq;
  s->seq_base = st.seq_base;
  s->ring_capacity = st.ring_capacity != 0 ? st.ring_capacity : opts_.recovery_buffer;
  s->recovery_window_ms =
      st.recovery_window_ms != 0 ? st.recovery_window_ms : opts_.recovery_window_ms;
  s->log_replay = st.log_replay;
  s->detached_at_ms = now;
  s->detached_offset = st.processed_offset;  // later matches were never sent
  if (st.has_sub) {
    subscription sub;
    sub.id = st.sub_id;
    sub.snapshot = st.snapshot;
    sub.tenants = st.tenants;
    bool ok = true;
    filter_limits unlimited{1u << 20, 1u << 20, 1u << 20, 1u << 20};
    for (const auto& spec : st.filters) {
      auto f = filter::compile(spec, st.who.tenant, unlimited);
      if (!f) {
        ok = false;
        break;
      }
      sub.filters.push_back(std::move(*f));
    }
    if (ok) {
      s->sub_id = std::make_shared<const std::string>(sub.id);
      s->sub = std::move(sub);
      sh.index.add(*s);
    }
  }
  s->anchor_valid = st.anchor_valid && s->sub.has_value();
  s->anchor_seq = st.anchor_seq;
  s->anchor_offset = st.anchor_offset;
  s->anchor_epoch = dir_ != nullptr ? dir_->policy_epoch() : 0;
  {
    std::lock_guard l(registry_mu_);
    home_of_[s->id] = shard;
  }
  session& kept = *s;
  note_detached(sh, kept);
  sh.sessions.emplace(kept.id, std::move(s));
  stats_.sessions_open.fetch_add(1, std::memory_order_relaxed);
  return kept;
}

void hub::import_sessions(const std::vector<session_state>& states) {
  const std::int64_t now = now_ms();
  std::size_t next = 0;
  std::unordered_map<session*, std::int64_t> since;  // matched the log up to this offset
  std::int64_t from = std::numeric_limits<std::int64_t>::max();
  for (const session_state& st : states) {
    const std::size_t shard = next++ % shards_.size();
    const shard_binding as_home(shard);  // the shard's thread does not run yet
    session& s = install_session(st, shard, now);
    if (s.sub && opts_.read_log) {
      since.emplace(&s, st.processed_offset);
      from = std::min(from, st.processed_offset);
    }
  }
  if (since.empty()) return;
  // Catch up in one pass over the log: each session takes the events committed after its
  // recorded offset, through its shard's index, as a live fan-out would have.
  std::int64_t after = from;
  std::int64_t missing = 0;  // the highest offset the log no longer holds (retention)
  for (;;) {
    auto page = opts_.read_log(after, 1000);
    if (page.empty()) break;
    for (const event_ptr& e : page) {
      if (e->offset != after + 1) missing = e->offset - 1;
      after = e->offset;
      for (std::size_t i = 0; i < state_.size(); ++i) {
        const shard_binding as_home(i);
        auto& sh = *state_[i];
        sh.index.match(*e, [&](session* s) {
          auto it = since.find(s);
          if (it == since.end() || e->offset <= it->second || !wants(*s, *e, true)) return;
          emit(sh, *s, e, false);
        });
      }
    }
  }
  for (const auto& [s, processed] : since)
    if (processed < missing) s->inexact = true;  // its count skipped what was pruned
  for (auto& sh : state_) sh->deliveries = 0;    // nothing was delivered
}

}  // namespace herald
