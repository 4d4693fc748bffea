// Cluster mode (docs/cluster.md): what an admin call on one node must also do on the others.
// app/cluster.cc implements it over the Redis control channel; `services::cluster` is null on a
// single node, where every call site does only its local part.
// Thread-safe: every member may be called from any thread but a shard's (they block on Redis).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/hub.h"

namespace herald {

class cluster_link {
 public:
  virtual ~cluster_link() = default;
  // This node's id (core.node_id): the `node` of its /v1/admin/connections rows.
  virtual const std::string& node_id() const = 0;
  // Closes socket `con_id` (kick `k`) on whichever other node holds it: false when no live
  // node does (or none answered in time).
  virtual bool kick_elsewhere(const std::string& con_id) = 0;
  // The other live nodes' sockets, as connection_json renders them.
  virtual std::vector<boost::json::object> others_connections() = 0;
  // A dialect's own message: `arg` reaches the handler registered under `kind` on every other
  // live node (never this one), in the control stream's order. Returns at once (the message
  // goes out from the control worker). `kind` is the dialect's name, a dot and a word
  // ("zoom.claim"): the bare words are the channel's own kinds.
  virtual void broadcast(const std::string& kind, std::string arg) = 0;
  // What this node does with another node's broadcast of `kind`: `handler` runs on the control
  // worker, one message at a time (it must not block on a shard). Registered at install, before
  // the node serves; a later registration of the same kind replaces it.
  virtual void on_broadcast(const std::string& kind,
                            std::function<void(const std::string& arg)> handler) = 0;
};

// One /v1/admin/connections row (admin_routes.cc), `node` naming the node holding the socket.
boost::json::object connection_json(const connection_info& c, const std::string& node);

}  // namespace herald
