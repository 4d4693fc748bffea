// The one narrow storage interface: the event log, the registry's records, retained state, the
// single-use token guard. Back ends: store/sqlite (embedded default), store/memory (tests and
// `core.store = "memory"`).
// Thread-safe: every member may be called from any thread except a shard's (calls block on
// I/O). append() returns only once the batch is durable (the sqlite back end group-commits
// concurrent appends); the append listener has seen the batch by then, every batch in offset
// order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/errc.h"
#include "core/event.h"
#include "store/redis/options.h"

namespace herald {

// Which events a history read scans, oldest first.
struct log_query {
  std::vector<std::string> tenants;      // empty: every tenant
  std::int64_t after_offset = 0;         // offset > after_offset
  std::optional<std::int64_t> since_ms;  // time >= since
  std::optional<std::int64_t> until_ms;  // time < until
  std::optional<std::string> subject;
  std::size_t limit = 100;  // rows scanned at most
};

struct stored_record {
  std::string key;
  std::string json;
};

// One write of write_records(): put `json`, or erase the record when it is empty.
struct record_write {
  std::string key;
  std::optional<std::string> json;
};

// A registry record committed in the same transaction as an append (both or neither), its
// JSON built from the events the append assigned: an idempotency record holding the reply.
// json must not throw nor call the store.
struct append_record {
  std::string kind, key;
  std::function<std::string(const std::vector<event_ptr>&)> json;  // empty: no record
};

class store {
 public:
  using append_listener = std::function<void(std::vector<event_ptr>)>;
  virtual ~store() = default;

  // Called once per appended batch (the cluster store: once per run of one tenant's events in
  // it, only for the tenants it follows), in offset order, right after it is durable and before
  // append() returns to its publisher (sqlite: on the writer thread after COMMIT; memory: on the
  // appending thread, appends serialized). Why this order: the hub is handed an event only once
  // it is stored, so no subscriber sees an event a crash could lose, and a publisher's reply
  // (201) comes after its events were handed to the fan-out. Set once, before the first append;
  // the listener must not call a writing member (see each back end).
  virtual void set_append_listener(append_listener l) = 0;

  // Appends one batch atomically (all or nothing): assigns id, offset and time (never
  // decreasing), records retained states and first-seen subjects, and returns the events.
  // `with`, when set, is put as a record in the same transaction: after a crash either the
  // batch and its record are both in the store or neither is.
  virtual result<std::vector<event_ptr>> append(std::vector<event_draft> batch,
                                                append_record with) = 0;
  result<std::vector<event_ptr>> append(std::vector<event_draft> batch) {
    return append(std::move(batch), append_record{});
  }

  // append() without waiting: `done` gets what append() would return, exactly once, on a thread
  // of the back end's choosing (sqlite: its writer, after the listener saw the batch); it must
  // not call a writing member. appends_async() says whether the call returns before the commit
  // (sqlite) or runs append() on the calling thread (the default: a caller that must not block
  // uses append() on a thread that may).
  virtual bool appends_async() const { return false; }
  virtual void append_async(std::vector<event_draft> batch, append_record with,
                            std::function<void(result<std::vector<event_ptr>>)> done) {
    done(append(std::move(batch), std::move(with)));
  }

  // Up to q.limit events matching the bounds, in offset order.
  virtual result<std::vector<event_ptr>> read(const log_query& q) = 0;

  // The tenants whose events held offsets [first, last], which the log no longer holds. A back
  // end that bounds each tenant's log apart (redis) trims one tenant's oldest events out of the
  // middle of the offsets, and a resume counting across that hole for another tenant's session
  // is still exact (hub_options::hole_tenants). nullopt when the back end cannot tell — any
  // prune of the log's oldest offsets, which held every tenant's: the default, as sqlite and
  // memory prune only those.
  virtual std::optional<std::vector<std::string>> hole_tenants(std::int64_t /*first*/,
                                                               std::int64_t /*last*/) {
    return std::nullopt;
  }

  // The retained state of (tenant, subject): the latest retained event, if any.
  virtual result<std::optional<event_ptr>> state(std::string_view tenant,
                                                 std::string_view subject) = 0;
  // Every retained state in `tenants` (empty: all), offset order.
  virtual result<std::vector<event_ptr>> states(const std::vector<std::string>& tenants) = 0;
  // Whether any event of (tenant, subject) was ever appended.
  virtual result<bool> subject_seen(std::string_view tenant, std::string_view subject) = 0;

  // Registry records: JSON documents by (kind, key). put replaces.
  virtual status put_record(std::string_view kind, std::string_view key, std::string_view json) = 0;
  virtual status erase_record(std::string_view kind, std::string_view key) = 0;
  virtual result<std::optional<std::string>> get_record(std::string_view kind,
                                                        std::string_view key) = 0;
  virtual result<std::vector<stored_record>> load_records(std::string_view kind) = 0;
  // Puts and erases records of `kind`, in order, in one transaction (sqlite: one write job,
  // so a burst costs one commit however many records it holds).
  virtual status write_records(std::string_view kind, std::vector<record_write> writes) = 0;

  // The replay guard: true the first time `key` is claimed, false ever after (until
  // `expires_ms` has passed and the key has been pruned).
  virtual result<bool> claim_once(std::string_view key, std::int64_t expires_ms) = 0;

  // Drops events older than `before_ms` (retained states' events are kept) and expired guards.
  virtual status prune(std::int64_t before_ms) = 0;
  // Drops the records of `kind` whose JSON document has an `expires_ms` number in
  // [1, now_ms] (idempotency records, login sessions: they carry their own expiry; 0, null or
  // absent never expires). Returns how many went.
  virtual result<std::size_t> prune_records(std::string_view kind, std::int64_t now_ms) = 0;

  // The event with this id while the log holds it (null otherwise), and whether retention has
  // pruned any event (offsets are dense from 1: fewer rows than the last offset). An admin
  // lookup (GET /v1/admin/why), by an index on ids: it never scans the log.
  struct event_lookup {
    event_ptr ev;
    bool pruned_any = false;
  };
  virtual result<event_lookup> find_event(std::string_view id) = 0;

  // The highest offset committed so far (0 when the log is empty). Thread-safe.
  virtual std::int64_t last_offset() const = 0;

  // Reachability for /readyz.
  virtual status ping() = 0;

  // Commits anything pending and stops the writer; later appends fail with unavailable.
  virtual void close() = 0;

  virtual const char* name() const noexcept = 0;
  // A line for the start-up log about what an acknowledged write means (redis: the server's
  // appendonly/appendfsync); empty when there is nothing to say.
  virtual std::string startup_note() const { return {}; }

  // Whether other processes share this store (redis: every node of a cluster). What a node
  // would keep in its data directory, such as the token key, is kept in the store then.
  virtual bool shared() const noexcept { return false; }
  // Puts `json` as record (kind, key) unless one is there, and returns the record stored
  // (`json` or the older one): of nodes racing, all end with the first one's. This default
  // (read, then put) suits back ends one process owns (sqlite's lock, memory); a shared back
  // end overrides it with one atomic step.
  virtual result<std::string> put_record_if_absent(std::string_view kind, std::string_view key,
                                                   std::string_view json) {
    auto had = get_record(kind, key);
    if (!had) return std::move(had).err();
    if (*had) return std::move(**had);
    if (status st = put_record(kind, key, json); !st) return st.err();
    return std::string(json);
  }
};

// What open_store needs for a redis:// store: the `[redis]` table (the connection's timeouts
// and bounds; the address comes from the URL) and the log's bound in events.
struct store_open_options {
  redis::options redis;
  std::int64_t log_max_events = 1000000;             // 0: unbounded
  std::int64_t log_max_events_per_tenant = 1000000;  // in each tenant's log; 0: unbounded
  std::int64_t feed_wait_ms = 100;  // an append unseen on the feed then reads the log
  bool follow_all = true;           // the feed follows every tenant (false: those it is told)
};

// Opens a back end from `[core] store`: "sqlite" (data in `data_dir`, created if missing),
// "memory", or `redis://HOST[:PORT][/DB]` (the cluster store, store/redis/redis_store.h);
// anything else is bad_message.
result<std::unique_ptr<store>> open_store(std::string_view spec, const std::string& data_dir,
                                          const store_open_options& opts = {});

}  // namespace herald
