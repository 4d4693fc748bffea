// Registry records as JSON: the stored form (with hashes) and the admin API's form (never a
// secret or a hash). load_directory() fills the directory from the store at start.
// Thread-safe: pure functions, plus load_directory (start-up only).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "core/directory.h"
#include "core/session.h"
#include "store/store.h"

namespace herald {

// Stored forms.
boost::json::object stored_json(const tenant_record& r);
boost::json::object stored_json(const app_record& r);
boost::json::object stored_json(const user_record& r);
boost::json::object stored_json(const login_record& r);
boost::json::object stored_json(const subject_record& r);
boost::json::object stored_json(const jwt_record& r);

// Admin API forms.
boost::json::object admin_json(const tenant_record& r);
boost::json::object admin_json(const app_record& r);
boost::json::object admin_json(const user_record& r);
boost::json::object admin_json(const subject_record& r);

// Writes a record to the store (kind from its type); error when the store fails.
status persist(store& st, const tenant_record& r);
status persist(store& st, const app_record& r);
status persist(store& st, const user_record& r);
status persist(store& st, const login_record& r);
status persist(store& st, const subject_record& r);
status persist(store& st, const jwt_record& r);
// The subject's record as an append's companion: stored in the same transaction as the events
// its change emits (lifecycle events, design.md §4).
append_record subject_append_record(const subject_record& r);
// The key of subject (tenant, id)'s record (kind "subject").
std::string subject_record_key(std::string_view tenant, std::string_view id);

// Sessions kept across a drain (kind "session").
boost::json::object stored_json(const session_state& s);
std::optional<session_state> parse_session_state(const boost::json::object& o);
// Drain: stores every session, erasing the records of sessions that no longer exist. Start-up:
// loads them (the records stay: crash-safe records are kept current by the hub while it runs).
status persist_sessions(store& st, const std::vector<session_state>& sessions);
// The hub's crash-safe session records (hub_options::persist): writes queue here and one
// thread stores everything queued in one write_records() call (one commit, however many
// subscribes arrived meanwhile), then runs their callbacks. stop() writes what is queued and
// joins; the destructor stops. `on_error` hears a failed write (the callbacks run anyway).
// `node` (cluster mode: core.node_id; else empty) is written into each record as `node`, the
// node holding the session (docs/cluster.md, "A dead node's sessions").
class session_record_writer {
 public:
  session_record_writer(store& st, std::function<void(const std::string&)> on_error,
                        std::string node = {});
  ~session_record_writer();
  session_record_writer(const session_record_writer&) = delete;
  session_record_writer& operator=(const session_record_writer&) = delete;
  // Thread-safe. state nullopt: erase the record. `done` runs on the writer thread.
  void write(const std::string& id, std::optional<session_state> state, std::function<void()> done);
  void stop();

 private:
  struct item {
    std::string id;
    std::optional<session_state> state;
    std::function<void()> done;
  };
  void run();
  store& st_;
  std::function<void(const std::string&)> on_error_;
  std::string node_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};
std::vector<session_state> load_sessions(store& st);

// The record kinds the directory holds, in the order they load (a tenant before its apps).
inline constexpr std::string_view directory_kinds[] = {"tenant", "app",     "user",
                                                       "login",  "subject", "jwt"};
// Puts one stored record of `kind` into `dir`; false for a kind the directory does not hold.
bool apply_record(directory& dir, std::string_view kind, const boost::json::object& o);
// Loads every record kind into `dir`. Throws on a store failure (start-up).
void load_directory(store& st, directory& dir);

}  // namespace herald
