// The registry records every path consults (tenants, apps, users, login sessions, subjects,
// JWT credentials), held in memory. Persistence is the caller's: api/ writes a record to the
// store, then here; app/ loads the store into it at start. Thread-safe: one shared_mutex,
// read-mostly; lookups return copies so no reference outlives the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/principal.h"

namespace herald {

struct tenant_record {
  std::string id;
  std::string parent;  // "" for a root tenant
  std::int64_t created_ms = 0;
};

struct app_record {
  std::string id, tenant, name;
  role app_role = role::app;
  std::uint32_t scopes = 0;
  std::string client_id;
  std::string secret_hash;   // sha256 hex of the client secret
  std::string api_key_hash;  // sha256 hex of the API key
  std::string api_key_format = "native";
  std::int64_t created_ms = 0;
};

struct user_record {
  std::string id, tenant, login, name;
  std::string password_hash;  // "" when none is set
  bool blocked = false;
  std::string extension_id, extension_number;
  bool admin = false;
  std::string time_zone = "UTC";
  std::optional<std::vector<std::string>> trackers;
  std::int64_t created_ms = 0;
};

struct login_record {
  std::string id, tenant, user_id, app_id, dialect;
  std::int64_t created_ms = 0, expires_ms = 0;
  bool ended = false;
  std::int64_t counter = 0;  // a dialect's per-login counter (RingCentral: highest sequence)
};

struct subject_record {
  std::string tenant, id, kind, label;
  std::string attrs = "{}";  // JSON object text
  bool blocked = false, corrupted = false;
  std::int64_t created_ms = 0;
};

struct jwt_record {
  std::string jti, user_id, client_id;
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> expires_ms;
};

class directory final : public subject_lookup {
 public:
  // Tenants.
  bool add_tenant(const tenant_record& t);  // false when the id exists
  std::optional<tenant_record> tenant(std::string_view id) const;
  bool tenant_exists(std::string_view id) const;
  // True when `t` is `root` or one of its descendants.
  bool in_subtree(std::string_view t, std::string_view root) const;
  std::vector<tenant_record> tenants() const;

  // Apps.
  void put_app(const app_record& a);
  std::optional<app_record> app(std::string_view id) const;
  std::optional<app_record> app_by_client_id(std::string_view client_id) const;
  std::optional<app_record> app_by_key_hash(std::string_view key_hash) const;
  bool remove_app(std::string_view id);
  std::vector<app_record> apps(std::string_view tenant_or_empty) const;

  // Users. put_user fails (false) when login or extension_id is taken in the tenant by another.
  bool user_conflicts(const user_record& u) const;
  void put_user(const user_record& u);
  std::optional<user_record> user(std::string_view id) const;
  std::vector<user_record> users_by_login(std::string_view login) const;
  bool remove_user(std::string_view id);
  std::vector<user_record> users(std::string_view tenant_or_empty) const;

  // Login sessions.
  void put_login(const login_record& l);
  std::optional<login_record> login(std::string_view id) const;
  // Read-modify-write of login `id` under the lock (e.g. raising `counter`, ending it); the
  // updated record, or nullopt when there is no such login.
  std::optional<login_record> update_login(std::string_view id,
                                           const std::function<void(login_record&)>& fn);
  // Forgets the login sessions whose expiry (non-zero) is at or before `now_ms`, as the store's
  // pruning drops their records: a token of one is refused either way. Returns how many.
  std::size_t drop_expired_logins(std::int64_t now_ms);
  // How many of the user's login sessions are live (not ended, not expired at `now_ms`).
  std::size_t live_logins_of(std::string_view user_id, std::int64_t now_ms) const;
  // Ends every open login session matching (user_id or app_id); returns their ids.
  std::vector<std::string> end_logins_of(std::string_view user_id, std::string_view app_id);

  // Subjects (registered by an admin PUT).
  void put_subject(const subject_record& s);
  // Takes back a put_subject whose store write failed (a subject that was not there before).
  void remove_subject(std::string_view tenant, std::string_view id);
  std::optional<subject_record> subject(std::string_view tenant, std::string_view id) const;
  std::vector<subject_record> subjects_with_id(std::string_view id) const;
  std::vector<subject_record> subjects(std::string_view tenant, std::string_view kind) const;
  std::optional<subject_flags> flags(std::string_view tenant,
                                     std::string_view subject) const override;

  // Bumped by every change that can alter what a principal may see (subject flags, users):
  // a session's log anchor is only replayed under the epoch it was taken in.
  std::uint64_t policy_epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }

  // JWT credentials.
  void put_jwt(const jwt_record& j);
  std::optional<jwt_record> jwt(std::string_view jti) const;
  std::vector<jwt_record> jwts_of(std::string_view user_id) const;
  bool remove_jwt(std::string_view jti);

 private:
  static std::string key2(std::string_view a, std::string_view b);
  void bump() noexcept { epoch_.fetch_add(1, std::memory_order_acq_rel); }
  std::atomic<std::uint64_t> epoch_{0};
  mutable std::shared_mutex mu_;
  std::map<std::string, tenant_record, std::less<>> tenants_;
  std::map<std::string, app_record, std::less<>> apps_;
  std::unordered_map<std::string, std::string> app_by_client_;
  std::unordered_map<std::string, std::string> app_by_key_;
  std::map<std::string, user_record, std::less<>> users_;
  std::map<std::string, login_record, std::less<>> logins_;
  std::map<std::string, subject_record, std::less<>> subjects_;  // key2(tenant, id)
  std::map<std::string, jwt_record, std::less<>> jwts_;
};

}  // namespace herald
