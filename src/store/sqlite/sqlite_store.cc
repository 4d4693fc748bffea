#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/clock.h"
#include "store/batch_check.h"

namespace herald {

namespace {

// Every index is a B-tree insert per appended event, on the publish path: the log keeps one.
// events_subject_set serves reads by subject, and holds only the events that name one (a query
// by subject says `subject <> ''` so SQLite may use it). Reads by tenant go through
// tenant_runs: one row per stretch of consecutive offsets of one tenant in a transaction
// (offsets first_off..last_off), written once per stretch at COMMIT instead of an index entry
// (tenant, off) per event — a group-committed transaction of one tenant's batches is one row,
// and a read by tenant visits its runs after `after` then the rows of each, so it stays
// proportional to what it reads. Time needs none: time never decreases along offsets, so a
// time bound is found by bisecting offsets (first_offset_at). Measured, 200,000 appends in
// batches of 64 (CPU per event, Python's sqlite3 driving the same table): the three indexes of
// before 4.5 us, two 3.1 us, the table alone 2.2 us; callgrind, the store alone (batches of 64,
// multi-row INSERTs): events_tenant cost ~2,200 instructions per event, tenant_runs ~50. Data
// directories of before lose the old indexes at open; one with events_tenant (written by a
// version before tenant_runs) has its runs rebuilt from the log at open (one scan).
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS events(
  off INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  topic TEXT NOT NULL,
  type TEXT NOT NULL,
  tenant TEXT NOT NULL,
  app TEXT NOT NULL,
  subject TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  data TEXT NOT NULL,
  retain INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_subject_set ON events(tenant, subject, off) WHERE subject <> '';
CREATE TABLE IF NOT EXISTS tenant_runs(
  last_off INTEGER PRIMARY KEY,
  first_off INTEGER NOT NULL,
  tenant TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tenant_runs_tenant ON tenant_runs(tenant, last_off);
DROP INDEX IF EXISTS events_subject;
DROP INDEX IF EXISTS events_time;
DROP INDEX IF EXISTS events_id;
CREATE TABLE IF NOT EXISTS states(
  tenant TEXT NOT NULL,
  subject TEXT NOT NULL,
  off INTEGER NOT NULL,
  PRIMARY KEY(tenant, subject)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS states_off ON states(off);
CREATE TABLE IF NOT EXISTS subjects_seen(
  tenant TEXT NOT NULL,
  subject TEXT NOT NULL,
  first_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  app TEXT NOT NULL,
  PRIMARY KEY(tenant, subject)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(kind, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_expiry
  ON records(kind, json_extract(value, '$.expires_ms'));
CREATE TABLE IF NOT EXISTS once(
  key TEXT PRIMARY KEY,
  expires_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS once_expires ON once(expires_ms);
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1);
)sql";

// The runs of a log written without them (events_tenant present): every maximal stretch of one
// tenant's events in offset order (holes left by pruning inside a stretch do not matter).
constexpr const char* rebuild_runs_sql = R"sql(
DELETE FROM tenant_runs;
INSERT INTO tenant_runs(last_off, first_off, tenant)
  SELECT max(off), min(off), tenant FROM (
    SELECT off, tenant, sum(start) OVER (ORDER BY off ROWS UNBOUNDED PRECEDING) AS run FROM (
      SELECT off, tenant,
             CASE WHEN tenant IS lag(tenant) OVER (ORDER BY off) THEN 0 ELSE 1 END AS start
      FROM events))
  GROUP BY run;
DROP INDEX events_tenant;
)sql";

// The event columns, in the order row_event() reads them.
#define HERALD_EVENT_COLS                                                 \
  "e.off, e.id, e.topic, e.type, e.tenant, e.app, e.subject, e.time_ms, " \
  "e.data, e.retain"

error sql_error(sqlite3* db, std::string_view what, int rc) {
  errc code = errc::unavailable;  // I/O, busy, locked, full, corrupt: the store is not usable
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      code = errc::conflict;
      break;
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      code = errc::internal;
      break;
    default:
      break;
  }
  std::string msg = "sqlite store: ";
  msg.append(what);
  msg += ": ";
  msg += sqlite3_errstr(rc);
  if (db != nullptr) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      msg += " (";
      msg += detail;
      msg += ")";
    }
  }
  return {code, std::move(msg)};
}

error closed_error() { return {errc::unavailable, "store is closed"}; }

// A prepared statement in use: bind, step, read columns; reset and unbound when it goes.
// Text is bound without copying (SQLITE_STATIC): the bound strings must outlive the stepping.
class stmt_use {
 public:
  explicit stmt_use(sqlite3_stmt* s) : s_(s) {}
  ~stmt_use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  stmt_use(const stmt_use&) = delete;
  stmt_use& operator=(const stmt_use&) = delete;

  void text(int i, std::string_view v) {
    // A null pointer would bind SQL NULL; an empty view must stay an empty string.
    const char* p = v.data() != nullptr ? v.data() : "";
    sqlite3_bind_text(s_, i, p, static_cast<int>(v.size()), nullptr);
  }
  void i64(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int step() { return sqlite3_step(s_); }

  std::int64_t col_i64(int i) const { return sqlite3_column_int64(s_, i); }
  bool col_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::string col_text(int i) const {
    const unsigned char* p = sqlite3_column_text(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    if (p == nullptr || n <= 0) return {};
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

 private:
  sqlite3_stmt* s_;
};

// Fills an event from a row of HERALD_EVENT_COLS.
event_ptr row_event(const stmt_use& s) {
  auto ev = std::make_shared<event>();
  ev->offset = s.col_i64(0);
  ev->id = s.col_text(1);
  ev->topic = s.col_text(2);
  ev->type = s.col_text(3);
  ev->tenant = s.col_text(4);
  ev->app = s.col_text(5);
  ev->subject = s.col_text(6);
  ev->time_ms = s.col_i64(7);
  ev->data = s.col_text(8);
  ev->retain = s.col_i64(9) != 0;
  return ev;
}

// A JSON array of strings, for `IN (SELECT value FROM json_each(?))`.
std::string json_string_array(const std::vector<std::string>& items) {
  boost::json::array a;
  a.reserve(items.size());
  for (const std::string& s : items) a.emplace_back(boost::json::string_view(s));
  return boost::json::serialize(a);
}

// Appends insert the log's rows with multi-row INSERTs: one statement step stores up to 64
// events, so the per-statement cost (the VDBE's start and halt, the statement journal, the
// reset) is paid once per chunk, and the table's and index's cursors stay open on their last
// page from row to row (SQLite skips the B-tree descent for a key past the last one). A batch
// of n rows is cut into chunks of 64, 16, 4 and 1 (at most 3 of each below 64). A chunk whose
// rows share type, tenant, app, subject, time and retain (one publish: the same time for the
// whole job, usually the rest too) binds those once: each bind is ~180 instructions, so a row
// binds 4 values instead of 10. Eight statements prepared per writer connection.
constexpr int event_params = 10;  // bound per row, in the order of events' columns
constexpr int shared_params = 6;  // a shared chunk: type, tenant, app, subject, time_ms, retain
constexpr int own_params = 4;     // then per row: off, id, topic, data
constexpr std::array<std::size_t, 4> insert_chunks = {64, 16, 4, 1};

// The rows of the next chunk when `left` rows remain: the largest chunk size not above it.
std::size_t insert_chunk(std::size_t left) {
  for (std::size_t n : insert_chunks) {
    if (n <= left) return n;
  }
  return 1;
}

// The INSERT of `rows` events: rows × event_params parameters numbered in order, or (shared)
// ?1..?6 for every row's shared columns, then own_params a row from ?7.
std::string insert_events_sql(std::size_t rows, bool shared) {
  std::string sql =
      "INSERT INTO events(off, id, topic, type, tenant, app, subject, time_ms, data, retain) "
      "VALUES";
  for (std::size_t r = 0; r < rows; ++r) {
    if (r > 0) sql += ',';
    if (!shared) {
      sql += "(?,?,?,?,?,?,?,?,?,?)";
      continue;
    }
    const std::string p = "?" + std::to_string(shared_params + 1 + r * own_params);
    const auto own = [&](std::size_t k) {
      return "?" + std::to_string(shared_params + 1 + r * own_params + k);
    };
    sql += "(" + p + "," + own(1) + "," + own(2) + ",?1,?2,?3,?4,?5," + own(3) + ",?6)";
  }
  return sql;
}

// Whether `b` may share the shared columns of a chunk that starts with `a`.
bool shares_columns(const event& a, const event& b) {
  return a.time_ms == b.time_ms && a.retain == b.retain && a.type == b.type &&
         a.tenant == b.tenant && a.app == b.app && a.subject == b.subject;
}

}  // namespace

// One SQLite connection with its prepared statements, used by one thread at a time.
struct sqlite_store::conn {
  sqlite3* db = nullptr;
  // Looked up by the SQL text as a view: a statement run per event costs no string copy.
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const noexcept {
      return std::hash<std::string_view>{}(v);
    }
  };
  std::unordered_map<std::string, sqlite3_stmt*, text_hash, std::equal_to<>> stmts;

  // The multi-row INSERTs of the log by chunk (insert_chunks order), prepared on first use and
  // owned by `stmts`; the writer's only.
  std::array<sqlite3_stmt*, 2 * insert_chunks.size()> inserts{};

  conn() = default;
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;
  ~conn() {
    for (auto& kv : stmts) sqlite3_finalize(kv.second);
    if (db != nullptr) sqlite3_close_v2(db);
  }

  static result<std::unique_ptr<conn>> open(const std::string& path, bool create,
                                            int busy_timeout_ms) {
    auto c = std::make_unique<conn>();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (create) flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path.c_str(), &c->db, flags, nullptr);
    if (rc != SQLITE_OK) return sql_error(c->db, "open " + path, rc);
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy_timeout_ms);
    return c;
  }

  result<sqlite3_stmt*> prepare(std::string_view sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return sql_error(db, "prepare", rc);
    stmts.emplace(std::string(sql), s);
    return s;
  }

  result<sqlite3_stmt*> insert_events(std::size_t rows, bool shared) {
    std::size_t k = shared ? insert_chunks.size() : 0;
    while (insert_chunks[k % insert_chunks.size()] != rows) ++k;
    if (inserts[k] == nullptr) {
      auto s = prepare(insert_events_sql(rows, shared));
      if (!s) return s.err();
      inserts[k] = *s;
    }
    return inserts[k];
  }

  status exec(const char* sql) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sql_error(db, sql, rc);
    return {};
  }

  // Runs a statement that returns no rows (or ignores them).
  template <class Bind>
  status run(std::string_view sql, Bind&& bind) {
    auto s = prepare(sql);
    if (!s) return s.err();
    stmt_use u(*s);
    bind(u);
    int rc = u.step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_error(db, "step", rc);
    return {};
  }

  // Collects every row through `row(stmt_use&)`.
  template <class Bind, class Row>
  status query(std::string_view sql, Bind&& bind, Row&& row) {
    auto s = prepare(sql);
    if (!s) return s.err();
    stmt_use u(*s);
    bind(u);
    for (;;) {
      int rc = u.step();
      if (rc == SQLITE_DONE) return {};
      if (rc != SQLITE_ROW) return sql_error(db, "step", rc);
      row(u);
    }
  }

  // The single integer a query answers; nullopt when it answers no row or NULL.
  template <class Bind>
  result<std::optional<std::int64_t>> scalar(std::string_view sql, Bind&& bind) {
    std::optional<std::int64_t> out;
    status st = query(sql, std::forward<Bind>(bind), [&](stmt_use& u) {
      if (!u.col_null(0)) out = u.col_i64(0);
    });
    if (!st) return st.err();
    return out;
  }
};

// One queued write: an append batch, or another write operation.
struct sqlite_store::job {
  bool is_append = false;
  std::vector<event_draft> drafts;
  std::vector<event_ptr> events;    // the appended events (append jobs)
  append_record with;               // put in the append's savepoint (append jobs)
  std::function<status(conn&)> op;  // the operation (other jobs)
  status st;
  bool done = false;  // guarded by mu_
  // Set by append_async: called by the writer after `done`, instead of waking a waiter.
  std::function<void(job&)> on_done;

  static std::shared_ptr<job> append_of(std::vector<event_draft> batch, append_record with) {
    auto j = std::make_shared<job>();
    j->is_append = true;
    j->drafts = std::move(batch);
    j->with = std::move(with);
    return j;
  }
};

sqlite_store::sqlite_store(sqlite_options opts) : opts_(opts) {}

result<std::unique_ptr<sqlite_store>> sqlite_store::open(const std::string& data_dir,
                                                         sqlite_options opts) {
  if (sqlite3_threadsafe() == 0) {
    return error{errc::internal, "sqlite store: libsqlite3 was built without thread support"};
  }
  std::unique_ptr<sqlite_store> s(new sqlite_store(opts));
  if (status st = s->start(data_dir); !st) return st.err();
  return s;
}

status sqlite_store::start(const std::string& data_dir) {
  std::string dir = data_dir.empty() ? std::string(".") : data_dir;
  if (dir.back() != '/') dir += '/';
  const std::string lock_path = dir + "herald.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return {errc::unavailable, "sqlite store: open " + lock_path + ": " + std::strerror(errno)};
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return {errc::unavailable, "sqlite store: " + data_dir + " is in use by another store (" +
                                   lock_path + " is locked)"};
  }
  const std::string path = dir + "herald.db";
  path_ = path;
  auto c = conn::open(path, true, opts_.busy_timeout_ms);
  if (!c) return c.err();
  writer_conn_ = std::move(*c);
  conn& w = *writer_conn_;

  std::string mode;
  status st = w.query(
      "PRAGMA journal_mode=WAL", [](stmt_use&) {}, [&](stmt_use& u) { mode = u.col_text(0); });
  if (!st) return st;
  if (mode != "wal") {
    return {errc::unavailable, "sqlite store: " + path + ": cannot enable WAL (mode " + mode + ")"};
  }
  if (st = w.exec("PRAGMA synchronous=FULL"); !st) return st;
  if (st = w.exec("BEGIN IMMEDIATE"); !st) return st;
  auto old_index =
      w.scalar("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_tenant'",
               [](stmt_use&) {});
  st = old_index ? w.exec(schema_sql) : status(old_index.err());
  if (st && old_index->has_value()) st = w.exec(rebuild_runs_sql);
  if (st) st = w.exec("COMMIT");
  if (!st) {
    w.exec("ROLLBACK");
    return st;
  }

  // Where assignment resumes: the larger of what meta recorded and what the log holds.
  auto get = [&](const char* sql) -> result<std::int64_t> {
    auto v = w.scalar(sql, [](stmt_use&) {});
    if (!v) return v.err();
    return v->value_or(0);
  };
  auto meta_off = get("SELECT value FROM meta WHERE key = 'last_offset'");
  auto max_off = get("SELECT max(off) FROM events");
  auto meta_time = get("SELECT value FROM meta WHERE key = 'last_time_ms'");
  auto max_time = get("SELECT time_ms FROM events ORDER BY off DESC LIMIT 1");
  for (auto* r : {&meta_off, &max_off, &meta_time, &max_time}) {
    if (!*r) return r->err();
  }
  last_offset_ = std::max(*meta_off, *max_off);
  committed_offset_.store(last_offset_);
  // Offsets are dense from 1: fewer rows than the last offset means retention pruned some. Counted
  // once here; prune() sets it when it deletes events.
  auto rows = get("SELECT count(*) FROM events");
  if (!rows) return rows.err();
  pruned_any_.store(*rows < last_offset_);
  last_time_ms_ = std::max(*meta_time, *max_time);

  writer_ = std::thread([this] { writer_loop(); });
  return {};
}

sqlite_store::~sqlite_store() {
  close();
  std::lock_guard lk(pool_mu_);
  pool_.clear();
  writer_conn_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void sqlite_store::close() {
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    stopping_ = true;
  }
  work_cv_.notify_all();
  std::lock_guard lk(close_mu_);
  if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
}

void sqlite_store::set_append_listener(append_listener l) {
  std::lock_guard lk(mu_);
  listener_ = std::move(l);
}

status sqlite_store::submit(std::shared_ptr<job> j) {
  if (!enqueue(j)) return closed_error();
  std::unique_lock lk(mu_);
  done_cv_.wait(lk, [&] { return j->done; });
  return j->st;
}

bool sqlite_store::enqueue(const std::shared_ptr<job>& j) {
  std::lock_guard lk(mu_);
  if (closed_) return false;
  queue_.push_back(j);
  work_cv_.notify_one();
  return true;
}

void sqlite_store::writer_loop() {
  std::vector<std::shared_ptr<job>> jobs;
  for (;;) {
    append_listener listener;
    {
      std::unique_lock lk(mu_);
      work_cv_.wait(lk, [&] { return stopping_ || (!paused_ && !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything queued has been committed
      jobs.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
      listener = listener_;
    }
    run_jobs(jobs);
    // Listener calls come after the commit and before the callers wake, in offset order (jobs
    // run in queue order and offsets are assigned in that order): the hub never sees an event
    // that is not durable, and a publisher is answered only once its events are on their way.
    // The listener runs on this thread, so a writing call from it would wait for itself.
    if (listener) {
      for (auto& j : jobs) {
        if (j->is_append && j->st.ok() && !j->events.empty()) listener(j->events);
      }
    }
    {
      std::lock_guard lk(mu_);
      for (auto& j : jobs) j->done = true;
    }
    done_cv_.notify_all();
    for (auto& j : jobs) {
      if (j->on_done) j->on_done(*j);
    }
    jobs.clear();
  }
}

void sqlite_store::run_jobs(std::vector<std::shared_ptr<job>>& jobs) {
  conn& w = *writer_conn_;
  auto fail_all = [&](const error& e) {
    for (auto& j : jobs) {
      j->st = e;
      j->events.clear();
    }
  };
  // BEGIN and COMMIT prepared once: sqlite3_exec parsed them every transaction (~1,100
  // instructions per event with one event per publish).
  if (status st = w.run("BEGIN IMMEDIATE", [](stmt_use&) {}); !st) {
    fail_all(st.err());
    return;
  }
  const std::int64_t tx_offset = last_offset_;
  const std::int64_t tx_time = last_time_ms_;
  std::function<bool(const event_draft&)> fault;
  {
    std::lock_guard lk(mu_);
    fault = insert_fault_;
  }

  auto abort_tx = [&](const error& e) {
    if (sqlite3_get_autocommit(w.db) == 0) w.exec("ROLLBACK");
    last_offset_ = tx_offset;
    last_time_ms_ = tx_time;
    fail_all(e);
  };

  for (auto& j : jobs) {
    // A job of one statement needs no savepoint: SQLite undoes a failed statement by itself
    // (its statement journal) and the transaction goes on, or it ends the transaction, which
    // autocommit then says. SAVEPOINT and RELEASE cost ~2,900 instructions a job.
    const bool savepoint = !one_statement(*j);
    if (savepoint) {
      if (status st = w.run("SAVEPOINT job", [](stmt_use&) {}); !st) return abort_tx(st.err());
    }
    const std::int64_t job_offset = last_offset_;
    const std::int64_t job_time = last_time_ms_;
    if (j->is_append) {
      if (fault) {
        for (const event_draft& d : j->drafts) {
          if (fault(d)) {
            j->st = status(errc::conflict, "sqlite store: insert failed (injected fault)");
            break;
          }
        }
      }
      if (j->st.ok()) j->st = run_append(*j);
    } else {
      j->st = j->op(w);
    }
    if (!j->st.ok()) {
      // Only this job is undone: its offsets and time go back to the next job, so the
      // committed log has no holes, and its neighbours in the transaction still commit.
      j->events.clear();
      last_offset_ = job_offset;
      last_time_ms_ = job_time;
      if (!savepoint) {
        if (sqlite3_get_autocommit(w.db) != 0) return abort_tx(j->st.err());
        continue;
      }
      if (status st = w.run("ROLLBACK TO job", [](stmt_use&) {}); !st) return abort_tx(st.err());
    }
    if (!savepoint) continue;
    if (status st = w.run("RELEASE job", [](stmt_use&) {}); !st) return abort_tx(st.err());
  }

  if (status st = insert_runs(w, jobs); !st) return abort_tx(st.err());
  if (last_offset_ != tx_offset || last_time_ms_ != tx_time) {
    status st = w.run(
        "INSERT INTO meta(key, value) VALUES('last_offset', ?1), ('last_time_ms', ?2) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [&](stmt_use& u) {
          u.i64(1, last_offset_);
          u.i64(2, last_time_ms_);
        });
    if (!st) return abort_tx(st.err());
  }
  if (status st = w.run("COMMIT", [](stmt_use&) {}); !st) return abort_tx(st.err());
  committed_offset_.store(last_offset_);
  std::lock_guard lk(mu_);
  ++transactions_;
}

// Whether a job is one statement: an append of one INSERT chunk (64, 16, 4 or 1 events) with
// no subject (no states, no first-seen subjects) and no record. Checked before run_append.
bool sqlite_store::one_statement(const job& j) {
  if (!j.is_append || j.with.json || insert_chunk(j.drafts.size()) != j.drafts.size()) {
    return false;
  }
  return std::all_of(j.drafts.begin(), j.drafts.end(),
                     [](const event_draft& d) { return d.subject.empty(); });
}

// The tenant runs of a transaction's committed appends: the events of the jobs that succeeded
// have consecutive offsets (a failed job's offsets went to the next job), cut where the tenant
// changes; usually one row for the whole transaction.
status sqlite_store::insert_runs(conn& w, const std::vector<std::shared_ptr<job>>& jobs) {
  const event* first = nullptr;
  const event* last = nullptr;
  auto flush = [&]() -> status {
    if (first == nullptr) return {};
    return w.run("INSERT INTO tenant_runs(last_off, first_off, tenant) VALUES(?1, ?2, ?3)",
                 [&](stmt_use& u) {
                   u.i64(1, last->offset);
                   u.i64(2, first->offset);
                   u.text(3, first->tenant);
                 });
  };
  for (const auto& j : jobs) {
    if (!j->is_append || !j->st.ok()) continue;
    for (const event_ptr& e : j->events) {
      if (first != nullptr && e->tenant != first->tenant) {
        if (status st = flush(); !st) return st;
        first = nullptr;
      }
      if (first == nullptr) first = e.get();
      last = e.get();
    }
  }
  return flush();
}

status sqlite_store::run_append(job& j) {
  conn& w = *writer_conn_;
  const std::int64_t now = now_ms();
  j.events.reserve(j.drafts.size());
  for (event_draft& d : j.drafts) {
    auto ev = store_detail::event_from_draft(std::move(d));
    ev->offset = ++last_offset_;
    last_time_ms_ = std::max(now, last_time_ms_);
    ev->time_ms = last_time_ms_;
    j.events.push_back(std::move(ev));
  }
  const std::vector<event_ptr>& evs = j.events;
  for (std::size_t i = 0; i < evs.size();) {
    const std::size_t rows = insert_chunk(evs.size() - i);
    const event& head = *evs[i];
    bool shared = rows > 1;
    for (std::size_t r = 1; shared && r < rows; ++r) shared = shares_columns(head, *evs[i + r]);
    auto s = w.insert_events(rows, shared);
    if (!s) return s.err();
    stmt_use u(*s);
    if (shared) {
      u.text(1, head.type);
      u.text(2, head.tenant);
      u.text(3, head.app);
      u.text(4, head.subject);
      u.i64(5, head.time_ms);
      u.i64(6, head.retain ? 1 : 0);
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const event& e = *evs[i + r];
      if (shared) {
        const int p = shared_params + static_cast<int>(r) * own_params;
        u.i64(p + 1, e.offset);
        u.text(p + 2, e.id);
        u.text(p + 3, e.topic);
        u.text(p + 4, e.data);
        continue;
      }
      const int p = static_cast<int>(r) * event_params;
      u.i64(p + 1, e.offset);
      u.text(p + 2, e.id);
      u.text(p + 3, e.topic);
      u.text(p + 4, e.type);
      u.text(p + 5, e.tenant);
      u.text(p + 6, e.app);
      u.text(p + 7, e.subject);
      u.i64(p + 8, e.time_ms);
      u.text(p + 9, e.data);
      u.i64(p + 10, e.retain ? 1 : 0);
    }
    if (int rc = u.step(); rc != SQLITE_DONE) return sql_error(w.db, "insert events", rc);
    i += rows;
  }
  for (const event_ptr& ev : evs) {
    const event& e = *ev;
    if (e.subject.empty()) continue;
    if (e.retain) {
      status st = w.run(
          "INSERT INTO states(tenant, subject, off) VALUES(?1, ?2, ?3) "
          "ON CONFLICT(tenant, subject) DO UPDATE SET off = excluded.off",
          [&](stmt_use& u) {
            u.text(1, e.tenant);
            u.text(2, e.subject);
            u.i64(3, e.offset);
          });
      if (!st) return st;
    }
    status st = w.run(
        "INSERT OR IGNORE INTO subjects_seen(tenant, subject, first_ms, type, app) "
        "VALUES(?1, ?2, ?3, ?4, ?5)",
        [&](stmt_use& u) {
          u.text(1, e.tenant);
          u.text(2, e.subject);
          u.i64(3, e.time_ms);
          u.text(4, e.type);
          u.text(5, e.app);
        });
    if (!st) return st;
  }
  if (!j.with.json) return {};
  const std::string doc = j.with.json(j.events);
  return w.run("INSERT OR REPLACE INTO records(kind, key, value) VALUES(?1, ?2, ?3)",
               [&](stmt_use& u) {
                 u.text(1, j.with.kind);
                 u.text(2, j.with.key);
                 u.text(3, doc);
               });
}

result<std::vector<event_ptr>> sqlite_store::append(std::vector<event_draft> batch,
                                                    append_record with) {
  if (status st = store_detail::check_batch(batch); !st) return st.err();
  if (batch.empty()) {
    std::lock_guard lk(mu_);
    if (closed_) return closed_error();
    return std::vector<event_ptr>{};
  }
  auto j = job::append_of(std::move(batch), std::move(with));
  if (status st = submit(j); !st) return st.err();
  return std::move(j->events);
}

void sqlite_store::append_async(std::vector<event_draft> batch, append_record with,
                                std::function<void(result<std::vector<event_ptr>>)> done) {
  if (status st = store_detail::check_batch(batch); !st) return done(st.err());
  if (batch.empty()) return done(append(std::move(batch), std::move(with)));
  auto j = job::append_of(std::move(batch), std::move(with));
  j->on_done = [done = std::move(done)](job& d) {
    if (d.st.ok()) return done(std::move(d.events));
    done(d.st.err());
  };
  if (!enqueue(j)) {
    j->st = closed_error();
    j->on_done(*j);
  }
}

// ---- reads ----

result<std::unique_ptr<sqlite_store::conn>> sqlite_store::acquire_reader() {
  {
    std::lock_guard lk(pool_mu_);
    if (!pool_.empty()) {
      auto c = std::move(pool_.back());
      pool_.pop_back();
      return c;
    }
  }
  auto c = conn::open(path_, false, opts_.busy_timeout_ms);
  if (!c) return c.err();
  if (status st = (*c)->exec("PRAGMA query_only=1"); !st) return st.err();
  return std::move(*c);
}

void sqlite_store::release_reader(std::unique_ptr<conn> c) {
  std::lock_guard lk(pool_mu_);
  if (pool_.size() < opts_.read_pool_max) pool_.push_back(std::move(c));
}

// Borrows a read connection for one call and gives it back to the pool.
class sqlite_store::reader_lease {
 public:
  explicit reader_lease(sqlite_store& s) : s_(s) {
    auto c = s.acquire_reader();
    if (c) {
      c_ = std::move(*c);
    } else {
      err_ = std::move(c).err();
    }
  }
  ~reader_lease() {
    if (c_) s_.release_reader(std::move(c_));
  }
  reader_lease(const reader_lease&) = delete;
  reader_lease& operator=(const reader_lease&) = delete;

  bool ok() const noexcept { return c_ != nullptr; }
  const error& err() const noexcept { return err_; }
  conn& operator*() noexcept { return *c_; }

 private:
  sqlite_store& s_;
  std::unique_ptr<conn> c_;
  error err_;
};

// The first offset whose event's time is at or after `t_ms`, none when there is none. Time
// never decreases along offsets (append assigns both), and pruning only removes rows, so the
// rows stay sorted by time: a bisection over offsets, each step one primary-key seek (the row
// at or after an offset: pruning leaves holes where retained states stay behind).
result<std::optional<std::int64_t>> sqlite_store::first_offset_at(conn& c, std::int64_t t_ms) {
  struct row {
    std::int64_t off = 0, time_ms = 0;
  };
  auto at_or_after = [&](std::int64_t off) -> result<std::optional<row>> {
    std::optional<row> r;
    status st = c.query(
        "SELECT off, time_ms FROM events WHERE off >= ?1 ORDER BY off LIMIT 1",
        [&](stmt_use& u) { u.i64(1, off); },
        [&](stmt_use& u) {
          r = row{u.col_i64(0), u.col_i64(1)};
        });
    if (!st) return st.err();
    return r;
  };
  auto last = c.scalar("SELECT max(off) FROM events", [](stmt_use&) {});
  if (!last) return last.err();
  if (!*last) return std::optional<std::int64_t>{};
  auto hi_row = at_or_after(**last);
  if (!hi_row) return hi_row.err();
  if (!*hi_row || (*hi_row)->time_ms < t_ms) return std::optional<std::int64_t>{};
  // Invariant: the row at or after `hi` is at or after t_ms; every row before `lo` is before it.
  std::int64_t lo = 0, hi = **last;
  std::int64_t found = (*hi_row)->off;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    auto r = at_or_after(mid);
    if (!r) return r.err();
    if ((*r)->time_ms >= t_ms) {  // exists: a row at or after mid <= hi exists
      hi = mid;
      found = (*r)->off;
    } else {
      lo = (*r)->off + 1;
    }
  }
  return std::optional<std::int64_t>{found};
}

result<std::vector<event_ptr>> sqlite_store::read(const log_query& q) {
  std::vector<event_ptr> out;
  if (q.limit == 0) return out;
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;

  // Time never decreases along offsets, so time bounds become offset bounds (time index).
  std::int64_t after = q.after_offset;
  std::optional<std::int64_t> before_off;
  if (q.since_ms) {
    auto m = first_offset_at(c, *q.since_ms);
    if (!m) return m.err();
    if (!*m) return out;
    after = std::max(after, **m - 1);
  }
  if (q.until_ms) {
    auto m = first_offset_at(c, *q.until_ms);
    if (!m) return m.err();
    before_off = *m;
  }

  // By tenant, unless a subject's index serves the read: through the tenants' runs after
  // `after`, then each run's rows by offset (the tenant test on the rows guards the runs). One
  // tenant's runs come in offset order; several tenants' runs interleave, so those rows are
  // sorted (as the per-tenant index searches of before were).
  const bool by_runs = !q.tenants.empty() && !(q.subject && !q.subject->empty());
  std::string sql = "SELECT " HERALD_EVENT_COLS;
  if (by_runs) {
    sql += q.tenants.size() == 1 ? " FROM tenant_runs r JOIN events e ON e.off >= r.first_off AND "
                                   "e.off <= r.last_off WHERE r.tenant = ?5"
                                 : " FROM tenant_runs r JOIN events e ON e.off >= r.first_off AND "
                                   "e.off <= r.last_off WHERE r.tenant IN "
                                   "(SELECT value FROM json_each(?5))";
    sql += " AND r.last_off > ?1 AND e.off > ?1";
  } else {
    sql += " FROM events e WHERE e.off > ?1";
  }
  if (before_off) sql += " AND e.off < ?2";
  if (before_off && by_runs) {
    // The runs stop at the one holding (or first after) the bound: for one tenant an index
    // bound (a seek), for several a test per run.
    sql += q.tenants.size() == 1 ? " AND r.last_off <= (SELECT coalesce(min(last_off), ?2) FROM "
                                   "tenant_runs WHERE tenant = ?5 AND last_off >= ?2)"
                                 : " AND r.first_off < ?2";
  }
  if (q.since_ms) sql += " AND e.time_ms >= ?3";
  if (q.until_ms) sql += " AND e.time_ms < ?4";
  std::string tenants_json;
  if (q.tenants.size() == 1) {
    sql += " AND e.tenant = ?5";
  } else if (q.tenants.size() > 1) {
    sql += " AND e.tenant IN (SELECT value FROM json_each(?5))";
    tenants_json = json_string_array(q.tenants);
  }
  if (q.subject)
    sql += q.subject->empty() ? " AND e.subject = ?6" : " AND e.subject = ?6 AND e.subject <> ''";
  sql += by_runs && q.tenants.size() == 1 ? " ORDER BY r.last_off, e.off LIMIT ?7"
                                          : " ORDER BY e.off LIMIT ?7";

  const std::int64_t limit =
      q.limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
          ? std::numeric_limits<std::int64_t>::max()
          : static_cast<std::int64_t>(q.limit);
  status st = c.query(
      sql,
      [&](stmt_use& u) {
        u.i64(1, after);
        if (before_off) u.i64(2, *before_off);
        if (q.since_ms) u.i64(3, *q.since_ms);
        if (q.until_ms) u.i64(4, *q.until_ms);
        if (q.tenants.size() == 1) u.text(5, q.tenants.front());
        if (q.tenants.size() > 1) u.text(5, tenants_json);
        if (q.subject) u.text(6, *q.subject);
        u.i64(7, limit);
      },
      [&](stmt_use& u) { out.push_back(row_event(u)); });
  if (!st) return st.err();
  return out;
}

result<store::event_lookup> sqlite_store::find_event(std::string_view id) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  event_lookup out;
  // A scan of the log: an index on the ids (random, so every insert lands on a random page)
  // cost ~15 us of CPU per appended event (200,000 appends in batches of 64: 4.5 -> 19.6 us),
  // every publish paying for a lookup that only `herald why` makes. Ids that carry their
  // offset under a store key would make this one seek at no cost to appends: not done yet.
  status st = c.query(
      "SELECT " HERALD_EVENT_COLS " FROM events e WHERE e.id = ?1 LIMIT 1",
      [&](stmt_use& u) { u.text(1, id); }, [&](stmt_use& u) { out.ev = row_event(u); });
  if (!st) return st.err();
  out.pruned_any = pruned_any_.load();
  return out;
}

result<std::optional<event_ptr>> sqlite_store::state(std::string_view tenant,
                                                     std::string_view subject) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  std::optional<event_ptr> out;
  status st = c.query(
      "SELECT " HERALD_EVENT_COLS
      " FROM states s JOIN events e ON e.off = s.off "
      "WHERE s.tenant = ?1 AND s.subject = ?2",
      [&](stmt_use& u) {
        u.text(1, tenant);
        u.text(2, subject);
      },
      [&](stmt_use& u) { out = row_event(u); });
  if (!st) return st.err();
  return out;
}

result<std::vector<event_ptr>> sqlite_store::states(const std::vector<std::string>& tenants) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  std::string sql = "SELECT " HERALD_EVENT_COLS " FROM states s JOIN events e ON e.off = s.off";
  std::string tenants_json;
  if (tenants.size() == 1) {
    sql += " WHERE s.tenant = ?1";
  } else if (tenants.size() > 1) {
    sql += " WHERE s.tenant IN (SELECT value FROM json_each(?1))";
    tenants_json = json_string_array(tenants);
  }
  sql += " ORDER BY s.off";
  std::vector<event_ptr> out;
  status st = c.query(
      sql,
      [&](stmt_use& u) {
        if (tenants.size() == 1) u.text(1, tenants.front());
        if (tenants.size() > 1) u.text(1, tenants_json);
      },
      [&](stmt_use& u) { out.push_back(row_event(u)); });
  if (!st) return st.err();
  return out;
}

result<bool> sqlite_store::subject_seen(std::string_view tenant, std::string_view subject) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  auto v =
      c.scalar("SELECT 1 FROM subjects_seen WHERE tenant = ?1 AND subject = ?2", [&](stmt_use& u) {
        u.text(1, tenant);
        u.text(2, subject);
      });
  if (!v) return v.err();
  return v->has_value();
}

result<std::optional<std::string>> sqlite_store::get_record(std::string_view kind,
                                                            std::string_view key) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  std::optional<std::string> out;
  status st = c.query(
      "SELECT value FROM records WHERE kind = ?1 AND key = ?2",
      [&](stmt_use& u) {
        u.text(1, kind);
        u.text(2, key);
      },
      [&](stmt_use& u) { out = u.col_text(0); });
  if (!st) return st.err();
  return out;
}

result<std::vector<stored_record>> sqlite_store::load_records(std::string_view kind) {
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  std::vector<stored_record> out;
  status st = c.query(
      "SELECT key, value FROM records WHERE kind = ?1 ORDER BY key",
      [&](stmt_use& u) { u.text(1, kind); },
      [&](stmt_use& u) {
        out.push_back(stored_record{u.col_text(0), u.col_text(1)});
      });
  if (!st) return st.err();
  return out;
}

status sqlite_store::ping() {
  {
    std::lock_guard lk(mu_);
    if (closed_) return closed_error();
  }
  reader_lease lease(*this);
  if (!lease.ok()) return lease.err();
  conn& c = *lease;
  auto v = c.scalar("SELECT 1", [](stmt_use&) {});
  if (!v) return v.err();
  return {};
}

// ---- other writes (through the writer, group-committed with the appends) ----

status sqlite_store::put_record(std::string_view kind, std::string_view key,
                                std::string_view json) {
  auto j = std::make_shared<job>();
  j->op = [&](conn& w) {
    return w.run("INSERT OR REPLACE INTO records(kind, key, value) VALUES(?1, ?2, ?3)",
                 [&](stmt_use& u) {
                   u.text(1, kind);
                   u.text(2, key);
                   u.text(3, json);
                 });
  };
  return submit(std::move(j));
}

status sqlite_store::erase_record(std::string_view kind, std::string_view key) {
  auto j = std::make_shared<job>();
  j->op = [&](conn& w) {
    return w.run("DELETE FROM records WHERE kind = ?1 AND key = ?2", [&](stmt_use& u) {
      u.text(1, kind);
      u.text(2, key);
    });
  };
  return submit(std::move(j));
}

status sqlite_store::write_records(std::string_view kind, std::vector<record_write> writes) {
  auto j = std::make_shared<job>();
  j->op = [&](conn& w) -> status {
    for (const record_write& r : writes) {
      status st = r.json
                      ? w.run(
                            "INSERT OR REPLACE INTO records(kind, key, value) "
                            "VALUES(?1, ?2, ?3)",
                            [&](stmt_use& u) {
                              u.text(1, kind);
                              u.text(2, r.key);
                              u.text(3, *r.json);
                            })
                      : w.run("DELETE FROM records WHERE kind = ?1 AND key = ?2", [&](stmt_use& u) {
                          u.text(1, kind);
                          u.text(2, r.key);
                        });
      if (!st) return st;
    }
    return {};
  };
  return submit(std::move(j));
}

result<bool> sqlite_store::claim_once(std::string_view key, std::int64_t expires_ms) {
  bool claimed = false;
  auto j = std::make_shared<job>();
  j->op = [&](conn& w) {
    status st =
        w.run("INSERT OR IGNORE INTO once(key, expires_ms) VALUES(?1, ?2)", [&](stmt_use& u) {
          u.text(1, key);
          u.i64(2, expires_ms);
        });
    if (st) claimed = sqlite3_changes(w.db) == 1;
    return st;
  };
  if (status st = submit(std::move(j)); !st) return st.err();
  return claimed;
}

status sqlite_store::prune(std::int64_t before_ms) {
  // Deletes in chunks of opts_.prune_chunk rows (by offset), one write job each, so appends
  // queued meanwhile are not held behind one long transaction.
  std::optional<std::int64_t> end;  // first offset to keep, fixed by the first job
  std::int64_t cursor = 0;          // offsets <= cursor are done
  const auto chunk = static_cast<std::int64_t>(std::max<std::size_t>(opts_.prune_chunk, 1));
  for (bool more = true; more;) {
    auto j = std::make_shared<job>();
    j->op = [&](conn& w) -> status {
      if (!end) {
        auto first_kept = first_offset_at(w, before_ms);
        if (!first_kept) return first_kept.err();
        auto last = w.scalar("SELECT max(off) FROM events", [](stmt_use&) {});
        if (!last) return last.err();
        end = first_kept->value_or(last->value_or(0) + 1);
        auto first = w.scalar("SELECT min(off) FROM events", [](stmt_use&) {});
        if (!first) return first.err();
        cursor = first->value_or(1) - 1;
      }
      auto upto = w.scalar(
          "SELECT max(off) FROM (SELECT off FROM events WHERE off > ?1 AND off < ?2 "
          "ORDER BY off LIMIT ?3)",
          [&](stmt_use& u) {
            u.i64(1, cursor);
            u.i64(2, *end);
            u.i64(3, chunk);
          });
      if (!upto) return upto.err();
      if (!*upto) {
        more = false;
        return {};
      }
      status st = w.run(
          "DELETE FROM events WHERE off > ?1 AND off <= ?2 AND off NOT IN (SELECT off FROM states)",
          [&](stmt_use& u) {
            u.i64(1, cursor);
            u.i64(2, **upto);
          });
      if (st && sqlite3_changes(w.db) > 0) pruned_any_.store(true);
      // The tenant runs that end in this chunk and kept no event (a retained state's event
      // keeps its run).
      if (st) {
        st = w.run(
            "DELETE FROM tenant_runs WHERE last_off > ?1 AND last_off <= ?2 AND NOT EXISTS "
            "(SELECT 1 FROM events e WHERE e.off >= tenant_runs.first_off AND "
            "e.off <= tenant_runs.last_off)",
            [&](stmt_use& u) {
              u.i64(1, cursor);
              u.i64(2, **upto);
            });
      }
      if (st) cursor = **upto;
      return st;
    };
    if (status st = submit(std::move(j)); !st) return st;
  }
  auto j = std::make_shared<job>();
  const std::int64_t now = now_ms();
  j->op = [&](conn& w) {
    return w.run("DELETE FROM once WHERE expires_ms < ?1", [&](stmt_use& u) { u.i64(1, now); });
  };
  return submit(std::move(j));
}

result<std::size_t> sqlite_store::prune_records(std::string_view kind, std::int64_t now_ms) {
  // By the expression index records_expiry: the expired rows only, never a scan of the kind.
  std::size_t gone = 0;
  auto j = std::make_shared<job>();
  j->op = [&](conn& w) {
    status st = w.run(
        "DELETE FROM records WHERE kind = ?1 AND "
        "json_extract(value, '$.expires_ms') BETWEEN 1 AND ?2",
        [&](stmt_use& u) {
          u.text(1, kind);
          u.i64(2, now_ms);
        });
    if (st) gone = static_cast<std::size_t>(sqlite3_changes(w.db));
    return st;
  };
  if (status st = submit(std::move(j)); !st) return st.err();
  return gone;
}

// ---- test hooks ----

std::uint64_t sqlite_store::transactions_for_test() const {
  std::lock_guard lk(mu_);
  return transactions_;
}

void sqlite_store::pause_writer_for_test(bool paused) {
  {
    std::lock_guard lk(mu_);
    paused_ = paused;
  }
  work_cv_.notify_all();
}

std::size_t sqlite_store::queued_for_test() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

void sqlite_store::set_insert_fault_for_test(std::function<bool(const event_draft&)> f) {
  std::lock_guard lk(mu_);
  insert_fault_ = std::move(f);
}

}  // namespace herald
