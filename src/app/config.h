// Configuration (design.md §4): a TOML file, then HERALD_<TABLE>_<KEY> environment variables,
// then flags. `[core]` is listed in config.cc; every other table is a registered dialect's own
// (app/dialects.cc), keys and rules included. Unknown keys are an error at start-up. Start-up
// only (throws std::runtime_error with the key named).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/limits.h"
#include "dialect/dialect.h"
#include "store/store.h"

namespace herald {

struct config {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./var";
  std::string store = "sqlite";
  std::size_t shards = 0;  // 0: CPUs in the affinity mask
  std::size_t blocking_threads = 8;
  std::string token_key_file;  // default DATA/token.key
  std::string public_url;      // default: the listener's address a request arrived on
  bool metrics_public = true;
  // Accepted TCP connections, all dialects (0: the open-file limit less a reserve), and per
  // remote address (0: unbounded); checked at accept.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_address = 0;
  // Detached (resumable) sessions kept per app and per tenant; past it the oldest is dropped.
  std::size_t max_sessions_per_app = 25000;
  std::size_t max_sessions_per_tenant = 100000;
  std::string tls_cert_file, tls_key_file;  // PEM; both set: HTTPS and WSS only
  // Logs (app/logging.h) and metrics labels (issue #14).
  std::string log_level = "info";          // debug | info | warn | error
  std::string log_format = "text";         // text | json
  std::uint64_t log_flood_lines = 20;      // per second per (kind, reason); then summarised
  std::size_t metrics_tenant_limit = 100;  // tenant label values; the rest are `_other`
  core_limits core;
  // This node's name in a cluster (admin rows, Redis CLIENT LIST); empty: <hostname>:<port>.
  std::string node_id;
  // `[redis]`: the cluster store's connection bounds and log bound (store = redis://...).
  store_open_options store_opts;
  // `[redis]`, cluster mode's control channel and node registry (app/cluster.h).
  struct cluster_bounds {
    std::int64_t node_lease_ms = 3000;     // a node silent this long leaves the registry
    std::int64_t node_renew_ms = 1000;     // lease renewal, and the control stream's poll
    std::int64_t control_max_len = 10000;  // control stream entries kept (about)
    std::int64_t ask_timeout_ms = 2000;    // a cross-node kick or listing waits this long
    // The feed follows only the tenants this node's sessions need (one message per event per
    // interested node), or every tenant (false: every node receives every event).
    bool follow_tenants = true;
    std::int64_t unfollow_after_ms = 60000;  // a tenant no session here needs this long: unfollowed
  } cluster;
  // Every registered dialect, in registration (render-slot) order, filled from its table.
  std::vector<std::unique_ptr<dialect>> dialects;
  // What it was loaded from (load_config fills them): SIGHUP loads them again.
  std::string file;
  std::map<std::string, std::string> flags;
};

// One key of a loaded configuration: its value in force as text.
struct config_entry {
  std::string key;  // "table.key"
  std::string value, unit, help;
  bool reloadable = false;  // SIGHUP applies a new value; otherwise it needs a restart
};
// Every key of every table, in `herald config` order.
std::vector<config_entry> config_entries(config& c);

// Loads `file` (may be empty), then the environment, then `flags` ("table.key" → value).
config load_config(const std::string& file, const std::map<std::string, std::string>& flags);

// `herald config check`: every error in `file` alone (no environment, no flags), each
// "FILE:LINE: table.key: what" (unknown keys name the closest known one); empty when valid.
std::vector<std::string> check_config_file(const std::string& file);

// Every configuration key with its default, unit and description (`herald config`); `json`:
// one array of {"key","default","unit","help","reloadable"}.
std::string describe_config(bool json = false);

}  // namespace herald
