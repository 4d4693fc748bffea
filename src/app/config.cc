#include "app/config.h"

#include <stdexcept>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "app/dialects.h"

namespace herald {
namespace {

// `[core]`, bound to `c` (built per use: a config moves, its table would not follow).
config_table core_table(config& c) {
  config_table t("core");
  t.string("listen", "HOST:PORT of the listener (port 0: a free port)", c.listen)
      .string("data", "data directory (SQLite store, keys)", c.data_dir)
      .string("store", "sqlite | memory", c.store)
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
               c.core.log_retention_s);
  return t;
}

const config_table* find_table(const config& c, const config_table& core, std::string_view name) {
  if (name == core.table()) return &core;
  for (const auto& d : c.dialects)
    if (d->name() == name) return &d->config();
  return nullptr;
}

// "table.key" → its table and key; unknown tables are an error naming the whole key.
void set_key(const config& c, const config_table& core, const std::string& name,
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
  throw std::runtime_error("config file: only strings, integers and booleans are used");
}

void load_file(const config& c, const config_table& core, const std::string& file) {
  toml::table t;
  try {
    t = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(fmt::format("config file {}: {}", file, e.description()));
  }
  for (const auto& [table, node] : t) {
    const auto* tbl = node.as_table();
    if (tbl == nullptr)
      throw std::runtime_error(fmt::format("config file: '{}' must be a table", table.str()));
    const bool known = find_table(c, core, table.str()) != nullptr;
    for (const auto& [k, v] : *tbl) {
      // Dialects not built into this binary: their table may say `enabled`, `prefix` or
      // `listen` (a shared file turning them off), nothing else.
      if (!known && (k.str() == "enabled" || k.str() == "prefix" || k.str() == "listen")) continue;
      set_key(c, core, std::string(table.str()) + "." + std::string(k.str()), toml_scalar(v),
              "config file");
    }
  }
}

}  // namespace

config load_config(const std::string& file, const std::map<std::string, std::string>& flags) {
  config c;
  c.dialects = make_dialects();
  const config_table core = core_table(c);
  if (!file.empty()) load_file(c, core, file);
  core.apply_env();
  for (const auto& d : c.dialects) d->config().apply_env();
  for (const auto& [name, value] : flags) set_key(c, core, name, value, "flag");
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
  return c;
}

std::string describe_config() {
  config c;
  c.dialects = make_dialects();
  std::string out = core_table(c).describe();
  for (const auto& d : c.dialects) out += d->config().describe();
  return out;
}

}  // namespace herald
