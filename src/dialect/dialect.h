// The dialect type: what every wire dialect supplies to app/, which registers each one by one
// line in app/dialects.cc and loops over them for configuration, installation, routing, error
// rendering and the auth-failure rule. Nothing here names a particular dialect. A dialect
// object is made at configuration load, filled from its table, installed once by `herald serve`
// and lives as long as the server; after install it is only read (its routes and serve() run on
// the blocking pool, render_error() on a shard).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "api/router.h"
#include "api/services.h"
#include "transport/server.h"

namespace herald {

// ---- configuration tables

enum class config_type { integer, string, boolean };

// One key of a configuration table, bound to the field it fills. Start-up only.
struct config_key {
  std::string name;  // table-relative: "notify_pause_ms"
  config_type type = config_type::string;
  std::string unit;  // "s", "ms", "bytes" or "" (a count, a name, a flag)
  std::string help;
  std::function<void(const std::string& value)> set;  // strict; throws naming the key
  std::function<std::string()> get;                   // the current value, as text
  bool reloadable = false;  // SIGHUP applies a new value (`herald config` marks it [SIGHUP])
};

// The keys of one TOML table (`[name]`, env HERALD_<NAME>_<KEY>, flags "name.key"), bound to
// fields of an object that outlives the table, plus rules checked once every source applied.
// Values parse strictly: integers are non-negative decimal digits that fit the field, booleans
// true/false/1/0/on/off. Errors are std::runtime_error naming "table.key". Start-up only.
class config_table {
 public:
  explicit config_table(std::string table) : table_(std::move(table)) {}

  const std::string& table() const { return table_; }
  const std::vector<config_key>& keys() const { return keys_; }
  const config_key* find(std::string_view key) const;

  // Binds `key` to an unsigned or signed integer field (negative values are refused).
  template <class Int>
  config_table& integer(std::string key, std::string unit, std::string help, Int& field);
  config_table& string(std::string key, std::string help, std::string& field);
  config_table& boolean(std::string key, std::string help, bool& field);
  // A rule checked by check(): `ok` false fails with "table.key: <what>".
  config_table& rule(std::string key, std::string what, std::function<bool()> ok);
  // Marks keys SIGHUP applies to the running server (each must be bound already).
  config_table& sighup(std::initializer_list<std::string_view> keys);
  // "table.key: at least <min>" for an integer field.
  template <class Int>
  config_table& at_least(std::string key, Int& field, Int min);

  // Sets "key" (table-relative) from `value`; `source` names where it came from in the unknown
  // key error ("config file", "flag").
  void set(std::string_view key, const std::string& value, std::string_view source) const;
  // Applies HERALD_<TABLE>_<KEY> environment variables.
  void apply_env() const;
  // Runs the rules in order; throws on the first that fails.
  void check() const;
  // One line per key: "table.key  default  help (unit)".
  std::string describe() const;

 private:
  static std::int64_t parse_int(const std::string& name, const std::string& v);
  std::string table_;
  std::vector<config_key> keys_;
  std::vector<std::pair<std::string, std::function<bool()>>> rules_;  // "table.key: what", ok
};

// ---- what a dialect is given

// Served routes and sockets, for an enabled dialect (start-up, once).
struct dialect_install {
  services& svc;
  router& routes;                 // this dialect's own router (request-over-socket reaches it)
  std::vector<ws_mount>& mounts;  // socket endpoints (paths include the prefix)
  std::string prefix;             // "" for a dialect served at the root
  std::size_t render_slot;        // its slot of event::rendered(), allocated at registration
};

// Admin routes and publish validators, installed whether or not the dialect is served
// (design.md §4: a disabled dialect keeps its admin calls and validators). Start-up, once.
struct dialect_admin {
  services& svc;   // svc.validators: publish validators for the event types it reserves
  router& routes;  // reached under /v1/admin/ only with the admin key (app/ checks it)
};

// What the shared services are built from, before they exist: a dialect whose limits are
// also the native REST API's (services::native) fills them here. Start-up, once.
struct services_setup {
  native_limits& native;
};

// ---- the dialect

// One wire dialect. Subclasses bind their own keys in their constructor (after the common
// `enabled`, `prefix`, `listen`) and override what they serve. Not copyable: the table binds
// fields of the object itself.
class dialect {
 public:
  dialect(std::string name, std::string default_prefix);
  virtual ~dialect() = default;
  dialect(const dialect&) = delete;
  dialect& operator=(const dialect&) = delete;

  const std::string& name() const { return name_; }
  bool enabled() const { return enabled_; }
  const std::string& prefix() const { return prefix_; }  // "" or "/name", no trailing '/'
  config_table& config() { return config_; }
  const config_table& config() const { return config_; }

  // Fills what the shared services are built from (before install). Default: nothing.
  virtual void setup(services_setup& s) const;
  // Admin routes and validators; called whether or not the dialect is enabled. Default: none.
  virtual void install_admin(dialect_admin& a);
  // Served REST routes and socket mounts under d.prefix; called only when enabled.
  virtual void install(dialect_install& d) = 0;

  // Answers a request under this dialect's prefix (`req.path` made relative to it), including
  // unknown paths and wrong methods. Default: the router's native-shaped 404/405. Runs on the
  // blocking pool; `routes` is the router install filled.
  virtual http_response serve(const router& routes, const http_request& req) const;
  // The reply to a request under this dialect's prefix that is refused before routing (400
  // malformed request, 413 body too large, 414/431 request line or headers too long). `req`
  // holds what could be read of it (the path may be empty). Runs on a shard thread: no
  // blocking. Default: the native error body.
  virtual http_response render_error(const http_request& req, int status,
                                     std::string message) const;
  // Whether failed authentications (401) on its paths count against the per-address limiter
  // (and are refused with 429 once it is exhausted). Default: yes.
  virtual bool counts_auth_failures() const { return true; }
  // SIGHUP changed some of its reloadable keys: their new values are in its table's fields
  // already (written on the reloading thread, nothing else writes them); publish them to what
  // its routes and sockets read (a live<> snapshot). Default: nothing.
  virtual void reload() {}

 protected:
  config_table config_;

 private:
  std::string name_;
  bool enabled_ = true;
  std::string prefix_;
  std::string listen_;  // a listener of its own: not supported yet (must stay empty)
};

// Makes a dialect with its defaults (one per configuration load).
using dialect_factory = std::unique_ptr<dialect> (*)();

// ---- templates

template <class Int>
config_table& config_table::integer(std::string key, std::string unit, std::string help,
                                    Int& field) {
  const std::string name = table_ + "." + key;
  Int* f = &field;
  keys_.push_back(
      config_key{std::move(key), config_type::integer, std::move(unit), std::move(help),
                 [name, f](const std::string& v) {
                   const std::int64_t n = parse_int(name, v);
                   constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
                   if (static_cast<std::uint64_t>(n) > max)
                     throw std::runtime_error("config " + name + ": too large: '" + v + "'");
                   *f = static_cast<Int>(n);
                 },
                 [f] { return std::to_string(*f); }});
  return *this;
}

template <class Int>
config_table& config_table::at_least(std::string key, Int& field, Int min) {
  const Int* f = &field;
  return rule(std::move(key), "at least " + std::to_string(min), [f, min] { return *f >= min; });
}

}  // namespace herald
