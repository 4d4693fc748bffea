// Shards and posting: the thread binding, run_on/post, the per-shard sink table, the session
// access primitives built on them (with_session, with_session_then, on_socket_shard), and the
// walks of every shard's sinks (kicks, the admin listing).
//
// Threads: run_on/post and everything "thread-safe" in hub.h may be called from any thread;
// the sink table of shard i is read and written only on shard i's thread (asserted in debug
// builds). A task posted to a shard runs after every task posted to it before (post_fn is a
// FIFO), which is what the ordering arguments below rest on.
#include <future>

#include "core/hub_shard.h"

namespace herald {

constinit thread_local std::size_t this_shard = hub::npos;

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
  if (shard == this_shard)
    t();
  else
    post_counted(shard, std::move(t));
}

void hub::post(std::size_t shard, task t) { post_counted(shard, std::move(t)); }

std::uint64_t hub::post_counted(std::size_t shard, task t) {
  // Counted before it is queued (seq_cst): a publish() that comes after this post sees it.
  const std::uint64_t n = state_.at(shard)->posts.fetch_add(1) + 1;
  shards_[shard](std::move(t));
  return n;
}

std::uint64_t hub::register_sink(session_sink* s) {
  assert(this_shard != npos);  // registers on the calling shard: the sink's own
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
  assert(this_shard != npos);
  return state_[this_shard]->find_sink(conn);
}

void hub::with_session(const session_ref& ref, std::function<void(session*)> fn) {
  run_on(ref.shard, [this, ref, fn = std::move(fn)] {
    assert_on_shard(ref.shard);
    fn(state_[ref.shard]->find_session(ref.id));
  });
}

// Why the continuation can neither overtake nor be overtaken wrongly: events reach a sink from
// the session's home shard H in exactly two ways (hub_fanout.cc, emit): a direct on_deliver
// call inside a task on H when the sink is on H, or a post to the sink's shard made at the end
// of a batch (flush_outboxes). `home` runs as (part of) one task on H. If me.shard == H the
// continuation runs inline at the end of that same task, so before any later fan_out task on
// H can call the sink directly. Otherwise it is posted to me.shard while H still runs that
// task, so any batch H matches afterwards is posted to me.shard later, FIFO behind it. Either
// way, what `home` delivered itself (release_snapshot) went out first: directly before it
// returned, or posted before the continuation was. A resume in flight (route_via_post) only
// moves deliveries from the direct path to the posted one, which keeps the argument.
void hub::with_session_then(const session_ref& ref, sink_ref me,
                            std::function<task(session*)> home) {
  with_session(ref, [this, me, home = std::move(home)](session* s) {
    task next = home(s);
    if (!next) return;
    // A subscription's record is not durable yet: its ack (and what follows) waits for it.
    if (s != nullptr && s->durable_hold)
      s->after_durable.emplace_back(me, std::move(next));
    else
      on_socket_shard(me, std::move(next));
  });
}

void hub::on_socket_shard(sink_ref me, task t) {
  run_on(me.shard, [this, me, t = std::move(t)] {
    assert_on_shard(me.shard);
    // Connection ids are never reused, so a registered id is still the same socket.
    if (state_[me.shard]->find_sink(me.conn) != nullptr) t();
  });
}

void hub::kick_where(std::function<bool(const session_sink&)> pred, kick why) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, pred, why] {
      assert_on_shard(i);
      // Collected first: a kicked sink may unregister itself while the table is walked.
      std::vector<std::uint64_t> hit;
      for (const auto& [conn, k] : state_[i]->sinks)
        if (pred(*k)) hit.push_back(conn);
      for (std::uint64_t c : hit)
        if (session_sink* k = find_sink(c)) k->on_kick(why);
    });
  }
}

void hub::refresh_where(std::function<bool(const session_sink&)> pred,
                        std::function<std::optional<principal>(const principal&)> fresh,
                        std::function<bool(const principal&)> detached) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    post(i, [this, i, pred, fresh, detached] {
      assert_on_shard(i);
      if (detached)
        for (const auto& [id, s] : state_[i]->sessions)
          if (!s->sink && detached(s->who))
            if (auto now = fresh(s->who)) set_principal(*s, std::move(*now));
      std::vector<std::uint64_t> hit;  // first: a sink may close (unregister) on new rights
      for (const auto& [conn, k] : state_[i]->sinks)
        if (pred(*k)) hit.push_back(conn);
      for (std::uint64_t c : hit)
        if (session_sink* k = find_sink(c)) k->on_rights(fresh(k->who()));
    });
  }
}

bool hub::kick_connection(const std::string& con_id, kick why) {
  assert(this_shard == npos);  // blocks on every shard: a shard waiting on itself would hang
  std::vector<std::future<bool>> results;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    auto p = std::make_shared<std::promise<bool>>();
    results.push_back(p->get_future());
    post(i, [this, i, p, con_id, why] {
      assert_on_shard(i);
      for (const auto& [conn, k] : state_[i]->sinks) {
        if (k->info().id == con_id) {
          k->on_kick(why);
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
      assert_on_shard(i);
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
  add_session_info(all);
  return all;
}

// Each row's session seq and subscription, read on the session's home shard (one post per
// home shard that has any).
void hub::add_session_info(std::vector<connection_info>& rows) {
  std::vector<std::vector<std::size_t>> by_home(shards_.size());
  {
    std::lock_guard l(registry_mu_);
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (auto it = home_of_.find(rows[i].session); it != home_of_.end())
        by_home[it->second].push_back(i);
  }
  std::vector<std::future<void>> done;
  for (std::size_t h = 0; h < shards_.size(); ++h) {
    if (by_home[h].empty()) continue;
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    post(h, [this, h, p, &rows, idx = std::move(by_home[h])] {
      assert_on_shard(h);
      for (std::size_t i : idx) {
        const session* s = state_[h]->find_session(rows[i].session);
        if (s == nullptr) continue;
        rows[i].seq = s->seq_base + s->seq;
        if (!s->sub) continue;
        rows[i].subscription_id = s->sub->id;
        rows[i].filters.emplace();
        for (const filter& f : s->sub->filters) rows[i].filters->push_back(f.spec());
      }
      p->set_value();
    });
  }
  for (auto& f : done) f.get();
}

}  // namespace herald
