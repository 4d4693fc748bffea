// Session persistence across a drain and restart: export_sessions() after the server stopped,
// import_sessions() before the new one starts. The ring is not kept: a resume re-derives what
// it held from the log through the anchor, and import matches the events committed after the
// export so each session's seq covers every committed event.
//
// Threads: both run while no shard thread does (that is the contract), so they touch every
// shard's state from the calling thread. import_sessions() binds the thread to each session's
// home shard while building it, so the home-shard asserts of the code it reuses hold.
#include "core/clock.h"
#include "core/directory.h"
#include "core/hub_shard.h"

namespace herald {

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
    const shard_binding as_home(shard);  // the shard's thread does not run yet
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
    s->recovery_window_ms =
        st.recovery_window_ms != 0 ? st.recovery_window_ms : opts_.recovery_window_ms;
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
        sh.index.add(*s);
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
