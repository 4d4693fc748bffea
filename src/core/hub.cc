// The hub facade's session lifecycle: opening a session on its home shard and changing its
// subscription (which moves it in the shard's subscription index and resets its log anchor).
// The rest of the hub is split by responsibility:
//   hub_shards.cc        thread binding, run_on/post, the sink table, with_session(_then),
//                        kicks and the admin listing
//   subscription_index.* the per-shard topic tries and session_wants()
//   hub_fanout.cc        publish, fan_out, emit, flush_outboxes, snapshot release, unblocks
//   hub_recovery.cc      detach, expiry (tick), resume, log resume, hand-over
//   hub_persist.cc       export_sessions / import_sessions
//   hub_explain.cc       explain (the admin API's why)
//   hub_shard.h          what one shard owns (internal), the shard assertions
//
// Threads: everything here is home-shard only (asserted in debug builds).
#include "core/directory.h"
#include "core/hub_shard.h"

namespace herald {

session_ref hub::open_session(const principal& who, std::string dialect, sink_ref sink,
                              session_options opts) {
  assert(this_shard != npos);  // the session is homed on the calling shard
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

void hub::set_subscription(session& s, subscription sub, bool gathering) {
  assert_on_shard(s.home_shard);
  auto& sh = *state_[s.home_shard];
  sh.index.remove(s);  // indexed under the old filters' topics: out before they change
  s.sub_id = std::make_shared<const std::string>(sub.id);
  s.sub = std::move(sub);
  s.gathering = gathering;
  s.pending.clear();
  s.snapshot_floor.clear();
  s.sub_from_offset = sh.last_offset;
  sh.index.add(s);
  if (gathering)
    s.anchor_valid = false;
  else
    set_anchor(sh, s);
  save_session(s, true);  // crash safety: the ack waits until this is durable (hub_persist.cc)
}

// The anchor pairs the session's seq with this shard's offset frontier under the current
// subscription and policy epoch: from it a resume can re-match the log (hub_recovery.cc).
void hub::set_anchor(shard_state& sh, session& s) {
  s.anchor_valid = true;
  s.anchor_seq = s.seq;
  s.anchor_offset = sh.last_offset;
  s.anchor_epoch = dir_ != nullptr ? dir_->policy_epoch() : 0;
}

void hub::set_principal(session& s, principal who, bool reanchor) {
  assert_on_shard(s.home_shard);
  auto& sh = *state_[s.home_shard];
  // The index places a session by its principal (tenant-bound or wide): out and in again.
  const bool indexed = s.in_index;
  sh.index.remove(s);
  s.who = std::move(who);
  if (indexed) sh.index.add(s);
  if (!reanchor) return;
  // Matches from here on are made with the new rights: the log anchor (and the crash record,
  // which recounts from it with the stored principal) starts here.
  if (s.anchor_valid && !s.gathering && !s.replaying) set_anchor(sh, s);
  save_session(s, false);
}

void hub::clear_subscription(session& s) { clear_subscription(s, false); }

void hub::clear_subscription(session& s, bool forget_id) {
  assert_on_shard(s.home_shard);
  state_[s.home_shard]->index.remove(s);
  s.sub.reset();
  if (forget_id) s.sub_id.reset();
  s.gathering = false;
  s.pending.clear();
  s.anchor_valid = false;
  save_session(s, false);
}

}  // namespace herald
