// Fan-out: publish() hands a batch to every shard (batches published while a shard is busy
// are fanned out there together, up to max_drain_events: shard_state::inbox); each shard matches it
// against its subscription index, gives each match the session's next seq and a ring entry (emit),
// and delivers it to the session's sink — a direct call when the sink is on the session's home
// shard, else through the per-target-shard outbox, posted once per batch (flush_outboxes).
// Snapshot releases and subject unblocks deliver through the same emit/flush pair.
//
// Threads: publish() is thread-safe (called by the store's single writer, in offset order);
// everything else here runs on the shard it works on: fan_out on shard `shard`, emit on the
// session's home shard, an outbox's delivery task on the sink's shard (asserted in debug
// builds). This is the hot path: no locks, no allocation or reference count per delivery.
#include <algorithm>

#include "core/hub_shard.h"

namespace herald {

void hub::publish(std::vector<event_ptr> batch) {
  if (batch.empty()) return;
  stats_.published.fetch_add(batch.size(), std::memory_order_relaxed);
  auto shared = std::make_shared<const std::vector<event_ptr>>(std::move(batch));
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    shard_state& sh = *state_[i];
    {
      std::lock_guard l(sh.inbox_mu);
      // Joins the newest drain when nothing else was posted to the shard since: that drain runs
      // where this batch's own task would have (after the same tasks, before the same ones).
      // Otherwise a drain of its own, behind what was posted meanwhile.
      if (!sh.inbox.empty() && sh.posts.load() == sh.inbox_posts &&
          sh.inbox.back().events + shared->size() <= max_drain_events) {
        sh.inbox.back().batches.push_back(shared);
        sh.inbox.back().events += shared->size();
        continue;
      }
      auto& g = sh.inbox.emplace_back();
      g.batches.push_back(shared);
      g.events = shared->size();
    }
    // Posted outside the lock (a shard may run it inline). Until inbox_posts is set the stale
    // value is below `posts`, so nothing joins early; publish() calls do not overlap.
    const std::uint64_t n = post_counted(i, [this, i] { drain_inbox(i); });
    std::lock_guard l(sh.inbox_mu);
    sh.inbox_posts = n;
  }
}

void hub::drain_inbox(std::size_t shard) {
  assert_on_shard(shard);
  shard_state& sh = *state_[shard];
  std::vector<std::shared_ptr<const std::vector<event_ptr>>> got;
  {
    std::lock_guard l(sh.inbox_mu);
    got = std::move(sh.inbox.front().batches);  // drains run in the order they were posted
    sh.inbox.pop_front();
  }
  if (got.size() == 1) return fan_out(sh, shard, *got.front());
  sh.merged.clear();
  for (const auto& b : got) sh.merged.insert(sh.merged.end(), b->begin(), b->end());
  got.clear();
  fan_out(sh, shard, sh.merged);
  sh.merged.clear();
}

void hub::emit(shard_state& sh, session& s, const event_ptr& e, bool snapshot, event_pin* pin,
               const std::shared_ptr<const std::string>* label) {
  assert_on_shard(s.home_shard);
  ++s.seq;
  // States only: an unblock must not count as having had the subject's (older) state.
  if (s.sub && s.sub->snapshot && e->retain && !e->subject.empty())
    s.last_of_subject[e->subject] = e->offset;
  event_pin own;
  if (pin == nullptr) pin = &own;
  if (!*pin) *pin = event_pin::make(e);
  s.ring.emplace_back(s.seq, *pin);
  // While a resume pages the log, the ring must keep joining up with what the log returns:
  // it may grow past its capacity (by what arrives during one replay) until the hand-over.
  while (s.ring.size() > s.ring_capacity && !s.replaying) s.ring.pop_front();
  ++sh.deliveries;  // added to stats_ once per batch (flush_outboxes)
  if (!s.sink || s.replaying) return;
  // Direct only while the sink is on this (the home) shard, no hand-over is in flight (a
  // resume's replay travels by post, so live events must too until it has run: FIFO) and no
  // delivery this shard posted to itself is still queued (it would be overtaken).
  if (s.sink.shard == s.home_shard && !s.route_via_post && sh.self_posts_pending == 0) {
    if (session_sink* k = sh.find_sink(s.sink.conn)) {
      k->on_deliver(delivery_ref{s.seq, e, label != nullptr ? *label : s.sub_id, snapshot});
      if (sh.touched.empty() || sh.touched.back() != k) sh.touched.push_back(k);
    }
  } else {
    sh.outbox[s.sink.shard].emplace_back(
        s.sink.conn, delivery{s.seq, e, label != nullptr ? *label : s.sub_id, snapshot});
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
    const bool self = &sh == state_[t].get();
    if (self) ++sh.self_posts_pending;
    post(t, [this, t, self, items = std::move(sh.outbox[t])] {
      assert_on_shard(t);
      shard_state& target = *state_[t];
      if (self) --target.self_posts_pending;
      session_sink* last = nullptr;
      std::vector<session_sink*> flush;
      for (const auto& [conn, d] : items) {
        session_sink* k = target.find_sink(conn);
        if (k == nullptr) continue;  // the socket closed after the match: nothing to deliver
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
  assert_on_shard(shard);
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
    sh.index.match(*e, [&](session* s) {
      if (!wants(*s, *e, true)) return;
      if (s->gathering || s->durable_hold) return s->pending.push_back(e);
      if (s->batch_hits++ == 0) sh.hit_sessions.push_back(s);
      sh.hits.emplace_back(s, i);
    });
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

void hub::release_snapshot(session& s, const std::vector<event_ptr>& copies,
                           const std::shared_ptr<const std::string>& for_sub) {
  assert_on_shard(s.home_shard);
  auto& sh = *state_[s.home_shard];
  if (for_sub && for_sub != s.sub_id) {
    // Gathered for a subscription replaced since: its own id, and the newer one's gate stays.
    // Cleared since (unsubscribe): nothing more is delivered.
    if (!s.sub) return;
    for (const event_ptr& c : copies) emit(sh, s, c, true, nullptr, &for_sub);
    if (!copies.empty() && s.anchor_valid && !s.gathering && !s.replaying) {
      set_anchor(sh, s);  // those seqs are not log matches of the current subscription
      save_session(s, false);
    }
    flush_outboxes(sh);
    return;
  }
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
  save_session(s, false);  // the copies' seqs are not log matches: a new anchor for a crash
  flush_outboxes(sh);
}

void hub::subject_unblocked(const event_ptr& state) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, state] {
      assert_on_shard(i);
      auto& sh = *state_[i];
      for (auto& [id, sp] : sh.sessions) {
        session& s = *sp;
        if (!s.sub || !s.sub->snapshot || s.gathering || s.durable_hold || !wants(s, *state))
          continue;
        auto it = s.last_of_subject.find(state->subject);
        if (it != s.last_of_subject.end() && it->second >= state->offset) continue;
        emit(sh, s, state, true);
        set_anchor(sh, s);  // an out-of-order copy: seqs after it count from here
        save_session(s, false);
      }
      flush_outboxes(sh);
    });
  }
}

}  // namespace herald
