// Everything a route or a dialect needs, built once by app/ and shared: configuration, the
// directory, the store, the hub, the token signer, connection counting, validators.
// Thread-safe: the members are thread-safe or immutable after start.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/auth_policy.h"
#include "api/limits.h"
#include "auth/tokens.h"
#include "core/directory.h"
#include "core/hub.h"
#include "core/live.h"
#include "core/rate_limit.h"
#include "store/store.h"

namespace herald {

class cluster_link;

// Counts open sockets per app, tenant and login session (design.md §4). Thread-safe.
class connection_counter {
 public:
  // Takes a slot, or fails with too_many_requests naming the limit that was hit.
  status acquire(const principal& who, std::size_t per_session_limit, const core_limits& l);
  void release(const principal& who);

 private:
  std::mutex mu_;
  std::map<std::string, std::size_t, std::less<>> apps_, tenants_, logins_;
};

// The address part of "ip:port" (the key of per-address limits).
std::string remote_address(const std::string& remote);

// A publish validator a dialect registers for the types it reserves (design.md §3).
using publish_validator = std::function<status(const event_draft&)>;

// A dialect's rules for the registered subjects of one kind (design.md §4), run by the admin
// subject calls on the blocking pool. `before` is the stored record (null for a new one).
struct subject_kind_rules {
  // Checks and completes `after`, the record about to be stored (its id, its attrs); an error
  // refuses the call with its code and message.
  std::function<status(const subject_record* before, subject_record& after)> check;
  // Events appended with the change, after it is stored and before the reply (lifecycle).
  std::function<std::vector<event_draft>(const subject_record* before, const subject_record& after)>
      events;
  // The types `events` emits. Cluster mode: a node that receives one re-reads the subject's
  // record (committed with it) before delivering it, so a block made on another node holds
  // for every event after it here too.
  std::vector<std::string> event_types{};
};

struct services {
  core_limits core;
  // The native limits in force: SIGHUP publishes new values of its reloadable keys.
  live<native_limits> native;
  directory& dir;
  store& st;
  hub& h;
  token_signer& signer;
  std::string admin_key;
  std::string token_key;   // raw bytes: signs tokens and JWT credentials
  std::string public_url;  // "http://HOST:PORT" as the listener is reached; for ws `uri`
  connection_counter connections{};
  std::vector<publish_validator> validators{};
  std::map<std::string, subject_kind_rules, std::less<>> subject_kinds{};  // by kind
  rate_limiter publish_limiter{static_cast<double>(native->publish_rate),
                               static_cast<double>(native->publish_burst)};
  // Failed authentications, per client address and per login, for every dialect.
  auth_policy auth_failures{static_cast<double>(native->auth_fail_rate),
                            static_cast<double>(native->auth_fail_burst), core.trusted_proxies};

  // Idempotency keys being processed right now (a concurrent retry waits its turn: 409).
  // Cluster mode (api/cluster_link.h): the other nodes' part of admin calls. Null: one node.
  cluster_link* cluster = nullptr;

  std::mutex idem_mu{};
  std::set<std::string> idem_inflight{};
};

// What every dialect's socket does when it goes away: drops its sink from the shard, gives back
// its connection slot, and detaches its session (kept for resume unless `resumable` is false).
// Runs on the socket's shard. why: the server's reason, when it closed the socket.
void release_socket(services& s, std::uint64_t sink_id, bool counted, const principal& who,
                    const session_ref& ses, bool resumable,
                    std::optional<close_reason> why = std::nullopt);

// What every dialect's socket reports of itself to the admin API (session_sink::info).
connection_info describe_socket(std::string id, std::string dialect, const principal& who,
                                const session_ref& ses, const std::string& remote,
                                std::int64_t opened_ms);

}  // namespace herald
