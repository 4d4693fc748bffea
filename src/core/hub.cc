#include "core/hub.h"

#include <algorithm>
#include <cassert>
#include <future>

#include "core/clock.h"
#include "core/directory.h"
#include "core/topic_trie.h"

namespace herald {
namespace {
thread_local std::size_t this_shard = hub::npos;

// Constant-time comparison for secrets of equal public length.
bool same_secret(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff = static_cast<unsigned char>(diff | (a[i] ^ b[i]));
  return diff == 0;
}
}  // namespace

const char* recovery_error_name(recovery_error e) noexcept {
  switch (e) {
    case recovery_error::none: return "";
    case recovery_error::expired: return "expired";
    case recovery_error::buffer_overflow: return "buffer_overflow";
    case recovery_error::unknown_session: return "unknown_session";
    case recovery_error::forbidden: return "forbidden";
  }
  return "unknown_session";
}

struct hub::shard_state {
  std::unordered_map<std::uint64_t, session_sink*> sinks;
  std::unordered_map<std::string, std::unique_ptr<session>> sessions;
  // Ids of sessions that were detached (some since re-attached or dropped): the tick looks at
  // these for expiry, not at every session of the shard.
  std::vector<std::string> detached;
  // The subscription index: a topic trie per tenant, and one for sessions that span tenants
  // (admins, explicit tenant sets), which every event consults.
  std::unordered_map<std::string, topic_trie> by_tenant;
  topic_trie wide;
  std::uint64_t match_stamp = 0;  // dedupes sessions reached through several filters
  // Per batch: deliveries for sinks on other shards, and local sinks to flush.
  std::vector<std::vector<std::pair<std::uint64_t, delivery>>> outbox;
  std::vector<session_sink*> touched;
  // fan_out's scratch, kept for its capacity: (session, event index) matches in event order,
  // the sessions matched, the matches grouped by session, one pin per event of the batch.
  std::vector<std::pair<session*, std::uint32_t>> hits;
  std::vector<session*> hit_sessions;
  std::vector<std::uint32_t> grouped;
  std::vector<event_pin> pins;
  std::int64_t last_offset = 0;  // the highest offset fanned out on this shard
  std::uint64_t deliveries = 0;  // counted locally, published to stats_ per batch
};

hub::hub(std::vector<post_fn> shards, const directory* subjects, hub_options opts)
    : shards_(std::move(shards)), dir_(subjects), opts_(opts) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    state_.push_back(std::make_unique<shard_state>());
    state_.back()->outbox.resize(shards_.size());
    state_.back()->last_offset = opts_.start_offset;
  }
}

hub::~hub() = default;

std::size_t hub::current_shard() noexcept { return this_shard; }
void hub::bind_thread(std::size_t shard) noexcept { this_shard = shard; }

void hub::run_on(std::size_t shard, task t) {
  if (shard == this_shard) t();
  else shards_.at(shard)(std::move(t));
}

void hub::post(std::size_t shard, task t) { shards_.at(shard)(std::move(t)); }

void hub::publish(std::vector<event_ptr> batch) {
  if (batch.empty()) return;
  stats_.published.fetch_add(batch.size(), std::memory_order_relaxed);
  auto shared = std::make_shared<const std::vector<event_ptr>>(std::move(batch));
  for (std::size_t i = 0; i < shards_.size(); ++i)
    shards_[i]([this, i, shared] { fan_out(*state_[i], i, *shared); });
}

std::uint64_t hub::register_sink(session_sink* s) {
  assert(this_shard != npos);
  const std::uint64_t id = next_conn_.fetch_add(1, std::memory_order_relaxed);
  state_[this_shard]->sinks.emplace(id, s);
  return id;
}

void hub::unregister_sink(std::uint64_t conn) {
  assert(this_shard != npos);
  auto& sh = *state_[this_shard];
  auto it = sh.sinks.find(conn);
  if (it == sh.sinks.end()) return;
  std::erase(sh.touched, it->second);  // it may be due a flush later in this batch
  sh.sinks.erase(it);
}

session_sink* hub::find_sink(std::uint64_t conn) const {
  const auto& sinks = state_[this_shard]->sinks;
  auto it = sinks.find(conn);
  return it == sinks.end() ? nullptr : it->second;
}

session_ref hub::open_session(const principal& who, std::string dialect, sink_ref sink,
                              std::uint64_t seq_base) {
  session_options opts;
  opts.seq_base = seq_base;
  return open_session(who, std::move(dialect), sink, opts);
}

session_ref hub::open_session(const principal& who, std::string dialect, sink_ref sink,
                              session_options opts) {
  assert(this_shard != npos);
  auto s = std::make_unique<session>();
  s->id = new_id("ses_");
  s->resume_token = s->id + "." + random_token(24);  // names its session; the rest is secret
  s->who = who;
  s->dialect = std::move(dialect);
  s->home_shard = this_shard;
  s->seq_base = opts.seq_base;
  s->ring_capacity = opts.ring_capacity != 0 ? opts.ring_capacity : opts_.recovery_buffer;
  s->recovery_window_ms =
      opts.recovery_window_ms != 0 ? opts.recovery_window_ms : opts_.recovery_window_ms;
  s->log_replay = opts.log_replay;
  s->sink = sink;
  session_ref ref{this_shard, s->id};
  {
    std::lock_guard l(registry_mu_);
    home_of_[s->id] = this_shard;
  }
  state_[this_shard]->sessions.emplace(s->id, std::move(s));
  stats_.sessions_open.fetch_add(1, std::memory_order_relaxed);
  return ref;
}

void hub::with_session(const session_ref& ref, std::function<void(session*)> fn) {
  run_on(ref.shard, [this, ref, fn = std::move(fn)] {
    auto& sessions = state_[ref.shard]->sessions;
    auto it = sessions.find(ref.id);
    fn(it == sessions.end() ? nullptr : it->second.get());
  });
}

// Why the continuation can neither overtake nor be overtaken wrongly: events reach a sink from
// the session's home shard H in exactly two ways (emit): a direct on_deliver call inside a
// fan_out task on H when the sink is on H, or a post to the sink's shard made at the end of a
// batch (flush_outboxes). `home` runs as (part of) one task on H. If me.shard == H the
// continuation runs inline at the end of that same task, so before any later fan_out task on
// H can call the sink directly. Otherwise it is posted to me.shard while H still runs that
// task, so any batch H matches afterwards is posted to me.shard later, FIFO behind it. Either
// way, what `home` delivered itself (release_snapshot) went out first: directly before it
// returned, or posted before the continuation was.
void hub::with_session_then(const session_ref& ref, sink_ref me,
                            std::function<task(session*)> home) {
  with_session(ref, [this, me, home = std::move(home)](session* s) {
    if (task next = home(s)) on_socket_shard(me, std::move(next));
  });
}

void hub::on_socket_shard(sink_ref me, task t) {
  run_on(me.shard, [this, me, t = std::move(t)] {
    // Connection ids are never reused, so a registered id is still the same socket.
    if (find_sink(me.conn) != nullptr) t();
  });
}

bool hub::wants(const session& s, const event& e, bool topic_matched) const {
  if (!s.sub) return false;
  const tenant_set& ts = s.sub->tenants;
  if (!ts.root.empty()) {
    if (ts.subtree ? !(dir_ != nullptr && dir_->in_subtree(e.tenant, ts.root))
                   : e.tenant != ts.root)
      return false;
  }
  if (!may_see(s.who, e, dir_)) return false;
  if (!s.snapshot_floor.empty() && !e.subject.empty()) {
    auto it = s.snapshot_floor.find(e.subject);
    if (it != s.snapshot_floor.end() && e.offset <= it->second) return false;
  }
  // The trie's match is exact on topics: filters that constrain nothing else need no re-check.
  if (topic_matched && std::all_of(s.sub->filters.begin(), s.sub->filters.end(),
                                   [](const filter& f) { return f.topic_only(); }))
    return true;
  return any_matches(s.sub->filters, e);
}

void hub::emit(shard_state& sh, session& s, const event_ptr& e, bool snapshot, event_pin* pin) {
  ++s.seq;
  if (s.sub && s.sub->snapshot && !e->subject.empty()) s.last_of_subject[e->subject] = e->offset;
  event_pin own;
  if (pin == nullptr) pin = &own;
  if (!*pin) *pin = event_pin::make(e);
  s.ring.emplace_back(s.seq, *pin);
  // While a resume pages the log, the ring must keep joining up with what the log returns:
  // it may grow past its capacity (by what arrives during one replay) until the hand-over.
  while (s.ring.size() > s.ring_capacity && !s.replaying) s.ring.pop_front();
  ++sh.deliveries;  // added to stats_ once per batch (flush_outboxes)
  if (!s.sink || s.replaying) return;
  if (s.sink.shard == s.home_shard && !s.route_via_post) {
    if (session_sink* k = find_sink(s.sink.conn)) {
      k->on_deliver(delivery_ref{s.seq, e, s.sub_id, snapshot});
      if (sh.touched.empty() || sh.touched.back() != k) sh.touched.push_back(k);
    }
  } else {
    sh.outbox[s.sink.shard].emplace_back(s.sink.conn, delivery{s.seq, e, s.sub_id, snapshot});
  }
}

void hub::flush_outboxes(shard_state& sh) {
  if (sh.deliveries != 0) {
    stats_.deliveries.fetch_add(sh.deliveries, std::memory_order_relaxed);
    sh.deliveries = 0;
  }
  for (session_sink* k : sh.touched) k->on_batch_end();
  sh.touched.clear();
  for (std::size_t t = 0; t < sh.outbox.size(); ++t) {
    if (sh.outbox[t].empty()) continue;
    post(t, [this, items = std::move(sh.outbox[t])] {
      session_sink* last = nullptr;
      std::vector<session_sink*> flush;
      for (const auto& [conn, d] : items) {
        session_sink* k = find_sink(conn);
        if (k == nullptr) continue;
        k->on_deliver(d);
        if (k != last) flush.push_back(last = k);
      }
      std::sort(flush.begin(), flush.end());
      flush.erase(std::unique(flush.begin(), flush.end()), flush.end());
      for (session_sink* k : flush) k->on_batch_end();
    });
    sh.outbox[t] = {};
  }
}

void hub::fan_out(shard_state& sh, std::size_t shard, const std::vector<event_ptr>& batch) {
  (void)shard;
  // First event by event: which sessions want which events. Then session by session: each
  // session's events of the batch are delivered together, in batch order, while its state and
  // its socket's are in cache (event-major delivery touched 1,000 sockets' state per event).
  // Nothing in delivery drops a session synchronously (a socket's close is asynchronous), so
  // the pointers gathered stay valid for the batch.
  sh.hits.clear();
  sh.hit_sessions.clear();
  for (std::uint32_t i = 0; i < batch.size(); ++i) {
    const event_ptr& e = batch[i];
    const std::uint64_t stamp = ++sh.match_stamp;
    auto consider = [&](session* s) {
      if (s->match_stamp == stamp) return;
      s->match_stamp = stamp;
      if (!wants(*s, *e, true)) return;
      if (s->gathering) return s->pending.push_back(e);
      if (s->batch_hits++ == 0) sh.hit_sessions.push_back(s);
      sh.hits.emplace_back(s, i);
    };
    if (auto it = sh.by_tenant.find(e->tenant); it != sh.by_tenant.end())
      it->second.match(e->topic, consider);
    if (!sh.wide.empty()) sh.wide.match(e->topic, consider);
    sh.last_offset = std::max(sh.last_offset, e->offset);
  }
  // Group the matches by session (a counting sort: stable, so batch order holds per session).
  std::uint32_t at = 0;
  for (session* s : sh.hit_sessions) {
    s->batch_next = at;
    at += s->batch_hits;
  }
  sh.grouped.resize(sh.hits.size());
  for (const auto& [s, i] : sh.hits) sh.grouped[s->batch_next++] = i;
  sh.pins.resize(batch.size());
  at = 0;
  for (session* s : sh.hit_sessions) {
    for (std::uint32_t k = at; k < at + s->batch_hits; ++k) {
      const std::uint32_t i = sh.grouped[k];
      emit(sh, *s, batch[i], false, &sh.pins[i]);
    }
    at += s->batch_hits;
    s->batch_hits = 0;
  }
  sh.pins.clear();
  flush_outboxes(sh);
}

void hub::index_add(shard_state& sh, session& s) {
  if (s.in_index || !s.sub) return;
  topic_trie& t = (s.sub->tenants.root.empty() && !s.who.is_admin_app()) ? sh.by_tenant[s.who.tenant]
                                                                         : sh.wide;
  for (const filter& f : s.sub->filters) t.add(f.spec().topic, &s);
  s.in_index = true;
}

void hub::index_remove(shard_state& sh, session& s) {
  if (!s.in_index) return;
  const bool tenant_bound = s.sub->tenants.root.empty() && !s.who.is_admin_app();
  if (tenant_bound) {
    auto it = sh.by_tenant.find(s.who.tenant);
    if (it != sh.by_tenant.end()) {
      for (const filter& f : s.sub->filters) it->second.remove(f.spec().topic, &s);
      if (it->second.empty()) sh.by_tenant.erase(it);
    }
  } else {
    for (const filter& f : s.sub->filters) sh.wide.remove(f.spec().topic, &s);
  }
  s.in_index = false;
}

void hub::set_subscription(session& s, subscription sub, bool gathering) {
  auto& sh = *state_[s.home_shard];
  index_remove(sh, s);
  s.sub_id = std::make_shared<const std::string>(sub.id);
  s.sub = std::move(sub);
  s.gathering = gathering;
  s.pending.clear();
  s.snapshot_floor.clear();
  s.sub_from_offset = sh.last_offset;
  index_add(sh, s);
  if (gathering) s.anchor_valid = false;
  else set_anchor(sh, s);
}

void hub::set_anchor(shard_state& sh, session& s) {
  s.anchor_valid = true;
  s.anchor_seq = s.seq;
  s.anchor_offset = sh.last_offset;
  s.anchor_epoch = dir_ != nullptr ? dir_->policy_epoch() : 0;
}

void hub::clear_subscription(session& s) { clear_subscription(s, false); }

void hub::clear_subscription(session& s, bool forget_id) {
  index_remove(*state_[s.home_shard], s);
  s.sub.reset();
  if (forget_id) s.sub_id.reset();
  s.gathering = false;
  s.pending.clear();
  s.anchor_valid = false;
}

void hub::release_snapshot(session& s, const std::vector<event_ptr>& copies) {
  auto& sh = *state_[s.home_shard];
  for (const event_ptr& c : copies) {
    emit(sh, s, c, true);
    if (!c->subject.empty()) s.snapshot_floor[c->subject] = c->offset;
  }
  s.gathering = false;
  std::vector<event_ptr> held;
  held.swap(s.pending);
  for (const event_ptr& e : held)
    if (wants(s, *e)) emit(sh, s, e, false);
  set_anchor(sh, s);
  flush_outboxes(sh);
}

void hub::detach(session& s, std::uint64_t conn, bool resumable) {
  if (s.sink.conn != conn) return;  // already replaced by a resume
  s.sink = {};
  s.detached_at_ms = now_ms();
  if (!resumable) return drop_session(*state_[s.home_shard], s.id);
  note_detached(*state_[s.home_shard], s);
}

void hub::note_detached(shard_state& sh, session& s) {
  if (s.listed_detached) return;
  s.listed_detached = true;
  sh.detached.push_back(s.id);
}

void hub::drop_session(shard_state& sh, const std::string& id) {
  auto it = sh.sessions.find(id);
  if (it == sh.sessions.end()) return;
  index_remove(sh, *it->second);
  {
    std::lock_guard l(registry_mu_);
    home_of_.erase(id);
  }
  sh.sessions.erase(it);
  stats_.sessions_open.fetch_sub(1, std::memory_order_relaxed);
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
      if (auto it = expired_.find(id); it != expired_.end() && same_secret(it->second.first, token))
        why = recovery_error::expired;
    }
    stats_.recoveries_failed.fetch_add(1, std::memory_order_relaxed);
    post(sink.shard, [this, sink, done = std::move(done), why] {
      // The connection may have gone meanwhile: its callback must not run then.
      if (find_sink(sink.conn) != nullptr) done(resume_outcome{why, {}, {}, 0, 0, nullptr});
    });
    return;
  }
  run_on(home, [this, id, token, last_seq, who, sink, done = std::move(done)]() mutable {
    resume_on_home(id, token, last_seq, who, sink, std::move(done));
  });
}

void hub::resume_on_home(const std::string& id, const std::string& token, std::uint64_t last_seq,
                         const principal& who, sink_ref sink,
                         std::function<void(resume_outcome)> done) {
  auto& sh = *state_[this_shard];
  auto fail = [&](recovery_error e) {
    stats_.recoveries_failed.fetch_add(1, std::memory_order_relaxed);
    post(sink.shard, [this, sink, done = std::move(done), e] {
      if (find_sink(sink.conn) != nullptr) done(resume_outcome{e, {}, {}, 0, 0, nullptr});
    });
  };
  auto it = sh.sessions.find(id);
  if (it == sh.sessions.end() || !same_secret(it->second->resume_token, token))
    return fail(recovery_error::unknown_session);
  session& s = *it->second;
  if (!s.who.same_as(who)) return fail(recovery_error::forbidden);
  if (!s.sink && now_ms() - s.detached_at_ms > s.recovery_window_ms) {
    remember_expired(s, now_ms());
    drop_session(sh, id);
    return fail(recovery_error::expired);
  }
  if (last_seq > s.seq) return fail(recovery_error::unknown_session);
  const bool in_ring = last_seq == s.seq || (!s.ring.empty() && s.ring.front().first <= last_seq + 1);
  const bool from_log = !in_ring && s.log_replay && opts_.read_log && opts_.blocking && s.sub &&
                        s.anchor_valid &&
                        last_seq >= s.anchor_seq && s.seq - last_seq <= opts_.max_log_replay &&
                        s.anchor_epoch == (dir_ != nullptr ? dir_->policy_epoch() : 0);
  if (!in_ring && !from_log) return fail(recovery_error::buffer_overflow);

  if (s.sink) {
    const sink_ref old = s.sink;
    post(old.shard, [this, old] {
      if (session_sink* k = find_sink(old.conn)) k->on_kick(1000, "replaced", true);
    });
  }
  s.sink = sink;
  s.route_via_post = true;  // until the hand-over has run on the sink's shard
  if (in_ring) {
    std::vector<delivery> replay;
    for (const auto& [seq, e] : s.ring)
      if (seq > last_seq) replay.push_back(delivery{seq, e.get(), s.sub_id, false});
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
        after = e->offset;
        if (!wants(*probe, *e)) continue;
        if (++k > last_seq) found.push_back(e);
        if (k == end_seq) break;
      }
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
  auto fail = [&](recovery_error e) {
    stats_.recoveries_failed.fetch_add(1, std::memory_order_relaxed);
    post(sink.shard, [this, sink, done = std::move(done), e] {
      if (find_sink(sink.conn) != nullptr) done(resume_outcome{e, {}, {}, 0, 0, nullptr});
    });
  };
  if (it == sh.sessions.end() || it->second->sink.conn != sink.conn)
    return fail(recovery_error::unknown_session);  // expired or taken by a newer resume meanwhile
  session& s = *it->second;
  s.replaying = false;
  // The ring must still continue right after what the log gave.
  const bool joined = s.ring.empty() ? s.seq == end_seq : s.ring.front().first <= end_seq + 1;
  if (!ok || found.size() != end_seq - last_seq || !joined) {
    s.sink = {};
    s.route_via_post = false;
    s.detached_at_ms = now_ms();
    note_detached(sh, s);
    while (s.ring.size() > s.ring_capacity) s.ring.pop_front();
    return fail(recovery_error::buffer_overflow);
  }
  std::vector<delivery> replay;
  std::uint64_t seq = last_seq;
  for (const event_ptr& e : found) replay.push_back(delivery{++seq, e, s.sub_id, false});
  for (const auto& [rs, e] : s.ring)
    if (rs > end_seq) replay.push_back(delivery{rs, e.get(), s.sub_id, false});
  while (s.ring.size() > s.ring_capacity) s.ring.pop_front();
  hand_over(s, sink, last_seq, std::move(replay), std::move(done));
}

void hub::hand_over(session& s, sink_ref sink, std::uint64_t last_seq, std::vector<delivery> replay,
                    std::function<void(resume_outcome)> done) {
  resume_outcome out{recovery_error::none, session_ref{s.home_shard, s.id}, s.resume_token,
                     last_seq, s.seq_base, s.sub_id};
  stats_.recoveries_ok.fetch_add(1, std::memory_order_relaxed);
  const std::size_t home = s.home_shard;
  const std::string id = s.id;
  post(sink.shard, [this, sink, home, id, out = std::move(out), replay = std::move(replay),
                    done = std::move(done)] {
    session_sink* k = find_sink(sink.conn);
    if (k != nullptr) {
      done(out);
      for (const delivery& d : replay) k->on_deliver(d);
      k->on_batch_end();
    }
    // If the connection went away during the hand-over, its close could not detach the
    // session (it was not attached yet): detach it here so its window starts.
    run_on(home, [this, home, id, conn = sink.conn, gone = k == nullptr] {
      auto& sessions = state_[home]->sessions;
      auto it2 = sessions.find(id);
      if (it2 == sessions.end()) return;
      it2->second->route_via_post = false;
      if (gone) detach(*it2->second, conn, true);
    });
  });
}

void hub::kick_where(std::function<bool(const principal&)> pred, int code, std::string reason,
                     bool resumable) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, pred, code, reason, resumable] {
      std::vector<std::uint64_t> hit;
      for (const auto& [conn, k] : state_[i]->sinks)
        if (pred(k->who())) hit.push_back(conn);
      for (std::uint64_t c : hit)
        if (session_sink* k = find_sink(c)) k->on_kick(code, reason, resumable);
    });
  }
}

bool hub::kick_connection(const std::string& con_id, int code, std::string reason) {
  assert(this_shard == npos);
  std::vector<std::future<bool>> results;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    auto p = std::make_shared<std::promise<bool>>();
    results.push_back(p->get_future());
    post(i, [this, i, p, con_id, code, reason] {
      for (const auto& [conn, k] : state_[i]->sinks) {
        if (k->info().id == con_id) {
          k->on_kick(code, reason, true);
          p->set_value(true);
          return;
        }
      }
      p->set_value(false);
    });
  }
  bool found = false;
  for (auto& f : results) found = f.get() || found;
  return found;
}

std::vector<connection_info> hub::connections() {
  assert(this_shard == npos);
  std::vector<std::future<std::vector<connection_info>>> results;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    auto p = std::make_shared<std::promise<std::vector<connection_info>>>();
    results.push_back(p->get_future());
    post(i, [this, i, p] {
      std::vector<connection_info> out;
      for (const auto& [conn, k] : state_[i]->sinks) out.push_back(k->info());
      p->set_value(std::move(out));
    });
  }
  std::vector<connection_info> all;
  for (auto& f : results) {
    auto part = f.get();
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

void hub::tick(std::int64_t now) {
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
}

void hub::remember_expired(const session& s, std::int64_t now) {
  std::lock_guard l(registry_mu_);
  if (expired_.size() >= max_expired) {
    // Forget those expired longer ago than a window; if that frees nothing, start afresh.
    std::erase_if(expired_, [&](const auto& kv) { return now - kv.second.second > s.recovery_window_ms; });
    if (expired_.size() >= max_expired) expired_.clear();
  }
  expired_[s.id] = {s.resume_token, now};
}

void hub::subject_unblocked(const event_ptr& state) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, state] {
      auto& sh = *state_[i];
      for (auto& [id, sp] : sh.sessions) {
        session& s = *sp;
        if (!s.sub || !s.sub->snapshot || s.gathering || !wants(s, *state)) continue;
        auto it = s.last_of_subject.find(state->subject);
        if (it != s.last_of_subject.end() && it->second >= state->offset) continue;
        emit(sh, s, state, true);
      }
      flush_outboxes(sh);
    });
  }
}

std::vector<session_state> hub::export_sessions() const {
  std::vector<session_state> out;
  for (const auto& sh : state_) {
    for (const auto& [id, sp] : sh->sessions) {
      const session& s = *sp;
      session_state st;
      st.id = s.id;
      st.resume_token = s.resume_token;
      st.dialect = s.dialect;
      st.who = s.who;
      st.seq = s.seq;
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
      st.processed_offset = sh->last_offset;
      st.ring_capacity = s.ring_capacity;
      st.recovery_window_ms = s.recovery_window_ms;
      st.log_replay = s.log_replay;
      out.push_back(std::move(st));
    }
  }
  return out;
}

void hub::import_sessions(const std::vector<session_state>& states) {
  const std::int64_t now = now_ms();
  std::size_t next = 0;
  for (const session_state& st : states) {
    const std::size_t shard = next++ % shards_.size();
    auto& sh = *state_[shard];
    auto s = std::make_unique<session>();
    s->id = st.id;
    s->resume_token = st.resume_token;
    s->who = st.who;
    s->dialect = st.dialect;
    s->home_shard = shard;
    s->seq = st.seq;
    s->seq_base = st.seq_base;
    s->ring_capacity = st.ring_capacity != 0 ? st.ring_capacity : opts_.recovery_buffer;
    s->recovery_window_ms = st.recovery_window_ms != 0 ? st.recovery_window_ms : opts_.recovery_window_ms;
    s->log_replay = st.log_replay;
    s->detached_at_ms = now;
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
        index_add(sh, *s);
      }
    }
    s->anchor_valid = st.anchor_valid && s->sub.has_value();
    s->anchor_seq = st.anchor_seq;
    s->anchor_offset = st.anchor_offset;
    s->anchor_epoch = dir_ != nullptr ? dir_->policy_epoch() : 0;
    // Catch up: events committed after this session's shard last matched.
    if (s->sub && opts_.read_log) {
      std::int64_t after = st.processed_offset;
      for (;;) {
        auto page = opts_.read_log(after, 1000);
        if (page.empty()) break;
        for (const event_ptr& e : page) {
          after = e->offset;
          if (wants(*s, *e)) emit(sh, *s, e, false);
        }
      }
    }
    {
      std::lock_guard l(registry_mu_);
      home_of_[s->id] = shard;
    }
    note_detached(sh, *s);
    sh.sessions.emplace(s->id, std::move(s));
    stats_.sessions_open.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace herald
