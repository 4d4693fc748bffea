// What the tracker dialect's routes and sockets share (tracker.md §2, §3, §5): the services, its
// limits and render slot, the per-login failure limiter, the registry of open sockets (by
// tracking id, for close requests; by user, for logouts and rights changes) and the login-hash
// helpers both sides use. Built once at install; lives as long as the server.
// Thread-safe: immutable after install but for the registry and the limiter, which lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "api/services.h"
#include "core/live.h"
#include "core/rate_limit.h"
#include "dialect/tracker/tracker_codec.h"
#include "dialect/tracker/tracker_limits.h"

namespace herald {

class tracker_socket;

// Open tracker sockets by tracking id and by bound user. Thread-safe.
class tracker_registry {
 public:
  // Claims `uuid` for a socket; false when an open socket holds it.
  bool claim(const std::string& uuid, sink_ref ref);
  void bind_user(const std::string& uuid, const std::string& user_id);
  void release(const std::string& uuid);
  std::optional<sink_ref> find(const std::string& uuid) const;
  std::vector<sink_ref> of_user(const std::string& user_id) const;

 private:
  struct entry {
    sink_ref ref;
    std::string user_id;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, entry> by_uuid_;
};

struct tracker_context {
  tracker_context(services& s, const tracker_limits& l, std::size_t slot)
      : svc(s),
        cfg(l),
        render_slot(slot),
        login_failures(static_cast<double>(l.login_failures_per_minute) / 60.0,
                       static_cast<double>(l.login_failures_per_minute)) {}

  services& svc;
  live<tracker_limits> cfg;       // SIGHUP publishes its reloadable keys' new values
  const std::size_t render_slot;  // event::rendered() slot: a state's data length in UTF-16 units
  rate_limiter login_failures;    // per login (§2: 105)
  tracker_registry sockets;

  // Runs `fn` with the tracker socket `ref` on its shard, if it is still open.
  void on_socket(sink_ref ref, std::function<void(tracker_socket&)> fn);
};

namespace tracker {

// The login session id a hash names: only its SHA-256 is kept.
std::string login_id_of(std::string_view hash);

// A hash's live login session and its user, or the code refusing it (3 malformed, 4 unknown,
// ended, expired, or its user gone or blocked). In memory: any thread.
struct live_login {
  login_record login;
  user_record user;
};
std::variant<live_login, int> check_hash(const services& s, std::string_view hash,
                                         std::int64_t now_ms);

// Marks a hash used: its expiry moves to now + hash_ttl_s, in the directory and the store, at
// most once a minute. Blocking (a store write): never on a shard.
void touch(tracker_context& cx, const login_record& l, std::int64_t now_ms);
// Whether touch() would write now (so a shard offloads only when it must).
bool touch_due(const tracker_context& cx, const login_record& l, std::int64_t now_ms);

// The status of tracker `id` for `user` (§4, first that applies).
tstatus status_of(const directory& d, const user_record& user, std::int64_t id);
// The source_id of a tracker record's attrs (default: the id).
std::int64_t source_id_of(const subject_record& r);

// The socket principal of a tracker user: their tenant and id, the subscribe scope; the
// allow-list is the dialect's to apply (statuses, rights changes), not the hub's.
principal principal_of(const user_record& u);

}  // namespace tracker
}  // namespace herald
