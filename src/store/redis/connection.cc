#include "store/redis/connection.h"

#include <array>
#include <future>

#include <fmt/format.h>

#include "store/redis/link.h"

namespace herald::redis {

struct connection::shared : link_status {};

connection::connection(io_thread& io, options opts)
    : io_(io),
      link_(std::make_shared<link>(io, std::move(opts))),
      shared_(std::make_shared<shared>()) {}

connection::~connection() { close_link(io_, link_); }

void connection::set_state_handler(state_handler h) { user_state_ = std::move(h); }

void connection::start() {
  link_->on_state = [s = shared_, user = user_state_](bool up, const std::string& why) {
    s->set(up, why);
    if (user) user(up, why);
  };
  io_.post([l = link_] { l->start(); });
}

void connection::exec(const command& cmd, reply_handler h, std::int64_t timeout_ms) {
  io_.post([l = link_, wire = cmd.wire(), h = std::move(h), timeout_ms]() mutable {
    l->send(wire, timeout_ms, std::move(h));
  });
}

result<reply> connection::call(const command& cmd, std::int64_t timeout_ms) {
  if (io_.on_this_thread()) {
    return error{errc::internal, "redis: blocking call on the connection's own thread"};
  }
  auto p = std::make_shared<std::promise<result<reply>>>();
  auto f = p->get_future();
  exec(
      cmd, [p](result<reply> r) { p->set_value(std::move(r)); }, timeout_ms);
  return f.get();
}

status connection::wait_connected(std::int64_t timeout_ms) {
  return shared_->wait(timeout_ms, "connection");
}

bool connection::connected() const { return shared_->up(); }

std::uint64_t connection::connects() const { return shared_->connects(); }

std::string server_config::durability() const {
  std::string what;
  if (appendonly != "yes") {
    what = "no AOF: an acknowledged write is lost if Redis crashes before its next RDB save";
  } else if (appendfsync == "always") {
    what = "an acknowledged write survives a Redis crash";
  } else if (appendfsync == "everysec") {
    what = "a Redis crash may lose the last second of acknowledged writes";
  } else {
    what = "a Redis crash may lose acknowledged writes the OS had not flushed (about 30 s)";
  }
  return fmt::format("appendonly={} appendfsync={}: {}", appendonly, appendfsync, what);
}

result<reply> call_function(connection& c, const command& cmd, std::string_view library) {
  auto r = c.call(cmd);
  if (!r || !r->is_function_missing()) return r;
  auto load = c.call(command{"FUNCTION", "LOAD", "REPLACE", std::string(library)});
  if (!load) return load.err();
  if (load->is_error()) {
    load->str = "FUNCTION LOAD: " + load->str;
    return load;
  }
  return c.call(cmd);
}

result<server_config> read_server_config(connection& c) {
  constexpr std::array<const char*, 3> names = {"appendonly", "appendfsync", "maxmemory-policy"};
  std::array<std::future<result<reply>>, 3> replies;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto p = std::make_shared<std::promise<result<reply>>>();
    replies[i] = p->get_future();
    c.exec(command{"CONFIG", "GET", names[i]},
           [p](result<reply> r) { p->set_value(std::move(r)); });
  }
  server_config cfg;
  std::array<std::string*, 3> fields = {&cfg.appendonly, &cfg.appendfsync, &cfg.maxmemory_policy};
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto r = replies[i].get();
    if (!r) return r.err();
    // CONFIG GET answers [name, value]; an error reply when CONFIG is renamed or refused.
    if (r->is_error()) {
      return error{errc::unavailable, fmt::format("redis: CONFIG GET {}: {}", names[i], r->str)};
    }
    if (!r->is_array() || r->elements.size() != 2 || !r->elements[1].is_string()) {
      return error{errc::unavailable, fmt::format("redis: CONFIG GET {}: unexpected reply {}",
                                                  names[i], r->to_string())};
    }
    *fields[i] = r->elements[1].str;
  }
  return cfg;
}

}  // namespace herald::redis
