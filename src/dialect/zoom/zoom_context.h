// What the zoom dialect's routes, admin calls and sockets share (zoom.md §2, §4.2, §5):
// stored subscriptions (records in the store's generic registry, kind "zoom_subscription"),
// the registry of open sockets per subscription (one socket per subscription, §3.5; admin
// changes reach the open socket, §5), and the route installers.
// Built by the dialect object at configuration load and kept as long as the server.
// Thread-safe: the registry takes its own mutex; the store helpers block (blocking pool only).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/router.h"
#include "api/services.h"
#include "core/rate_limit.h"
#include "core/session.h"
#include "dialect/zoom/zoom_limits.h"

namespace herald {

class zoom_socket;

// A Zoom event subscription (§4.2): which account (tenant) it belongs to, optionally which app
// may open it, and the event types it delivers. A value.
struct zoom_subscription {
  std::string id;  // 22 base64url characters (128 random bits)
  std::string tenant;
  std::string app;  // "": any app/admin app of the tenant
  std::string name;
  std::vector<std::string> events;  // types, optional trailing '*'
  bool include_sub_accounts = false;
  std::int64_t created_ms = 0;
};

inline constexpr std::string_view zoom_record_kind = "zoom_subscription";

// The stored subscription `id`; nullopt when there is none; an error when the store failed.
// Blocking.
result<std::optional<zoom_subscription>> load_zoom_subscription(store& st, const std::string& id);
// The core subscription a socket of `rec` installs: one filter {"topic":"/**","types":events}
// in the tenant set {tenant}, or its subtree with include_sub_accounts (§4.2).
result<subscription> core_subscription_of(const zoom_subscription& rec);

// The open zoom sockets of each subscription. A socket enters it when it passes validation and
// leaves it when it closes. Thread-safe (one mutex); the socket pointers are used only on the
// socket's own shard through hub::on_socket_shard (which runs nothing once the sink is gone).
class zoom_registry {
 public:
  struct entry {
    std::string con_id;
    sink_ref ref;
    zoom_socket* sock = nullptr;
    // Set once the socket is replaced: from then on it drops deliveries (no event goes to
    // both sockets, §3.5) while its close is on its way.
    std::shared_ptr<std::atomic<bool>> superseded;
    std::int64_t claimed_ms = 0;  // wall clock: when it passed validation (cluster claims)
  };
  // Adds `e` under `sub`. With `single`, every other socket of `sub` is marked superseded and
  // removed; they are returned for the caller to close.
  std::vector<entry> claim(const std::string& sub, entry e, bool single);
  // Removes socket `con_id` from `sub` (no-op when it was replaced meanwhile).
  void release(const std::string& sub, const std::string& con_id);
  // The open sockets of `sub`; take() also forgets them.
  std::vector<entry> of(const std::string& sub) const;
  std::vector<entry> take(const std::string& sub);
  // Another node's socket of `sub` claimed it at `ms`: the sockets here that claimed no later
  // are marked superseded, removed and returned (a newer one here stays: it wins).
  std::vector<entry> take_claimed_by(const std::string& sub, std::int64_t ms);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<entry>> open_;
};

// The dialect's shared state.
struct zoom_context {
  services* svc = nullptr;  // set at install/install_admin (the same services for both)
  live<zoom_limits> cfg;    // the dialect's table; SIGHUP publishes its reloadable keys
  std::string prefix;       // "/zoom"
  std::size_t render_slot = 0;
  zoom_registry sockets;
  // Failed token requests per client address (token_failures_per_minute, §6); made at install.
  std::unique_ptr<rate_limiter> token_failures;
};

// Cluster mode (api/cluster_link.h): the dialect's messages between nodes, of kind "zoom.sub":
//   "claim <subscription> <ms>": a socket of it passed validation on another node at <ms> (that
//     node's wall clock): this node's sockets of it that claimed no later close 1000 replaced,
//     so one socket per subscription holds across the cluster (§3.5; sent only with
//     single_connection);
//   "changed <subscription>": an admin call changed or deleted it on another node: this node
//     re-reads the record and applies it to its open socket, or closes it 1000 `subscription
//     deleted` (§5).
inline constexpr std::string_view zoom_broadcast_kind = "zoom.sub";
// Sends `arg` to the other nodes (nothing on a single node). Never blocks.
void zoom_announce(const zoom_context& cx, std::string arg);
// Does here what another node's message means. Blocking (the control worker).
void zoom_on_broadcast(zoom_context& cx, const std::string& arg);

// POST {prefix}/oauth/token and the 426 answer of a plain GET on {prefix}/ws (§2, §3), on the
// dialect's own router.
void add_zoom_routes(router& r, const std::shared_ptr<zoom_context>& cx);
// Every answer under the prefix: unknown paths and wrong methods in the Zoom error body.
http_response zoom_http(const router& routes, const http_request& req);
// {"reason":…,"error":…} with Cache-Control: no-store.
http_response zoom_error(int status, std::string_view error, std::string_view reason);
// The admin calls of §5 under /v1/admin/zoom/subscriptions.
void add_zoom_admin_routes(router& r, const std::shared_ptr<zoom_context>& cx);

}  // namespace herald
