// Recovery: a session outliving its socket. detach() starts the recovery window, tick()
// expires what passed it, resume() moves a session to a new socket with the deliveries it
// missed — from the session's ring, or past it re-matched from the event log off the shards —
// and hand_over() delivers those to the new socket before any live event.
//
// Threads: resume() is thread-safe; it finds the session's home shard in the registry
// (home_of_, under registry_mu_) and continues there. Everything touching a session runs on
// its home shard, a hand-over's delivery on the new sink's shard, the log read on the
// `blocking` pool with a probe copy (never the session itself); each asserted in debug builds.
// A resume's callback never runs for a socket that has gone meanwhile.
#include <algorithm>
#include <deque>

#include "core/clock.h"
#include "core/directory.h"
#include "core/hub_shard.h"

namespace herald {
namespace {
// Constant-time comparison for secrets of equal public length.
bool same_secret(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff = static_cast<unsigned char>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

// Whether `token` is the one a session keeps as `kept` (the token itself) or, imported from a
// record, as its digest `hash`.
bool token_fits(const std::string& kept, const std::string& hash, const std::string& token,
                const std::function<std::string(std::string_view)>& digest) {
  if (!kept.empty()) return same_secret(kept, token);
  return !hash.empty() && digest && same_secret(digest(token), hash);
}
}  // namespace

bool hub::hole_closed_to(const session& s, std::int64_t first, std::int64_t last) const {
  if (!opts_.hole_tenants || first > last) return false;
  const auto tenants = opts_.hole_tenants(first, last);
  return tenants && std::all_of(tenants->begin(), tenants->end(),
                                [&](const std::string& t) { return tenant_closed(s, t, dir_); });
}

const char* recovery_error_name(recovery_error e) noexcept {
  switch (e) {
    case recovery_error::none:
      return "";
    case recovery_error::expired:
      return "expired";
    case recovery_error::buffer_overflow:
      return "buffer_overflow";
    case recovery_error::unknown_session:
      return "unknown_session";
    case recovery_error::forbidden:
      return "forbidden";
  }
  return "unknown_session";
}

void hub::detach(session& s, std::uint64_t conn, bool resumable, std::optional<close_reason> why) {
  assert_on_shard(s.home_shard);
  if (s.sink.conn != conn) return;  // already replaced by a resume
  s.sink = {};
  s.detached_at_ms = now_ms();
  s.detached_offset = state_[s.home_shard]->last_offset;
  s.detached_why = why;
  if (!resumable) return drop_session(*state_[s.home_shard], s.id);
  note_detached(*state_[s.home_shard], s);
}

void hub::note_detached(shard_state& sh, session& s) {
  bound_detached(s);
  if (s.listed_detached) return;
  s.listed_detached = true;
  sh.detached.push_back(s.id);
}

void hub::drop_session(shard_state& sh, const std::string& id, bool forget) {
  auto it = sh.sessions.find(id);
  if (it == sh.sessions.end()) return;
  assert_on_shard(it->second->home_shard);
  sh.index.remove(*it->second);  // the index points at the session: out before it goes
  unbound_detached(id);
  {
    std::lock_guard l(registry_mu_);
    home_of_.erase(id);
  }
  if (forget) forget_session(id);  // before the erase: `id` may be the session's own
  sh.sessions.erase(it);
  stats_.sessions_open.fetch_sub(1, std::memory_order_relaxed);
}

// A session imported from a record knows only its token's digest until a resume shows it.
bool hub::token_matches(session& s, const std::string& token) const {
  if (!token_fits(s.resume_token, s.resume_hash, token, opts_.token_digest)) return false;
  s.resume_token = token;
  return true;
}

void hub::kick_replaced(sink_ref old) {
  post(old.shard, [this, old] {
    if (session_sink* k = find_sink(old.conn)) k->on_kick(kick{close_reason::replaced, "replaced"});
  });
}

// The outcome `e` on the sink's shard, unless the connection has gone meanwhile.
void hub::fail_resume(sink_ref sink, std::function<void(resume_outcome)> done, recovery_error e) {
  stats_.recoveries_failed.fetch_add(1, std::memory_order_relaxed);
  post(sink.shard, [this, sink, done = std::move(done), e] {
    if (find_sink(sink.conn) != nullptr) done(resume_outcome{e, {}, {}, 0, 0, nullptr});
  });
}

void hub::resume(const std::string& token, std::uint64_t last_seq, const principal& who,
                 sink_ref sink, std::function<void(resume_outcome)> done) {
  const std::string id = token.substr(0, std::min(token.find('.'), token.size()));
  std::size_t home = npos;
  {
    std::lock_guard l(registry_mu_);
    if (auto it = home_of_.find(id); it != home_of_.end()) home = it->second;
  }
  if (home == npos) {
    recovery_error why = recovery_error::unknown_session;
    {
      std::lock_guard l(registry_mu_);
      if (auto it = expired_.find(id); it != expired_.end()) {
        // An imported session never resumed since is remembered by its token's digest.
        const std::string& kept = it->second.first;
        const bool digest = !kept.empty() && kept[0] == '#' && opts_.token_digest;
        if (digest ? same_secret(std::string_view(kept).substr(1), opts_.token_digest(token))
                   : same_secret(kept, token))
          why = recovery_error::expired;
      }
    }
    // Cluster mode: another node may hold it; its record says how to take it over.
    if (why == recovery_error::unknown_session && opts_.adopt && opts_.blocking)
      return adopt_then_resume(id, token, last_seq, who, sink, std::move(done));
    return fail_resume(sink, std::move(done), why);
  }
  run_on(home, [this, id, token, last_seq, who, sink, done = std::move(done)]() mutable {
    resume_on_home(id, token, last_seq, who, sink, std::move(done));
  });
}

void hub::resume_on_home(const std::string& id, const std::string& token, std::uint64_t last_seq,
                         const principal& who, sink_ref sink,
                         std::function<void(resume_outcome)> done) {
  auto& sh = *state_[this_shard];
  auto fail = [&](recovery_error e) { fail_resume(sink, std::move(done), e); };
  auto it = sh.sessions.find(id);
  if (it == sh.sessions.end() || !token_matches(*it->second, token))
    return fail(recovery_error::unknown_session);
  session& s = *it->second;
  assert_on_shard(s.home_shard);
  // Cluster mode following tenants: a session whose tenants this node does not deliver (the
  // resuming principal's rights are wider) resumes once they do, so the replay reaches where
  // live delivery starts (hub_follow.cc).
  if (!wait_for_tenants(who, s.sub ? &s.sub->tenants : nullptr, sink,
                        [this, id, token, last_seq, who, sink, done]() mutable {
                          resume_on_home(id, token, last_seq, who, sink, std::move(done));
                        }))
    return;
  if (s.adopting) {  // its seq is being caught up (adopt_on_home): resume once it is
    s.after_durable.emplace_back(sink, [this, home = s.home_shard, id, token, last_seq, who, sink,
                                        done = std::move(done)]() mutable {
      run_on(home, [this, id, token, last_seq, who, sink, done = std::move(done)]() mutable {
        resume_on_home(id, token, last_seq, who, sink, std::move(done));
      });
    });
    return;
  }
  if (!s.who.same_as(who)) return fail(recovery_error::forbidden);
  // Imported after a crash with a seq the log could not pin: never a relabelled replay.
  if (s.inexact) return fail(recovery_error::buffer_overflow);
  if (!s.sink && now_ms() - s.detached_at_ms > s.recovery_window_ms) {
    remember_expired(s, now_ms());
    drop_session(sh, id);
    return fail(recovery_error::expired);
  }
  if (last_seq > s.seq) return fail(recovery_error::unknown_session);
  const bool in_ring =
      last_seq == s.seq || (!s.ring.empty() && s.ring.front().first <= last_seq + 1);
  const bool from_log = !in_ring && s.log_replay && opts_.read_log && opts_.blocking && s.sub &&
                        s.anchor_valid && last_seq >= s.anchor_seq &&
                        s.seq - last_seq <= opts_.max_log_replay &&
                        s.anchor_epoch == (dir_ != nullptr ? dir_->policy_epoch() : 0);
  if (!in_ring && !from_log) return fail(recovery_error::buffer_overflow);
  // The resuming socket's principal was just read from the directory: its rights, not those
  // the session was opened with, decide the replay and everything after it.
  set_principal(s, who, false);

  if (s.sink) kick_replaced(s.sink);
  s.sink = sink;
  unbound_detached(s.id);
  s.route_via_post = true;  // until the hand-over has run on the sink's shard
  if (in_ring) {
    std::vector<delivery> replay;
    for (const auto& [seq, e] : s.ring)
      if (seq > last_seq && session_may_see(s, *e.get(), dir_))
        replay.push_back(delivery{seq, e.get(), s.sub_id, false});
    return hand_over(s, sink, last_seq, std::move(replay), std::move(done));
  }
  // The gap starts before the ring: match the log again from the anchor, off the shard. New
  // matches meanwhile wait in the ring (replaying).
  s.replaying = true;
  const std::uint64_t end_seq = s.ring.empty() ? s.seq : s.ring.front().first - 1;
  auto probe = std::make_shared<session>();
  probe->who = s.who;
  probe->sub = s.sub;
  probe->snapshot_floor = s.snapshot_floor;
  const std::int64_t anchor_offset = s.anchor_offset;
  const std::uint64_t anchor_seq = s.anchor_seq;
  const std::size_t home = s.home_shard;
  opts_.blocking([this, probe, anchor_offset, anchor_seq, end_seq, last_seq, home, id, sink,
                  done = std::move(done)]() mutable {
    std::vector<event_ptr> found;
    bool ok = true;
    std::int64_t after = anchor_offset;
    std::uint64_t k = anchor_seq;
    while (k < end_seq) {
      auto page = opts_.read_log(after, 1000);
      if (page.empty()) {
        ok = false;  // the log lost events (retention) or was never consistent: do not guess
        break;
      }
      for (const event_ptr& e : page) {
        // Offsets are dense: a hole is an event retention pruned (or one never read). Seqs
        // are re-derived by counting matches, so past a hole every count would be wrong.
        if (e->offset <= after ||
            (e->offset != after + 1 && !hole_closed_to(*probe, after + 1, e->offset - 1))) {
          ok = false;
          break;
        }
        after = e->offset;
        if (!wants(*probe, *e)) continue;
        if (++k > last_seq) found.push_back(e);
        if (k == end_seq) break;
      }
      if (!ok) break;
    }
    post(home, [this, id, sink, last_seq, end_seq, found = std::move(found), ok,
                done = std::move(done)]() mutable {
      finish_log_resume(id, sink, last_seq, end_seq, std::move(found), ok, std::move(done));
    });
  });
}

void hub::finish_log_resume(const std::string& id, sink_ref sink, std::uint64_t last_seq,
                            std::uint64_t end_seq, std::vector<event_ptr> found, bool ok,
                            std::function<void(resume_outcome)> done) {
  auto& sh = *state_[this_shard];
  auto it = sh.sessions.find(id);
  auto fail = [&](recovery_error e) { fail_resume(sink, std::move(done), e); };
  if (it == sh.sessions.end() || it->second->sink.conn != sink.conn)
    return fail(recovery_error::unknown_session);  // expired or taken by a newer resume meanwhile
  session& s = *it->second;
  assert_on_shard(s.home_shard);
  s.replaying = false;
  // The ring must still continue right after what the log gave.
  // and before it by offset.
  const bool joined =
      s.ring.empty()
          ? s.seq == end_seq
          : s.ring.front().first <= end_seq + 1 &&
                (found.empty() || found.back()->offset < s.ring.front().second.get()->offset);
  if (!ok || found.size() != end_seq - last_seq || !joined) {
    s.sink = {};
    s.route_via_post = false;
    s.detached_at_ms = now_ms();
    s.detached_offset = sh.last_offset;
    note_detached(sh, s);
    while (s.ring.size() > s.ring_capacity) s.ring.pop_front();
    return fail(recovery_error::buffer_overflow);
  }
  std::vector<delivery> replay;
  std::uint64_t seq = last_seq;
  for (const event_ptr& e : found) replay.push_back(delivery{++seq, e, s.sub_id, false});
  for (const auto& [rs, e] : s.ring)
    if (rs > end_seq && session_may_see(s, *e.get(), dir_))
      replay.push_back(delivery{rs, e.get(), s.sub_id, false});
  while (s.ring.size() > s.ring_capacity) s.ring.pop_front();
  hand_over(s, sink, last_seq, std::move(replay), std::move(done));
}

// The replay and `done` go to the sink's shard in one post; live events of the session travel
// by post too while route_via_post holds (hub_fanout.cc, emit), so they queue behind it: the
// socket sees the outcome, then the missed deliveries, then live ones, without gap or overlap.
void hub::hand_over(session& s, sink_ref sink, std::uint64_t last_seq, std::vector<delivery> replay,
                    std::function<void(resume_outcome)> done) {
  assert_on_shard(s.home_shard);
  resume_outcome out{recovery_error::none, session_ref{s.home_shard, s.id},
                     s.resume_token,       last_seq,
                     s.seq_base,           s.sub_id};
  stats_.recoveries_ok.fetch_add(1, std::memory_order_relaxed);
  const std::size_t home = s.home_shard;
  const std::string id = s.id;
  post(sink.shard, [this, sink, home, id, out = std::move(out), replay = std::move(replay),
                    done = std::move(done)] {
    assert_on_shard(sink.shard);
    session_sink* k = find_sink(sink.conn);
    if (k != nullptr) {
      done(out);
      for (const delivery& d : replay) k->on_deliver(d);
      k->on_batch_end();
    }
    // If the connection went away during the hand-over, its close could not detach the
    // session (it was not attached yet): detach it here so its window starts.
    run_on(home, [this, home, id, conn = sink.conn, gone = k == nullptr] {
      session* s2 = state_[home]->find_session(id);
      if (s2 == nullptr) return;
      s2->route_via_post = false;
      if (gone) detach(*s2, conn, true);
    });
  });
}

// ---- cluster mode: adopting a session another node stored

// The record is read off the shards; the token is checked against it before anything is
// installed, so a guess at a session id takes nothing over.
void hub::adopt_then_resume(const std::string& id, const std::string& token, std::uint64_t last_seq,
                            const principal& who, sink_ref sink,
                            std::function<void(resume_outcome)> done) {
  opts_.blocking([this, id, token, last_seq, who, sink, done = std::move(done)]() mutable {
    std::optional<session_state> st = opts_.adopt(id);
    if (!st || st->id != id ||
        !token_fits(st->resume_token, st->resume_hash, token, opts_.token_digest))
      return fail_resume(sink, std::move(done), recovery_error::unknown_session);
    const std::size_t home = std::hash<std::string>{}(id) % shards_.size();
    post(home,
         [this, st = std::move(*st), token, last_seq, who, sink, done = std::move(done)]() mutable {
           adopt_on_home(st, token, last_seq, who, sink, std::move(done));
         });
  });
}

// Installs the session detached, as an import does, but while the shards run: live matches
// from this shard's frontier on wait in `pending` without a seq (durable_hold), the events
// between the record's processed_offset and that frontier are matched from the log off the
// shard, then finish_adopt gives both their seqs in offset order and the resume proceeds.
void hub::adopt_on_home(const session_state& st, const std::string& token, std::uint64_t last_seq,
                        const principal& who, sink_ref sink,
                        std::function<void(resume_outcome)> done) {
  // Cluster mode following tenants: the session's tenants deliver here first, so that the
  // recount below reaches where their live delivery starts (hub_follow.cc).
  if (!wait_for_tenants(who, st.has_sub ? &st.tenants : nullptr, sink,
                        [this, st, token, last_seq, who, sink, done]() mutable {
                          adopt_on_home(st, token, last_seq, who, sink, std::move(done));
                        }))
    return;
  const std::size_t home = this_shard;
  auto& sh = *state_[home];
  std::size_t held = npos;
  {
    std::lock_guard l(registry_mu_);
    if (auto it = home_of_.find(st.id); it != home_of_.end()) held = it->second;
  }
  if (held != npos)  // adopted by a concurrent resume meanwhile: resume the one held here
    return run_on(held,
                  [this, id = st.id, token, last_seq, who, sink, done = std::move(done)]() mutable {
                    resume_on_home(id, token, last_seq, who, sink, std::move(done));
                  });
  session& s = install_session(st, home, now_ms());
  s.adopting = true;
  s.durable_hold = true;
  // Once the resume succeeded the node that held the session lets it go (adopted); a failed
  // one leaves it to that node, this copy going without touching the record.
  auto told = [this, home, id = s.id, done = std::move(done)](resume_outcome o) {
    if (o.error == recovery_error::none) {
      // The record is ours now: written naming this node, without the expiry a dead holder's
      // records get (docs/cluster.md).
      run_on(home, [this, home, id] {
        if (session* s2 = state_[home]->find_session(id)) save_session(*s2, false);
      });
      if (opts_.adopted) opts_.adopted(id);
    } else {
      let_go(id, false);
    }
    done(std::move(o));
  };
  resume_on_home(s.id, token, last_seq, who, sink, std::move(told));  // waits for finish_adopt
  const std::int64_t upto = sh.last_offset;
  if (!s.sub || st.processed_offset >= upto) return finish_adopt(s.id, 0, {}, true);
  if (!opts_.read_log) return finish_adopt(s.id, 0, {}, false);  // cannot count: inexact
  auto probe = std::make_shared<session>();
  probe->who = s.who;
  probe->sub = s.sub;
  opts_.blocking(
      [this, probe, from = st.processed_offset, upto, keep = s.ring_capacity, home, id = s.id] {
        std::uint64_t matched = 0;
        std::deque<event_ptr> kept;  // the newest matches, for the ring
        bool exact = true;
        std::int64_t after = from;
        while (after < upto) {
          auto page = opts_.read_log(after, 1000);
          if (page.empty()) {
            exact = false;  // the log ends before what this shard has seen: do not guess
            break;
          }
          for (const event_ptr& e : page) {
            // Pruned by retention: the count is off (unless no event there was the session's);
            // a hole reaching past `upto` counts up to it. An offset not above the last one
            // read is a log out of order: nothing can be counted.
            const std::int64_t hole_end = std::min(e->offset - 1, upto);
            if (e->offset <= after ||
                (hole_end > after && !hole_closed_to(*probe, after + 1, hole_end)))
              exact = false;
            if (e->offset > upto) {
              after = upto;
              break;
            }
            after = e->offset;
            if (!wants(*probe, *e)) continue;
            ++matched;
            kept.push_back(e);
            if (kept.size() > keep) kept.pop_front();
          }
        }
        post(home, [this, id, skipped = matched - kept.size(),
                    kept = std::vector<event_ptr>(kept.begin(), kept.end()),
                    exact]() mutable { finish_adopt(id, skipped, kept, exact); });
      });
}

void hub::finish_adopt(const std::string& id, std::uint64_t skipped,
                       const std::vector<event_ptr>& kept, bool exact) {
  auto& sh = *state_[this_shard];
  session* s = sh.find_session(id);
  if (s == nullptr) return;
  assert_on_shard(s->home_shard);
  const std::uint64_t delivered = sh.deliveries;
  s->seq += skipped;
  for (const event_ptr& e : kept) emit(sh, *s, e, false);  // detached: counted, kept in the ring
  sh.deliveries = delivered;                               // nothing was delivered
  if (!exact) s->inexact = true;
  s->adopting = false;
  release_hold(*s);  // the live matches held meanwhile get the next seqs, then the resumes run
}

void hub::let_go(const std::string& id) { let_go(id, true); }

std::vector<std::string> hub::session_ids() {
  std::lock_guard l(registry_mu_);
  std::vector<std::string> out;
  out.reserve(home_of_.size());
  for (const auto& [id, home] : home_of_) out.push_back(id);
  return out;
}

void hub::let_go(const std::string& id, bool attached_too) {
  std::size_t home = npos;
  {
    std::lock_guard l(registry_mu_);
    if (auto it = home_of_.find(id); it != home_of_.end()) home = it->second;
  }
  if (home == npos) return;
  run_on(home, [this, home, id, attached_too] {
    auto& sh = *state_[home];
    session* s = sh.find_session(id);
    if (s == nullptr || (s->sink && !attached_too) || s->adopting) return;
    if (s->sink) kick_replaced(s->sink);
    drop_session(sh, id, false);  // the record is the adopting node's now
  });
}

void hub::tick(std::int64_t now) {
  assert(this_shard != npos);  // expires the sessions of the calling shard
  auto& sh = *state_[this_shard];
  std::vector<std::string> expired;
  std::erase_if(sh.detached, [&](const std::string& id) {
    auto it = sh.sessions.find(id);
    if (it == sh.sessions.end()) return true;
    session& s = *it->second;
    if (s.sink) {
      s.listed_detached = false;  // re-attached; listed again when it next detaches
      return true;
    }
    if (now - s.detached_at_ms <= s.recovery_window_ms) return false;
    expired.push_back(id);
    remember_expired(s, now);
    return true;
  });
  for (const auto& id : expired) drop_session(sh, id);
  if (opts_.follow && opts_.unfollow) sweep_follows(sh, now);
}

void hub::bound_detached(const session& s) {
  if (opts_.max_sessions_per_app == 0 && opts_.max_sessions_per_tenant == 0) return;
  std::vector<std::pair<std::size_t, std::string>> victims;  // (home shard, id)
  {
    std::lock_guard l(registry_mu_);
    if (detached_.contains(s.id)) return;
    const std::uint64_t order = ++detached_order_;
    detached_.emplace(s.id, detached_entry{s.who.app_id, s.who.tenant, s.home_shard, order});
    detached_by_app_[s.who.app_id].emplace(order, s.id);
    detached_by_tenant_[s.who.tenant].emplace(order, s.id);
    // Past a bound the oldest goes, from both of its lists at once.
    auto over = [](const auto& lists, const std::string& key, std::size_t max) {
      auto it = lists.find(key);
      return max != 0 && it != lists.end() && it->second.size() > max;
    };
    auto evict = [&](const auto& lists, const std::string& key) {
      const std::string id = lists.at(key).begin()->second;
      victims.emplace_back(detached_.at(id).shard, id);
      unlist_detached(id);
    };
    while (over(detached_by_app_, s.who.app_id, opts_.max_sessions_per_app))
      evict(detached_by_app_, s.who.app_id);
    while (over(detached_by_tenant_, s.who.tenant, opts_.max_sessions_per_tenant))
      evict(detached_by_tenant_, s.who.tenant);
  }
  // Dropped on their home shards, unless resumed meanwhile (then they are attached again).
  for (auto& [shard, id] : victims)
    post(shard, [this, shard, id = std::move(id)] {
      auto& sh = *state_[shard];
      session* v = sh.find_session(id);
      if (v == nullptr || v->sink) return;
      remember_expired(*v, now_ms());
      drop_session(sh, id);
    });
}

void hub::unbound_detached(const std::string& id) {
  if (opts_.max_sessions_per_app == 0 && opts_.max_sessions_per_tenant == 0) return;
  std::lock_guard l(registry_mu_);
  unlist_detached(id);
}

void hub::unlist_detached(const std::string& id) {
  auto it = detached_.find(id);
  if (it == detached_.end()) return;
  const detached_entry& e = it->second;
  auto drop = [&](auto& lists, const std::string& key) {
    auto li = lists.find(key);
    if (li == lists.end()) return;
    li->second.erase(e.order);
    if (li->second.empty()) lists.erase(li);
  };
  drop(detached_by_app_, e.app);
  drop(detached_by_tenant_, e.tenant);
  detached_.erase(it);
}

void hub::remember_expired(const session& s, std::int64_t now) {
  std::lock_guard l(registry_mu_);
  if (expired_.size() >= max_expired) {
    // Forget those expired longer ago than a window; if that frees nothing, start afresh.
    std::erase_if(expired_,
                  [&](const auto& kv) { return now - kv.second.second > s.recovery_window_ms; });
    if (expired_.size() >= max_expired) expired_.clear();
  }
  expired_[s.id] = {s.resume_token.empty() ? "#" + s.resume_hash : s.resume_token, now};
}

}  // namespace herald
