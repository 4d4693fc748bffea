// The hub: N shards (one per worker thread), each with its own subscription index, sessions and
// sink table, so fan-out takes no lock. publish() posts one batch per shard; each shard matches
// it against its index, assigns seq, fills recovery rings and hands deliveries to the
// connections (sinks) — directly when the connection is on the same shard, else one post per
// target shard per batch. Thread-safe where stated; "shard-only" functions must run on the
// thread of the shard they name (current_shard()).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/close_reason.h"
#include "core/errc.h"
#include "core/session.h"

namespace herald {

class directory;

// One delivered event as a connection sees it.
struct delivery {
  std::uint64_t seq = 0;  // the session's seq (without seq_base)
  event_ptr ev;
  std::shared_ptr<const std::string> subscription_id;
  bool snapshot = false;  // a retained-state copy
};

// The same, borrowed for the length of one on_deliver call, so that the hot path counts no
// references per delivery; a sink that keeps it makes a `delivery` of it with own().
struct delivery_ref {
  std::uint64_t seq;
  const event_ptr& ev;
  const std::shared_ptr<const std::string>& subscription_id;
  bool snapshot;
  delivery_ref(std::uint64_t q, const event_ptr& e, const std::shared_ptr<const std::string>& sub,
               bool snap)
      : seq(q), ev(e), subscription_id(sub), snapshot(snap) {}
  delivery_ref(const delivery& d)  // NOLINT(google-explicit-constructor): a view of it
      : delivery_ref(d.seq, d.ev, d.subscription_id, d.snapshot) {}
  delivery own() const { return delivery{seq, ev, subscription_id, snapshot}; }
};

// What an admin listing shows of a socket.
struct connection_info {
  std::string id, dialect, tenant, app, user, login, session, remote;
  std::int64_t opened_ms = 0;
  std::string extras_json = "{}";  // a dialect's extra fields, as a JSON object
  // The socket's own counters (its shard's plain integers, read there).
  std::uint64_t delivered = 0;        // deliveries handed to this socket
  std::size_t queued_bytes = 0;       // bytes queued or held for writing
  std::int64_t last_activity_ms = 0;  // the last frame received, or opened_ms
  // Its session's (hub::connections reads them on the session's home shard).
  std::uint64_t seq = 0;  // the last seq given out, as the client sees it (seq_base added)
  std::optional<std::vector<filter_spec>> filters;  // the subscription's, `~` resolved
  std::string subscription_id;
};

// hub::explain's answer: whether the hub handed event E to session S, or the first rule that
// kept it from S. `rule` names are stable (docs/admin-api.md, "why").
struct why_verdict {
  bool delivered = false;
  std::string rule;    // when !delivered: "no_filter_matched", "tenant", "session_detached", …
  std::string detail;  // in words
  std::optional<std::uint64_t> seq;  // the session's seq for E as its client sees it, if known
  std::int64_t at_ms = 0;            // delivered: when the hub handed it to the socket
  std::string dialect;
  struct filter_result {
    filter_spec spec;
    bool matched = false;
    std::string why;  // when !matched
  };
  std::vector<filter_result> filters;  // the session's filters, each tried on E
};

// A connection as the hub sees it. Implemented by dialects; every call comes on the
// connection's own shard.
class session_sink {
 public:
  virtual ~session_sink() = default;
  virtual void on_deliver(const delivery_ref& d) = 0;
  // The end of one batch of on_deliver calls: a good time to write.
  virtual void on_batch_end() = 0;
  // The hub wants the socket closed: replaced by a resume, revoked, closed by an admin, drain.
  // The session stays resumable unless is_resumable(k.why) is false.
  virtual void on_kick(const kick& k) = 0;
  // The rights of the socket's principal changed (an admin edit; hub::refresh_where): `now` is
  // what it holds now, nullopt when it may no longer connect at all. A sink that cannot apply
  // new rights closes as revoked (this default).
  virtual void on_rights(const std::optional<principal>& now) {
    (void)now;
    on_kick(kick{close_reason::revoked, "rights changed"});
  }
  virtual const principal& who() const = 0;
  virtual connection_info info() const = 0;
};

struct hub_options {
  std::size_t recovery_buffer = 1000;
  std::int64_t recovery_window_ms = 180000;
  // A resume whose gap is older than the ring pages it from the event log, up to this many
  // events; past it (or without read_log) the outcome is buffer_overflow.
  std::size_t max_log_replay = 10000;
  // Up to `limit` events with offset > `after`, in offset order. Blocking: the hub calls it
  // only through `blocking` (a thread pool) or at start-up.
  std::function<std::vector<event_ptr>(std::int64_t after, std::size_t limit)> read_log;
  // Offsets are dense, so a hole in what read_log returns is events the log no longer holds,
  // and a count across it would be wrong. hole_tenants(first, last) names the tenants whose
  // events filled offsets [first, last] when the store knows them (a log bounded per tenant
  // trims one tenant's events from the middle: store::hole_tenants); a hole of tenants a
  // session can never take does not spoil its count. Unset, or nullopt: every hole does.
  // Blocking, like read_log.
  std::function<std::optional<std::vector<std::string>>(std::int64_t first, std::int64_t last)>
      hole_tenants;
  std::function<void(std::function<void()>)> blocking;
  std::int64_t start_offset = 0;  // the log's last offset when the hub starts
  // Crash safety (hub_persist.cc). persist(id, state, done) stores what a resume needs after a
  // crash (nullopt: erases it) and calls done, from any thread, once that is durable; a
  // subscription's ack waits for it. Unset: sessions survive a drain only.
  std::function<void(const std::string& id, std::optional<session_state> state,
                     std::function<void()> done)>
      persist;
  // A digest of a resume token: stored states keep it instead of the token. Unset: the token.
  std::function<std::string(std::string_view)> token_digest;
  // Detached sessions kept per app and per tenant (0: unbounded): past the bound the one
  // detached longest ago is dropped (a resume of it then hears `expired`).
  std::size_t max_sessions_per_app = 0;
  std::size_t max_sessions_per_tenant = 0;
  // Cluster mode (hub_recovery.cc, adopt): a resume of a session this hub does not hold asks
  // adopt(id) for its stored state (another node's crash record; nullopt: none). Blocking: the
  // hub calls it only through `blocking`. Unset: such a resume is unknown_session.
  std::function<std::optional<session_state>(const std::string& id)> adopt;
  // Called (on the new socket's shard) once an adopted session was resumed here, so the node
  // that held it can let it go (hub::let_go there).
  std::function<void(const std::string& id)> adopted;
  // Cluster mode following tenants (hub_follow.cc; docs/cluster.md "Fan-out"): follow(t) asks
  // the store for tenant t's events ("": every tenant's), which tenant_delivering() answers;
  // unfollow(t) stops them once no session here needed t for unfollow_after_ms. Thread-safe,
  // non-blocking. Unset: every tenant always delivers (one node; a store following all).
  std::function<void(const std::string&tenant)> follow, unfollow;
  std::int64_t unfollow_after_ms = 60000;
};

enum class recovery_error { none, expired, buffer_overflow, unknown_session, forbidden };
const char* recovery_error_name(recovery_error e) noexcept;

struct session_ref {
  std::size_t shard = 0;
  std::string id;
};

// How a dialect wants one session kept: set once, at open_session(), on the home shard, so no
// dialect writes a core `session` field afterwards.
struct session_options {
  std::uint64_t seq_base = 0;
  std::size_t ring_capacity = 0;        // 0: the hub's recovery_buffer
  std::int64_t recovery_window_ms = 0;  // 0: the hub's recovery_window_ms
  bool log_replay = true;               // false: a gap older than the ring is buffer_overflow
};

struct resume_outcome {
  recovery_error error = recovery_error::none;
  session_ref ref;
  std::string resume_token;
  std::uint64_t seq = 0;  // the session's seq at the hand-over (recovered) or 0
  std::uint64_t seq_base = 0;
  std::shared_ptr<const std::string> sub_id;  // the restored subscription's id, if any
};

// Counters the hub keeps for /metrics. Thread-safe (relaxed atomics).
struct hub_stats {
  std::atomic<std::uint64_t> published{0}, deliveries{0}, sessions_open{0};
  std::atomic<std::uint64_t> recoveries_ok{0}, recoveries_failed{0};
};

class hub {
 public:
  using task = std::function<void()>;
  using post_fn = std::function<void(task)>;
  // Batches published while a shard is busy join one fan-out task up to this many events (a
  // single bigger batch goes alone): a fan-out task stays short, so the shard's other work
  // (replies, writes, reads) runs between them instead of behind thousands of events times
  // every subscriber.
  static constexpr std::size_t max_drain_events = 256;

  // `shards[i]` runs a task on shard i's thread. `subjects` supplies subject flags to the policy.
  hub(std::vector<post_fn> shards, const directory* subjects, hub_options opts);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  std::size_t shard_count() const noexcept { return shards_.size(); }
  // The shard whose thread calls this, or npos on other threads. Set by bind_thread().
  static std::size_t current_shard() noexcept;
  static void bind_thread(std::size_t shard) noexcept;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // Runs `t` on `shard` (inline when already there). Thread-safe.
  void run_on(std::size_t shard, task t);
  // Posts `t` to `shard` even when already there (FIFO behind earlier posts). Thread-safe.
  void post(std::size_t shard, task t);

  // Fans a batch of appended events out to every shard. Thread-safe; callers must call it in
  // offset order (the store's single writer does).
  void publish(std::vector<event_ptr> batch);

  // --- shard-only: sinks of this shard.
  std::uint64_t register_sink(session_sink* s);
  void unregister_sink(std::uint64_t conn);
  session_sink* find_sink(std::uint64_t conn) const;

  // --- shard-only: sessions homed on this shard.
  // Creates a session attached to `sink` (a sink on this shard), kept as `opts` says (the
  // hub's defaults when left out).
  session_ref open_session(const principal& who, std::string dialect, sink_ref sink,
                           session_options opts = {});
  // Thread-safe. Runs `fn` with the session on its home shard (inline when already there, else
  // posted); fn gets nullptr when the session is gone.
  void with_session(const session_ref& ref, std::function<void(session*)> fn);
  // Thread-safe. Runs `home` on the session's home shard (nullptr when the session is gone). If
  // it returns a task, that task runs next on `me.shard` (inline when already there, else
  // posted FIFO behind earlier posts) only if sink `me.conn` is still registered on that shard.
  // Ordering: the task reaches the socket after everything `home` delivered itself and before
  // any event matched after `home` returned, e.g. an ack sent this way after set_subscription()
  // precedes every event of the new subscription (see the comment in the definition).
  void with_session_then(const session_ref& ref, sink_ref me, std::function<task(session*)> home);
  // Thread-safe. Runs `t` on `me.shard` (inline when already there, else posted) only if sink
  // `me.conn` is still registered there when it would run.
  void on_socket_shard(sink_ref me, task t);

  // Thread-safe. Tries to move session `id` to `sink` (native.md §3.6): validates on the home
  // shard, kicks the previous sink (1000 replaced), then runs `done` on the sink's shard
  // followed — in order, on the same shard — by the missed deliveries and then live ones.
  // `token` is a resume token ("ses_….secret"): it names its session.
  void resume(const std::string& token, std::uint64_t last_seq, const principal& who, sink_ref sink,
              std::function<void(resume_outcome)> done);

  // Home-shard: installs `sub` (replacing any). While `gathering`, matches wait for
  // release_snapshot(). Returns the session's new subscription id pointer.
  void set_subscription(session& s, subscription sub, bool gathering);
  // Home-shard: removes the subscription. A later resume still reports its id
  // (resume_outcome::sub_id) unless `forget_id`: then it reports no subscription.
  void clear_subscription(session& s);
  void clear_subscription(session& s, bool forget_id);
  // Home-shard: delivers snapshot copies (already scoped and matched by the caller, offset
  // order), then the live events held while gathering. `for_sub` is the subscription id the
  // snapshot was gathered for (set_subscription's s.sub_id); when a newer subscription replaced
  // it meanwhile, the copies go out under their own id and the newer one keeps gathering.
  void release_snapshot(session& s, const std::vector<event_ptr>& copies,
                        const std::shared_ptr<const std::string>& for_sub = nullptr);
  // Home-shard: the session acts with `who`'s rights from now on (the same identity, re-read
  // after an admin edit or presented by a resume): every later match and replay uses them.
  // reanchor: the log anchor and the crash record restart here (an edit); a resume keeps its
  // anchor for the replay it is about to page (an edit since bumped the epoch, retiring it).
  void set_principal(session& s, principal who, bool reanchor = true);
  // Home-shard: the session's socket went away. resumable=false ends the session now.
  // why: the server's reason for closing the socket, if it closed it (kept for explain()).
  void detach(session& s, std::uint64_t conn, bool resumable,
              std::optional<close_reason> why = std::nullopt);

  // Thread-safe: kicks every socket for which `pred` holds, on every shard. `pred` runs on each
  // sink's shard and sees the whole sink (its principal, its dialect's info), so a dialect can
  // aim at one login, one app or one stored subscription.
  void kick_where(std::function<bool(const session_sink&)> pred, kick k);
  // Thread-safe: the rights of some principals changed (a user's admin flag, extension or
  // trackers; an app's role or scopes). On every shard, each sink for which `pred` holds gets
  // on_rights(fresh(its principal)) within one post; `fresh` re-reads the directory (nullopt:
  // it may no longer connect) and runs on shard threads, so it must be thread-safe. Detached
  // sessions (no socket) whose principal `detached` holds of take fresh(principal) in the same
  // post (set_principal; nullopt leaves them to expire): a session kept for a resume matches
  // with today's rights, as the fan-out and explain() see them.
  void refresh_where(std::function<bool(const session_sink&)> pred,
                     std::function<std::optional<principal>(const principal&)> fresh,
                     std::function<bool(const principal&)> detached = nullptr);
  // Thread-safe: session `id` was adopted by another node: its socket here (if any) closes with
  // `replaced` and the session goes without its record being written or erased (the other
  // node owns it now). No-op when this hub does not hold it.
  void let_go(const std::string& id);
  // Thread-safe: kicks the socket with this connection id ("con_…"); false when none.
  bool kick_connection(const std::string& con_id, kick k);
  // Thread-safe, blocking (not on a shard thread): every socket's info, with its session's.
  std::vector<connection_info> connections();
  // Thread-safe: the ids of the sessions this hub holds (attached or detached).
  std::vector<std::string> session_ids();

  // Thread-safe, blocking (not on a shard thread; may read the log through read_log): why
  // session `session_id` did or did not get event `event_id`. `e` is the event as the log has
  // it, null when the log does not (the session's ring may still hold it). nullopt: no such
  // session, live or recently expired. A verdict whose rule is "event_missing" means neither
  // the log nor the session holds the event (the caller tells pruned from unknown).
  std::optional<why_verdict> explain(const std::string& session_id, const std::string& event_id,
                                     event_ptr e);

  // Shard-only: expire detached sessions past their window. Call about once a second.
  void tick(std::int64_t now_ms);

  // ---- following tenants (hub_follow.cc) ----
  // The tenants a session of `who` subscribed with tenant set `set` (null: no subscription yet)
  // takes events of: its principal's, the set's root, or "" (every tenant: an admin app, a
  // subtree set, whose tenants may appear at any time).
  static std::vector<std::string> tenants_needed(const principal& who, const tenant_set* set);
  // Runs `t` on `me`'s shard once this node delivers every tenant of `need` — inline when it
  // does already (the caller on that shard) — else asks hub_options::follow and queues it.
  void when_delivering(std::vector<std::string> need, sink_ref me, task t);
  // Whether this node delivers every tenant of `need` now. Thread-safe.
  bool delivers(const std::vector<std::string>& need);
  // The store's answer to follow(tenant) (its feed thread, in order with publish()): every event
  // of `tenant` after `from` reaches publish() from now on. Each shard's frontier rises to
  // `from` (every followed tenant's events up to it were published), then the queued tasks run.
  void tenant_delivering(const std::string& tenant, std::int64_t from);

  // Only while no shard thread runs (after the server stopped): every session's state.
  std::vector<session_state> export_sessions() const;
  // Only before the shards start: recreates sessions (detached, window starting now), matching
  // the log after each one's processed_offset so their seq covers every committed event.
  void import_sessions(const std::vector<session_state>& states);

  // Thread-safe: a subject was unblocked. Every session subscribed with snapshot:true whose
  // filters match `state` gets it, unless it already had a newer event of that subject.
  void subject_unblocked(const event_ptr& state);

  hub_stats& stats() noexcept { return stats_; }

 private:
  // What one shard owns: hub_shard.h (internal to the hub's files).
  struct shard_state;
  // hub_fanout.cc. pin: the shard's pin of `e` for a fan-out (made on first use); null: a pin
  // of its own.
  void fan_out(shard_state& sh, std::size_t shard, const std::vector<event_ptr>& batch);
  // hub_fanout.cc: fans out, as one batch, every batch published to `shard` since its last
  // drain (shard_state::inbox).
  void drain_inbox(std::size_t shard);
  // Posts to a shard's queue, counting the post (shard_state::posts); returns the count with
  // it. Thread-safe.
  std::uint64_t post_counted(std::size_t shard, task t);
  // label: the subscription id to deliver under (null: the session's current one).
  void emit(shard_state& sh, session& s, const event_ptr& e, bool snapshot,
            event_pin* pin = nullptr, const std::shared_ptr<const std::string>* label = nullptr);
  void flush_outboxes(shard_state& sh);
  // session_wants() with this hub's directory (inline in hub_shard.h). topic_matched: the
  // subscription index found `s` for `e` by an exact topic match.
  bool wants(const session& s, const event& e, bool topic_matched = false) const;
  // Whether the hole [first, last] in read_log's pages holds no event `s` could take
  // (hub_options::hole_tenants). Blocking.
  bool hole_closed_to(const session& s, std::int64_t first, std::int64_t last) const;
  // hub_shards.cc: fills connections()' session fields (blocking).
  void add_session_info(std::vector<connection_info>& rows);
  // hub_explain.cc: the verdict from the session's own state, on its home shard; a seq past
  // the ring left to count from the log (need_count).
  why_verdict explain_on_home(shard_state& sh, session& s, const event_ptr& e, bool& need_count);
  // hub.cc
  void set_anchor(shard_state& sh, session& s);
  // hub_recovery.cc. forget: erase the session's crash record too.
  void drop_session(shard_state& sh, const std::string& id, bool forget = true);
  void kick_replaced(sink_ref old);  // posted to its shard
  void fail_resume(sink_ref sink, std::function<void(resume_outcome)> done, recovery_error e);
  // hub_recovery.cc, cluster mode: a resume of a session another node stored.
  void adopt_then_resume(const std::string& id, const std::string& token, std::uint64_t last_seq,
                         const principal& who, sink_ref sink,
                         std::function<void(resume_outcome)> done);
  void adopt_on_home(const session_state& st, const std::string& token, std::uint64_t last_seq,
                     const principal& who, sink_ref sink, std::function<void(resume_outcome)> done);
  void finish_adopt(const std::string& id, std::uint64_t skipped,
                    const std::vector<event_ptr>& kept, bool exact);
  // attached_too=false: only if no socket holds it (a failed adoption leaves it to its node).
  void let_go(const std::string& id, bool attached_too);
  void note_detached(shard_state& sh, session& s);
  void resume_on_home(const std::string& id, const std::string& token, std::uint64_t last_seq,
                      const principal& who, sink_ref sink,
                      std::function<void(resume_outcome)> done);
  void hand_over(session& s, sink_ref sink, std::uint64_t last_seq, std::vector<delivery> replay,
                 std::function<void(resume_outcome)> done);
  void finish_log_resume(const std::string& id, sink_ref sink, std::uint64_t last_seq,
                         std::uint64_t end_seq, std::vector<event_ptr> found, bool ok,
                         std::function<void(resume_outcome)> done);
  void remember_expired(const session& s, std::int64_t now);
  bool token_matches(session& s, const std::string& token) const;
  // hub_persist.cc: a detached session made from a stored state on `shard` (this thread stands
  // for it), indexed and registered; import and adoption share it.
  session& install_session(const session_state& st, std::size_t shard, std::int64_t now);
  // hub_persist.cc: a session's state (seq as of `processed`), the crash-safe record writes.
  session_state state_of(const session& s, std::uint64_t seq, std::int64_t processed) const;
  void save_session(session& s, bool hold_acks);
  void forget_session(const std::string& id);
  void submit_persist(const std::string& id, std::optional<session_state> st,
                      std::function<void()> done);
  void release_hold(session& s);
  // hub_recovery.cc: the bounds on detached sessions (hub_options::max_sessions_per_*).
  void bound_detached(const session& s);
  void unbound_detached(const std::string& id);
  void unlist_detached(const std::string& id);  // registry_mu_ held

  std::vector<post_fn> shards_;
  std::vector<std::unique_ptr<shard_state>> state_;
  const directory* dir_;
  hub_options opts_;
  hub_stats stats_;
  std::atomic<std::uint64_t> next_conn_{1};

  // Global: which shard each live session is homed on, and the resume tokens of sessions that
  // expired recently (so a late resume hears `expired`, not `unknown_session`).
  mutable std::mutex registry_mu_;
  std::unordered_map<std::string, std::size_t> home_of_;
  std::unordered_map<std::string, std::pair<std::string, std::int64_t>> expired_;
  static constexpr std::size_t max_expired = 100000;

  // Record writes in flight, by session id: one at a time per session, the newest queued
  // behind it (older queued states are superseded), so a record never goes back in time.
  struct persist_slot {
    bool queued = false;
    std::optional<session_state> next;
    std::vector<std::function<void()>> dones;
  };
  std::mutex persist_mu_;
  std::unordered_map<std::string, persist_slot> persisting_;
  // Also under registry_mu_: every detached session by id (its app, tenant, home shard and
  // order of detaching), and per app and per tenant the detached ones oldest first.
  struct detached_entry {
    std::string app, tenant;
    std::size_t shard;
    std::uint64_t order;
  };
  std::unordered_map<std::string, detached_entry> detached_;
  std::unordered_map<std::string, std::map<std::uint64_t, std::string>> detached_by_app_,
      detached_by_tenant_;
  std::uint64_t detached_order_ = 0;

  // hub_follow.cc: what this node follows (hub_options::follow). following_: asked for;
  // delivering_: answered (every shard's frontier past it); needed_at_: when a session last
  // needed each (tick, when_delivering); the tasks waiting for tenants to deliver.
  struct follow_waiter {
    std::vector<std::string> need;
    sink_ref me;
    task t;
  };
  bool covered(const std::vector<std::string>& need) const;  // follow_mu_ held
  void sweep_follows(shard_state& sh, std::int64_t now);     // tick: unfollow what is idle
  std::mutex follow_mu_;
  std::set<std::string, std::less<>> following_, delivering_;
  std::map<std::string, std::int64_t, std::less<>> needed_at_;
  std::vector<follow_waiter> follow_waiters_;
  // resume_on_home / adopt_on_home: false when the session's tenants do not deliver yet (the
  // call is queued to run again once they do).
  bool wait_for_tenants(const principal& who, const tenant_set* set, sink_ref sink, task again);
};

}  // namespace herald
