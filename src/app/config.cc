#include "app/config.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include "api/numbers.h"
#include "app/dialects.h"

namespace herald {
namespace {

// HOST:PORT with a strict port (digits only, 0..65535): "8080x" is refused, not truncated.
bool valid_listen(std::string_view v) {
  const auto colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const auto port = parse_u64(v.substr(colon + 1));
  return port && *port <= 65535;
}

// `[core]`, bound to `c` (built per use: a config moves, its table would not follow).
config_table core_table(config& c) {
  config_table t("core");
  t.string("listen", "HOST:PORT of the listener (port 0: a free port)", c.listen)
      .string("data", "data directory (SQLite store, keys)", c.data_dir)
      .string("store", "sqlite | memory | redis://HOST[:PORT][/DB] (cluster mode, [redis])",
              c.store)
      .string("node_id", "this node's name in a cluster (default: HOSTNAME:PORT)", c.node_id)
      .integer("shards", "", "worker threads (0: CPUs in the affinity mask)", c.shards)
      .integer("blocking_threads", "", "threads for store and router work", c.blocking_threads)
      .string("token_key_file", "token signing key file (default DATA/token.key)", c.token_key_file)
      .string("public_url",
              "base URL clients reach (for ws `uri`; default: the listener's address)",
              c.public_url)
      .boolean("metrics_public", "serve /metrics without credentials", c.metrics_public)
      .integer("send_queue_bytes", "bytes", "queued per socket before 4010",
               c.core.send_queue_bytes)
      .integer("unauth_send_queue_bytes", "bytes",
               "queued per socket before authentication (pongs included), then 4010",
               c.core.unauth_send_queue_bytes)
      .integer("max_connections_per_app", "", "sockets per app principal (4029)",
               c.core.max_connections_per_app)
      .integer("max_connections_per_tenant", "", "sockets per tenant (4029)",
               c.core.max_connections_per_tenant)
      .integer("log_retention", "s", "events are kept (retained states exempt)",
               c.core.log_retention_s)
      .string("trusted_proxies",
              "comma-separated proxy addresses whose X-Forwarded-For names the client",
              c.core.trusted_proxies)
      .integer("idempotency_window", "s", "an Idempotency-Key is remembered (native, smsgw)",
               c.core.idempotency_window_s)
      .integer("prune_interval", "s", "retention and record expiry run this often",
               c.core.prune_interval_s)
      .at_least("prune_interval", c.core.prune_interval_s, std::int64_t{1})
      .integer("max_connections", "",
               "TCP connections at once, every dialect (503; 0: the open-file limit less 256)",
               c.max_connections)
      .integer("max_connections_per_address", "",
               "TCP connections at once from one IP address (429; 0: unbounded)",
               c.max_connections_per_address)
      .integer("max_sessions_per_app", "",
               "detached sessions kept per app (past it the oldest is dropped; 0: unbounded)",
               c.max_sessions_per_app)
      .integer("max_sessions_per_tenant", "",
               "detached sessions kept per tenant (past it the oldest is dropped; 0: unbounded)",
               c.max_sessions_per_tenant)
      .string("tls_cert_file", "PEM certificate chain: the listener speaks only TLS 1.2+",
              c.tls_cert_file)
      .string("tls_key_file", "PEM private key of tls_cert_file (SIGHUP reloads both)",
              c.tls_key_file)
      .string("log_level", "debug | info | warn | error: the least severe line written",
              c.log_level)
      .string("log_format", "text (k=v) | json (one object per line)", c.log_format)
      .integer("log_flood_lines", "",
               "lines per second of one kind and reason before the rest are summarised "
               "(0: unlimited)",
               c.log_flood_lines)
      .integer("metrics_tenant_limit", "",
               "tenants given their own metrics label; the rest are summed under _other",
               c.metrics_tenant_limit)
      .sighup({"log_level", "log_format", "log_flood_lines", "max_connections",
               "max_connections_per_address"});
  t.rule("listen", "expected HOST:PORT, the port a number from 0 to 65535",
         [&c] { return valid_listen(c.listen); });
  t.rule("node_id", "printable characters, no spaces (it names Redis clients)", [&c] {
    return std::all_of(c.node_id.begin(), c.node_id.end(),
                       [](char ch) { return ch > ' ' && ch != 127; });
  });
  t.rule("log_level", "expected debug, info, warn or error", [&c] {
    return c.log_level == "debug" || c.log_level == "info" || c.log_level == "warn" ||
           c.log_level == "error";
  });
  t.rule("log_format", "expected text or json",
         [&c] { return c.log_format == "text" || c.log_format == "json"; });
  return t;
}

// `[redis]`: the cluster store's connection (store/redis/options.h) and log bound.
config_table redis_table(config& c) {
  redis::options& o = c.store_opts.redis;
  config_table t("redis");
  t.integer("connect_timeout_ms", "ms", "resolve, TCP connect and handshake, per attempt",
            o.connect_timeout_ms)
      .integer("command_timeout_ms", "ms", "a command with no reply by then fails (503)",
               o.command_timeout_ms)
      .integer("reconnect_min_ms", "ms", "first retry after a lost connection (then doubling)",
               o.reconnect_min_ms)
      .integer("reconnect_max_ms", "ms", "longest wait between reconnection attempts",
               o.reconnect_max_ms)
      .integer("max_send_buffer_bytes", "bytes",
               "queued and unwritten; past it a command is refused", o.max_send_buffer_bytes)
      .integer("max_pending_commands", "", "commands awaiting replies; past it one is refused",
               o.max_pending_commands)
      .integer("max_reply_bytes", "bytes",
               "one reply; past it the command fails and the link drops", o.max_reply_bytes)
      .integer("ping_interval_ms", "ms", "the feed subscription proves its link live this often",
               o.ping_interval_ms)
      .integer("log_max_events", "",
               "events the log keeps at most, retained states exempt (0: unbounded)",
               c.store_opts.log_max_events)
      .integer("log_max_events_per_tenant", "",
               "events each tenant's log keeps at most, retained states exempt (0: unbounded)",
               c.store_opts.log_max_events_per_tenant)
      .integer("feed_wait_ms", "ms",
               "an append not yet seen on the feed after this reads the log for it",
               c.store_opts.feed_wait_ms)
      .at_least("connect_timeout_ms", o.connect_timeout_ms, std::int64_t{1})
      .at_least("command_timeout_ms", o.command_timeout_ms, std::int64_t{1})
      .at_least("reconnect_min_ms", o.reconnect_min_ms, std::int64_t{1})
      .at_least("reconnect_max_ms", o.reconnect_max_ms, std::int64_t{1})
      .at_least("max_send_buffer_bytes", o.max_send_buffer_bytes, std::size_t{1024})
      .at_least("max_pending_commands", o.max_pending_commands, std::size_t{1})
      .at_least("max_reply_bytes", o.max_reply_bytes, std::size_t{1024})
      .at_least("ping_interval_ms", o.ping_interval_ms, std::int64_t{1})
      .at_least("log_max_events_per_tenant", c.store_opts.log_max_events_per_tenant,
                std::int64_t{0})
      .integer("node_lease_ms", "ms", "a node not renewing its lease this long leaves the registry",
               c.cluster.node_lease_ms)
      .integer("node_renew_ms", "ms", "lease renewal, and the control stream's poll",
               c.cluster.node_renew_ms)
      .integer("control_max_len", "", "control stream entries kept (about; MAXLEN ~)",
               c.cluster.control_max_len)
      .integer("ask_timeout_ms", "ms",
               "a kick or listing across nodes waits this long for the other nodes' answers",
               c.cluster.ask_timeout_ms)
      .boolean("follow_tenants",
               "receive only the events of the tenants this node's sessions need (false: every "
               "tenant's)",
               c.cluster.follow_tenants)
      .integer("unfollow_after_ms", "ms",
               "a tenant no session on this node needed this long stops being received",
               c.cluster.unfollow_after_ms)
      .at_least("feed_wait_ms", c.store_opts.feed_wait_ms, std::int64_t{1})
      .at_least("node_renew_ms", c.cluster.node_renew_ms, std::int64_t{10})
      .at_least("control_max_len", c.cluster.control_max_len, std::int64_t{100})
      .at_least("ask_timeout_ms", c.cluster.ask_timeout_ms, std::int64_t{1})
      .at_least("unfollow_after_ms", c.cluster.unfollow_after_ms, std::int64_t{5000});
  t.rule("node_lease_ms", "must be more than node_renew_ms",
         [&c] { return c.cluster.node_lease_ms > c.cluster.node_renew_ms; });
  return t;
}

// The tables that are not a dialect's: [core] and [redis] (built per use, bound to `c`).
struct builtin_tables {
  config_table core, redis;
  explicit builtin_tables(config& c) : core(core_table(c)), redis(redis_table(c)) {}
  std::vector<const config_table*> all() const { return {&core, &redis}; }
  const std::string& table() const { return core.table(); }
  void apply_env() const {
    for (const auto* t : all()) t->apply_env();
  }
  void check() const {
    for (const auto* t : all()) t->check();
  }
};

const config_table* find_table(const config& c, const builtin_tables& core, std::string_view name) {
  for (const auto* t : core.all())
    if (name == t->table()) return t;
  for (const auto& d : c.dialects)
    if (d->name() == name) return &d->config();
  return nullptr;
}

// Levenshtein distance, for "did you mean" (names are short: quadratic is fine).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'x'?" for the closest of `names` (within a third of the name's length, at
// least 2 edits), or "" when none is close.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
  for (const auto& n : names)
    if (const std::size_t d = edit_distance(name, n); d < best_d) {
      best = &n;
      best_d = d;
    }
  return best ? fmt::format("; did you mean '{}'?", *best) : std::string();
}

// "table.key" → its table and key; unknown tables are an error naming the whole key.
void set_key(const config& c, const builtin_tables& core, const std::string& name,
             const std::string& value, std::string_view source) {
  const auto dot = name.find('.');
  const config_table* t =
      dot == std::string::npos ? nullptr : find_table(c, core, name.substr(0, dot));
  if (t == nullptr)
    throw std::runtime_error(fmt::format("{}: unknown configuration key '{}'", source, name));
  t->set(std::string_view(name).substr(dot + 1), value, source);
}

std::string toml_scalar(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  throw std::runtime_error("only strings, integers and booleans are used");
}

// An error found in a configuration file, with the line it is on (0: none).
using file_error_fn = std::function<void(const std::string& message, std::size_t line)>;

// Applies every key of a parsed file; each error goes to `fail` (which may throw, stopping
// there, or collect and go on). Unknown tables and keys name the closest known one.
void apply_file(const config& c, const builtin_tables& core, const toml::table& t,
                const file_error_fn& fail) {
  std::vector<std::string> tables;
  for (const auto* b : core.all()) tables.push_back(b->table());
  for (const auto& d : c.dialects) tables.push_back(d->name());
  for (const auto& [table, node] : t) {
    const std::size_t line = node.source().begin.line;
    const auto* tbl = node.as_table();
    if (tbl == nullptr) {
      fail(fmt::format("config file: '{}' must be a table{}", table.str(),
                       did_you_mean(table.str(), tables)),
           line);
      continue;
    }
    const config_table* known = find_table(c, core, table.str());
    std::vector<std::string> keys;
    if (known)
      for (const auto& k : known->keys()) keys.push_back(k.name);
    for (const auto& [k, v] : *tbl) {
      const std::string name = std::string(table.str()) + "." + std::string(k.str());
      const std::size_t at = v.source().begin.line;
      // Dialects not built into this binary: their table may say `enabled`, `prefix` or
      // `listen` (a shared file turning them off), nothing else.
      if (!known && (k.str() == "enabled" || k.str() == "prefix" || k.str() == "listen")) continue;
      if (!known || known->find(k.str()) == nullptr) {
        fail(fmt::format("config file: unknown configuration key '{}'{}", name,
                         known ? did_you_mean(k.str(), keys) : did_you_mean(table.str(), tables)),
             at);
        continue;
      }
      try {
        set_key(c, core, name, toml_scalar(v), "config file");
      } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        fail(what.find(name) == std::string::npos ? fmt::format("{}: {}", name, what) : what, at);
      }
    }
  }
}

toml::table parse_file(const std::string& file) {
  try {
    return toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(
        fmt::format("config file {}:{}: {}", file, e.source().begin.line, e.description()));
  }
}

void load_file(const config& c, const builtin_tables& core, const std::string& file) {
  apply_file(c, core, parse_file(file), [&file](const std::string& message, std::size_t line) {
    throw std::runtime_error(line ? fmt::format("{} ({}:{})", message, file, line) : message);
  });
}

// The rules every loaded configuration must hold, after every source applied.
void check_rules(const config& c, const builtin_tables& core) {
  core.check();
  for (const auto& d : c.dialects) d->config().check();
  // Two served dialects on one prefix: the routing would silently pick one.
  for (std::size_t i = 0; i < c.dialects.size(); ++i)
    for (std::size_t j = 0; j < i; ++j) {
      const dialect& a = *c.dialects[i];
      const dialect& b = *c.dialects[j];
      if (a.enabled() && b.enabled() && a.prefix() == b.prefix())
        throw std::runtime_error(
            fmt::format("{}.prefix: '{}' is {}'s prefix already", a.name(), a.prefix(), b.name()));
    }
}

}  // namespace

config load_config(const std::string& file, const std::map<std::string, std::string>& flags) {
  config c;
  c.file = file;
  c.flags = flags;
  c.dialects = make_dialects();
  const builtin_tables core(c);
  if (!file.empty()) load_file(c, core, file);
  core.apply_env();
  for (const auto& d : c.dialects) d->config().apply_env();
  for (const auto& [name, value] : flags) set_key(c, core, name, value, "flag");
  check_rules(c, core);
  return c;
}

std::vector<std::string> check_config_file(const std::string& file) {
  config c;
  c.dialects = make_dialects();
  const builtin_tables core(c);
  toml::table t;
  try {
    t = parse_file(file);
  } catch (const std::runtime_error& e) {
    return {e.what()};
  }
  std::vector<std::pair<std::size_t, std::string>> found;  // line, message
  apply_file(c, core, t, [&](const std::string& message, std::size_t line) {
    const std::string_view m = message;
    found.emplace_back(line, m.substr(0, 13) == "config file: " ? m.substr(13) : m);
  });
  if (found.empty()) {  // rules judge a file whose keys all applied
    try {
      check_rules(c, core);
    } catch (const std::runtime_error& e) {
      // A rule names its key ("table.key: ..."): point at that key's line when the file sets it.
      const std::string what = e.what();
      const auto colon = what.find(':');
      std::size_t line = 0;
      if (const auto dot = what.find('.'); colon != std::string::npos && dot < colon)
        if (const auto* n = t.at_path(std::string_view(what).substr(0, colon)).node())
          line = n->source().begin.line;
      found.emplace_back(line, what);
    }
  }
  // Tables iterate by name: report in file order.
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> errors;
  errors.reserve(found.size());
  for (const auto& [line, message] : found)
    errors.push_back(line ? fmt::format("{}:{}: {}", file, line, message)
                          : fmt::format("{}: {}", file, message));
  return errors;
}

std::vector<config_entry> config_entries(config& c) {
  std::vector<config_entry> out;
  auto add = [&out](const config_table& t) {
    for (const auto& k : t.keys()) {
      out.push_back({t.table() + "." + k.name, k.get(), k.unit, k.help, k.reloadable});
    }
  };
  add(core_table(c));
  add(redis_table(c));
  for (const auto& d : c.dialects) add(d->config());
  return out;
}

std::string describe_config(bool json) {
  config c;
  c.dialects = make_dialects();
  std::string out;
  boost::json::array rows;
  for (const auto& e : config_entries(c)) {
    if (json) {
      rows.push_back(boost::json::object{{"key", e.key},
                                         {"default", e.value},
                                         {"unit", e.unit},
                                         {"help", e.help},
                                         {"reloadable", e.reloadable}});
      continue;
    }
    out += fmt::format("{:<40} {:<10} {:<5} {}{}\n", e.key, e.value, e.unit, e.help,
                       e.reloadable ? " [SIGHUP]" : "");
  }
  return json ? boost::json::serialize(rows) + "\n" : out;
}

}  // namespace herald
