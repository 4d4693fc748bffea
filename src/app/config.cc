#include "app/config.h"

#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace herald {
namespace {

struct key {
  std::string name;  // "table.key"
  std::string help;
  std::function<void(config&, const std::string&)> set;
  std::function<std::string(const config&)> get;
};

std::int64_t to_int(const std::string& k, const std::string& v) {
  try {
    std::size_t pos = 0;
    const long long n = std::stoll(v, &pos);
    if (pos != v.size() || n < 0) throw std::invalid_argument(v);
    return n;
  } catch (...) {
    throw std::runtime_error("config " + k + ": expected a non-negative integer, got '" + v + "'");
  }
}

bool to_bool(const std::string& k, const std::string& v) {
  if (v == "true" || v == "1" || v == "on") return true;
  if (v == "false" || v == "0" || v == "off") return false;
  throw std::runtime_error("config " + k + ": expected true or false, got '" + v + "'");
}

#define HERALD_INT(NAME, HELP, FIELD)                                                        \
  key {                                                                                      \
    NAME, HELP,                                                                              \
        [](config& c, const std::string& v) {                                                \
          c.FIELD = static_cast<decltype(c.FIELD)>(to_int(NAME, v));                         \
        },                                                                                   \
        [](const config& c) { return std::to_string(c.FIELD); }                              \
  }
#define HERALD_STR(NAME, HELP, FIELD)                                               \
  key {                                                                             \
    NAME, HELP, [](config& c, const std::string& v) { c.FIELD = v; },               \
        [](const config& c) { return c.FIELD; }                                     \
  }
#define HERALD_BOOL(NAME, HELP, FIELD)                                                        \
  key {                                                                                       \
    NAME, HELP, [](config& c, const std::string& v) { c.FIELD = to_bool(NAME, v); },          \
        [](const config& c) { return std::string(c.FIELD ? "true" : "false"); }               \
  }

const std::vector<key>& keys() {
  static const std::vector<key> k = {
      HERALD_STR("core.listen", "HOST:PORT of the listener (port 0: a free port)", listen),
      HERALD_STR("core.data", "data directory (SQLite store, keys)", data_dir),
      HERALD_STR("core.store", "sqlite | memory", store),
      HERALD_INT("core.shards", "worker threads (0: CPUs in the affinity mask)", shards),
      HERALD_INT("core.blocking_threads", "threads for store and router work", blocking_threads),
      HERALD_STR("core.token_key_file", "token signing key file (default DATA/token.key)", token_key_file),
      HERALD_STR("core.public_url", "base URL clients reach (for ws `uri`; default: Host header)", public_url),
      HERALD_BOOL("core.metrics_public", "serve /metrics without credentials", metrics_public),
      HERALD_INT("core.send_queue_bytes", "bytes queued per socket before 4010", core.send_queue_bytes),
      HERALD_INT("core.max_connections_per_app", "sockets per app principal (4029)", core.max_connections_per_app),
      HERALD_INT("core.max_connections_per_tenant", "sockets per tenant (4029)", core.max_connections_per_tenant),
      HERALD_INT("core.log_retention", "seconds events are kept (retained states exempt)", core.log_retention_s),
      HERALD_INT("native.heartbeat_interval", "seconds of quiet before a ping; 2x without traffic: 4008", native.heartbeat_interval_s),
      HERALD_INT("native.idle_timeout", "seconds without request or event: 4008", native.idle_timeout_s),
      HERALD_INT("native.absolute_timeout", "seconds a socket may live: 4009", native.absolute_timeout_s),
      HERALD_INT("native.recovery_window", "seconds a session outlives its socket", native.recovery_window_s),
      HERALD_INT("native.recovery_buffer", "deliveries kept per session for resume", native.recovery_buffer),
      HERALD_INT("native.max_log_replay", "missed events a resume may page from the log past the ring", native.max_log_replay),
      HERALD_INT("native.max_inflight", "unanswered requests per socket", native.max_inflight),
      HERALD_INT("native.max_message_bytes", "largest client frame (1009)", native.max_message_bytes),
      HERALD_INT("native.max_connections_per_session", "sockets per login session (4029)", native.max_connections_per_session),
      HERALD_INT("native.auth_timeout", "seconds to authenticate in-band (4002)", native.auth_timeout_s),
      HERALD_INT("native.close_timeout", "seconds for the closing handshake", native.close_timeout_s),
      HERALD_INT("native.access_token_ttl", "seconds an access token lives", native.access_token_ttl_s),
      HERALD_INT("native.ws_token_ttl", "seconds a ws token lives", native.ws_token_ttl_s),
      HERALD_INT("native.max_publish_bytes", "largest POST /v1/events body (413)", native.max_publish_bytes),
      HERALD_INT("native.max_batch", "events per publish (413)", native.max_batch),
      HERALD_INT("native.max_filters", "filters per subscribe", native.filters.max_filters),
      HERALD_INT("native.max_subjects_per_filter", "subjects per filter", native.filters.max_subjects_per_filter),
      HERALD_INT("native.max_where_keys", "where keys per filter", native.filters.max_where_keys),
      HERALD_INT("native.max_types_per_filter", "types per filter", native.filters.max_types_per_filter),
      HERALD_INT("native.max_path_bytes", "request path and query (414)", native.max_path_bytes),
      HERALD_INT("native.publish_rate", "events per second one app may publish (429)", native.publish_rate),
      HERALD_INT("native.publish_burst", "events one app may publish in a burst", native.publish_burst),
      HERALD_INT("native.auth_fail_rate", "failed authentications per second per address (then 429/4029)", native.auth_fail_rate),
      HERALD_INT("native.auth_fail_burst", "failed authentications in a burst per address", native.auth_fail_burst),
      HERALD_INT("native.idempotency_ttl", "seconds an Idempotency-Key is kept", native.idempotency_ttl_s),
      // [ringcentral] (ringcentral.md §6)
      HERALD_BOOL("ringcentral.enabled", "serve the RingCentral dialect", ringcentral.enabled),
      HERALD_STR("ringcentral.prefix", "path prefix of its REST companions and socket", ringcentral.prefix),
      HERALD_STR("ringcentral.listen", "a listener of its own (not supported yet: leave empty)", ringcentral.listen),
      HERALD_INT("ringcentral.max_connections_per_session", "open sockets per login (4029)", ringcentral.max_connections_per_session),
      HERALD_INT("ringcentral.recovery_buffer_size", "events a WSG session keeps for recovery", ringcentral.recovery_buffer_size),
      HERALD_INT("ringcentral.recovery_timeout", "seconds a WSG session outlives its socket", ringcentral.recovery_timeout_s),
      HERALD_INT("ringcentral.idle_timeout", "seconds without inbound text or notification (WSG-902, 4008)", ringcentral.idle_timeout_s),
      HERALD_INT("ringcentral.absolute_timeout", "seconds a socket may live (WSG-903, 4009)", ringcentral.absolute_timeout_s),
      HERALD_INT("ringcentral.max_active_requests", "unanswered ClientRequests per socket (429 CMN-301)", ringcentral.max_active_requests),
      HERALD_INT("ringcentral.ping_interval", "seconds of outbound quiet before a ping; 2x without inbound: 4008", ringcentral.ping_interval_s),
      HERALD_INT("ringcentral.notify_pause_ms", "pause after ConnectionDetails and subscription replies (min 20)", ringcentral.notify_pause_ms),
      HERALD_INT("ringcentral.ws_token_ttl", "seconds a ws token lives (reusable until then)", ringcentral.ws_token_ttl_s),
      HERALD_INT("ringcentral.access_token_ttl", "default access token lifetime (a grant may ask 600..86400)", ringcentral.access_token_ttl_s),
      HERALD_INT("ringcentral.refresh_token_ttl", "default and longest refresh token lifetime", ringcentral.refresh_token_ttl_s),
      HERALD_INT("ringcentral.max_filters", "eventFilters per subscription", ringcentral.max_filters),
      HERALD_INT("ringcentral.max_frame_bytes", "largest client frame (1009)", ringcentral.max_frame_bytes),
      HERALD_BOOL("ringcentral.compress", "accept permessage-deflate (then every message is compressed)", ringcentral.compress),
  };
  return k;
}

const key* find_key(const std::string& name) {
  for (const auto& k : keys())
    if (k.name == name) return &k;
  return nullptr;
}

void set(config& c, const std::string& name, const std::string& value, const char* source) {
  const key* k = find_key(name);
  if (k == nullptr) throw std::runtime_error(fmt::format("{}: unknown configuration key '{}'", source, name));
  k->set(c, value);
}

std::string toml_scalar(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  throw std::runtime_error("config file: only strings, integers and booleans are used");
}

}  // namespace

config load_config(const std::string& file, const std::map<std::string, std::string>& flags) {
  config c;
  if (!file.empty()) {
    toml::table t;
    try {
      t = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
      throw std::runtime_error(fmt::format("config file {}: {}", file, e.description()));
    }
    for (const auto& [table, node] : t) {
      const auto* tbl = node.as_table();
      if (tbl == nullptr) throw std::runtime_error(fmt::format("config file: '{}' must be a table", table.str()));
      for (const auto& [k, v] : *tbl) {
        const std::string name = std::string(table.str()) + "." + std::string(k.str());
        // Dialect tables not built in this version are accepted for their `enabled` key only.
        if (!find_key(name) && (k.str() == "enabled" || k.str() == "prefix" || k.str() == "listen") &&
            table.str() != "core" && table.str() != "native")
          continue;
        set(c, name, toml_scalar(v), "config file");
      }
    }
  }
  for (const auto& k : keys()) {
    std::string env = "HERALD_" + k.name;
    for (char& ch : env) ch = ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (const char* v = std::getenv(env.c_str())) k.set(c, v);
  }
  for (const auto& [name, value] : flags) set(c, name, value, "flag");
  if (c.native.heartbeat_interval_s < 1) throw std::runtime_error("native.heartbeat_interval: at least 1");
  if (c.native.recovery_buffer < 1) throw std::runtime_error("native.recovery_buffer: at least 1");
  const auto& rc = c.ringcentral;
  if (!rc.listen.empty()) throw std::runtime_error("ringcentral.listen: a separate listener is not supported yet");
  if (rc.prefix.empty() || rc.prefix.front() != '/' || rc.prefix.back() == '/')
    throw std::runtime_error("ringcentral.prefix: '/name' required (no trailing '/')");
  if (rc.notify_pause_ms < 20) throw std::runtime_error("ringcentral.notify_pause_ms: at least 20");
  if (rc.ping_interval_s < 1) throw std::runtime_error("ringcentral.ping_interval: at least 1");
  if (rc.recovery_buffer_size < 1) throw std::runtime_error("ringcentral.recovery_buffer_size: at least 1");
  if (rc.max_active_requests < 1) throw std::runtime_error("ringcentral.max_active_requests: at least 1");
  if (rc.ws_token_ttl_s < 1) throw std::runtime_error("ringcentral.ws_token_ttl: at least 1");
  return c;
}

std::string describe_config() {
  config c;
  std::string out;
  for (const auto& k : keys())
    out += fmt::format("{:<36} {:<10} {}\n", k.name, k.get(c), k.help);
  return out;
}

}  // namespace herald
