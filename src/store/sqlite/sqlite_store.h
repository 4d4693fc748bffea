// The embedded store back end: one SQLite database `<data_dir>/herald.db` in WAL mode with
// synchronous=FULL. Writes (appends, records, the replay guard, pruning) are queued to ONE
// writer thread that drains everything queued into one transaction (group commit: a burst of
// concurrent appends costs one fsync); each queued job runs in its own SAVEPOINT (or is one
// statement, which SQLite undoes alone) so a failing batch does not fail its neighbours. After
// COMMIT the writer calls the append listener once per batch, in offset order, then wakes the
// callers. Reads use a small pool of read connections and never wait for the writer's fsync.
// Thread-safe: every member may be called from any thread except the listener, which runs on
// the writer thread and must neither throw nor call a writing member (append, put_record,
// erase_record, claim_once, prune): those would wait on the writer itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herald {

struct sqlite_options {
  int busy_timeout_ms = 5000;
  std::size_t read_pool_max = 8;   // idle read connections kept (more open on demand)
  std::size_t prune_chunk = 5000;  // events prune() deletes per writer job, at most
};

class sqlite_store final : public store {
 public:
  // Opens (creating when missing) `<data_dir>/herald.db`; data_dir must exist. One process
  // (one sqlite_store) owns a data_dir at a time: `<data_dir>/herald.lock` is flock()ed, and a
  // second open fails with unavailable.
  static result<std::unique_ptr<sqlite_store>> open(const std::string& data_dir,
                                                    sqlite_options opts = {});
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  void set_append_listener(append_listener l) override;
  using store::append;
  result<std::vector<event_ptr>> append(std::vector<event_draft> batch,
                                        append_record with) override;
  bool appends_async() const override { return true; }
  void append_async(std::vector<event_draft> batch, append_record with,
                    std::function<void(result<std::vector<event_ptr>>)> done) override;
  result<std::vector<event_ptr>> read(const log_query& q) override;
  result<std::optional<event_ptr>> state(std::string_view tenant,
                                         std::string_view subject) override;
  result<std::vector<event_ptr>> states(const std::vector<std::string>& tenants) override;
  result<bool> subject_seen(std::string_view tenant, std::string_view subject) override;
  status put_record(std::string_view kind, std::string_view key, std::string_view json) override;
  status erase_record(std::string_view kind, std::string_view key) override;
  result<std::optional<std::string>> get_record(std::string_view kind,
                                                std::string_view key) override;
  result<std::vector<stored_record>> load_records(std::string_view kind) override;
  status write_records(std::string_view kind, std::vector<record_write> writes) override;
  result<bool> claim_once(std::string_view key, std::int64_t expires_ms) override;
  status prune(std::int64_t before_ms) override;
  result<std::size_t> prune_records(std::string_view kind, std::int64_t now_ms) override;
  status ping() override;
  void close() override;
  result<event_lookup> find_event(std::string_view id) override;
  std::int64_t last_offset() const override { return committed_offset_.load(); }
  const char* name() const noexcept override { return "sqlite"; }

  // Test hooks. Write transactions committed so far (group commit: fewer than the appends).
  std::uint64_t transactions_for_test() const;
  // While paused the writer leaves jobs queued (so a test can line up a burst).
  void pause_writer_for_test(bool paused);
  // Jobs queued and not yet taken by the writer.
  std::size_t queued_for_test() const;
  // When set, the writer fails the insert of every draft for which it returns true, as if
  // the database had rejected it (exercises the per-batch savepoint).
  void set_insert_fault_for_test(std::function<bool(const event_draft&)> f);

 private:
  // A connection and its cached statements, a queued write, a borrowed read connection.
  struct conn;
  struct job;
  class reader_lease;

  explicit sqlite_store(sqlite_options opts);
  status start(const std::string& data_dir);
  void writer_loop();
  void run_jobs(std::vector<std::shared_ptr<job>>& jobs);
  status run_append(job& j);
  static bool one_statement(const job& j);
  static status insert_runs(conn& w, const std::vector<std::shared_ptr<job>>& jobs);
  status submit(std::shared_ptr<job> j);  // queue and wait until done
  // Queue without waiting: the writer calls j->on_done once the job is done. false: closed.
  bool enqueue(const std::shared_ptr<job>& j);
  static result<std::optional<std::int64_t>> first_offset_at(conn& c, std::int64_t t_ms);

  // The read pool.
  result<std::unique_ptr<conn>> acquire_reader();
  void release_reader(std::unique_ptr<conn> c);

  sqlite_options opts_;
  std::string path_;
  int lock_fd_ = -1;                   // holds the flock on <data_dir>/herald.lock
  std::mutex close_mu_;                // one close() joins the writer
  std::unique_ptr<conn> writer_conn_;  // used by the writer thread only (and start())

  mutable std::mutex mu_;  // guards the queue and the flags below
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::shared_ptr<job>> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  bool paused_ = false;
  std::uint64_t transactions_ = 0;
  append_listener listener_;
  std::function<bool(const event_draft&)> insert_fault_;
  std::thread writer_;

  // Writer-thread state: the last offset and time assigned (persisted in the meta table).
  std::int64_t last_offset_ = 0;
  std::int64_t last_time_ms_ = 0;
  std::atomic<std::int64_t> committed_offset_{0};  // last_offset_ as of the last COMMIT
  std::atomic<bool> pruned_any_{false};            // retention has deleted an event (find_event)

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<conn>> pool_;
};

}  // namespace herald
