#include "dialect/dialect.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "api/json_util.h"

namespace herald {

// ---- config_table

const config_key* config_table::find(std::string_view key) const {
  for (const auto& k : keys_)
    if (k.name == key) return &k;
  return nullptr;
}

std::int64_t config_table::parse_int(const std::string& name, const std::string& v) {
  // Digits only: "10s", " 10", "+10" or "1e3" are typos, not numbers.
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  const bool digits = !v.empty() && std::isdigit(static_cast<unsigned char>(v.front()));
  if (!digits || ec != std::errc() || end != v.data() + v.size() ||
      n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw std::runtime_error("config " + name + ": expected a non-negative integer, got '" + v +
                             "'");
  return static_cast<std::int64_t>(n);
}

config_table& config_table::string(std::string key, std::string help, std::string& field) {
  std::string* f = &field;
  keys_.push_back(config_key{std::move(key), config_type::string, "", std::move(help),
                             [f](const std::string& v) { *f = v; }, [f] { return *f; }});
  return *this;
}

config_table& config_table::boolean(std::string key, std::string help, bool& field) {
  const std::string name = table_ + "." + key;
  bool* f = &field;
  keys_.push_back(config_key{
      std::move(key), config_type::boolean, "", std::move(help),
      [name, f](const std::string& v) {
        if (v == "true" || v == "1" || v == "on") {
          *f = true;
        } else if (v == "false" || v == "0" || v == "off") {
          *f = false;
        } else {
          throw std::runtime_error("config " + name + ": expected true or false, got '" + v + "'");
        }
      },
      [f] { return std::string(*f ? "true" : "false"); }});
  return *this;
}

config_table& config_table::sighup(std::initializer_list<std::string_view> keys) {
  for (const auto k : keys) {
    auto it = std::find_if(keys_.begin(), keys_.end(), [k](const auto& c) { return c.name == k; });
    if (it == keys_.end())
      throw std::logic_error("config " + table_ + "." + std::string(k) + ": not bound");
    it->reloadable = true;
  }
  return *this;
}

config_table& config_table::rule(std::string key, std::string what, std::function<bool()> ok) {
  rules_.emplace_back(table_ + "." + key + ": " + what, std::move(ok));
  return *this;
}

void config_table::set(std::string_view key, const std::string& value,
                       std::string_view source) const {
  const config_key* k = find(key);
  if (k == nullptr)
    throw std::runtime_error(
        fmt::format("{}: unknown configuration key '{}.{}'", source, table_, key));
  k->set(value);
}

void config_table::apply_env() const {
  for (const auto& k : keys_) {
    std::string env = "HERALD_" + table_ + "_" + k.name;
    for (char& ch : env) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (const char* v = std::getenv(env.c_str())) k.set(v);
  }
}

void config_table::check() const {
  for (const auto& [what, ok] : rules_)
    if (!ok()) throw std::runtime_error(what);
}

std::string config_table::describe() const {
  std::string out;
  for (const auto& k : keys_)
    out += fmt::format("{:<40} {:<10} {:<5} {}\n", table_ + "." + k.name, k.get(), k.unit, k.help);
  return out;
}

// ---- dialect

dialect::dialect(std::string name, std::string default_prefix)
    : config_(name), name_(std::move(name)), prefix_(std::move(default_prefix)) {
  config_.boolean("enabled", "serve this dialect (its admin calls and validators stay)", enabled_)
      .string("prefix", "path prefix of its routes and sockets ('' or '/name')", prefix_)
      .string("listen", "a listener of its own (not supported yet: leave empty)", listen_)
      .rule("prefix", "'' or '/name' required (no trailing '/')",
            [this] { return prefix_.empty() || (prefix_.front() == '/' && prefix_.back() != '/'); })
      .rule("listen", "a separate listener is not supported yet",
            [this] { return listen_.empty(); });
}

void dialect::setup(services_setup&) const {}

void dialect::install_admin(dialect_admin&) {}

http_response dialect::serve(const router& routes, const http_request& req) const {
  return routes.dispatch(req);
}

http_response dialect::render_error(const http_request&, int status, std::string message) const {
  return json_response(status,
                       error_body(status == 400 ? errc::bad_message : errc::too_large, message));
}

}  // namespace herald
