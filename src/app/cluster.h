// Cluster mode (--store redis://, docs/cluster.md): what a node does besides sharing the store.
//   - sessions move between nodes: a resume of a session this node does not hold adopts it from
//     its crash record (hub_options::adopt); the node that held it hears `taken` and lets it go
//     (its socket closes `replaced`, its record stays: the adopting node owns it now);
//   - directory records written here (tenants, apps, users, login sessions, subjects, JWTs) are
//     announced (`record`); every other node re-reads them into its directory and does what
//     the change means for its sockets (a login ended or a user blocked: revoked; an app's key
//     rotated or the app deleted: its sockets revoked; rights changed: refreshed);
//   - admin kicks and /v1/admin/connections reach every live node (`kick`, `conns`: asked over
//     the control channel, answered in `herald:reply:<request>`);
//   - the node registers in `herald:node:<id>` with a lease; the session records of a node
//     whose lease lapsed get an expiry (store/redis/control.h);
//   - a node that finds control messages trimmed unread (a gap) re-reads the directory and
//     re-checks every session it holds, running the handlers the messages would have run.
// Threads: built and wired on the main thread at start-up; control messages are handled in
// stream order on a worker thread of its own; the cluster_link members block on Redis.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/cluster_link.h"
#include "app/config.h"
#include "core/event.h"
#include "store/redis/options.h"

namespace herald {

class store;
struct services;
struct hub_options;
class hub;

class cluster_node : public cluster_link {
 public:
  // Cluster mode when `store_spec` is a redis:// URL (else null). Throws std::runtime_error
  // naming a malformed URL.
  // `conn`: the store's connection settings (its address is taken from `store_spec`).
  // `bounds`: [redis]'s node_lease_ms, node_renew_ms, control_max_len, ask_timeout_ms.
  static std::unique_ptr<cluster_node> make_if_redis(const std::string& store_spec,
                                                     const redis::options& conn,
                                                     const config::cluster_bounds& bounds,
                                                     store& db);
  ~cluster_node() override;

  // Connects the control channel and registers `node_id` (core.node_id), once the listener is
  // bound (before the shards run). `recovery_window_ms` (the hub's) is the window a dead
  // node's session records get when they name none. Throws std::runtime_error naming what
  // failed.
  virtual void start(const std::string& node_id, std::int64_t recovery_window_ms) = 0;

  // The store the services write through: `db`, announcing directory record writes.
  virtual store& announcing() = 0;
  // Adoption of sessions other nodes hold (hub_options::adopt, adopted).
  virtual void wire_hub(hub_options& ho) = 0;
  // From here on, control messages act on `svc` (its hub and directory).
  virtual void attach(services& svc) = 0;
  // The store's append listener: hands `batch` (every node's appends, in offset order) to `h`.
  // A directory record appended with the batch (a subject kind's change and the events it
  // emits: a tracker's block, unblock, corrupt) came with it from the store and was applied to
  // the directory just before, on the same thread, without a read, as the node that made the
  // change did before appending: a block holds here from that event on; an unblock's state
  // follows the batch.
  virtual void deliver(hub& h, std::vector<event_ptr> batch) = 0;
  // Stops handling messages and deregisters the node (before the hub goes).
  virtual void stop() = 0;
};

}  // namespace herald
