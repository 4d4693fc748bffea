// open_store: picks the back end named by `[core] store`.
#include <filesystem>
#include <system_error>

#include "store/memory/memory_store.h"
#include "store/redis/redis_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace herald {

result<std::unique_ptr<store>> open_store(std::string_view spec, const std::string& data_dir,
                                          const store_open_options& opts) {
  if (spec == "memory") return std::unique_ptr<store>(std::make_unique<memory_store>());
  if (spec == "sqlite") {
    if (data_dir.empty()) return error{errc::bad_message, "store \"sqlite\" needs a data_dir"};
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
      return error{errc::unavailable, "cannot create data_dir " + data_dir + ": " + ec.message()};
    }
    auto s = sqlite_store::open(data_dir);
    if (!s) return std::move(s).err();
    return std::unique_ptr<store>(std::move(*s));
  }
  if (spec.starts_with("redis://") || spec.starts_with("rediss://")) {
    auto u = redis::parse_url(spec);
    if (!u) return std::move(u).err();
    redis_store_options ro;
    ro.conn = opts.redis;
    ro.conn.address = *u;
    ro.log_max_events = opts.log_max_events;
    ro.log_max_events_per_tenant = opts.log_max_events_per_tenant;
    ro.feed_wait_ms = opts.feed_wait_ms;
    ro.follow_all = opts.follow_all;
    auto s = redis_store::open(std::move(ro));
    if (!s) return std::move(s).err();
    return std::unique_ptr<store>(std::move(*s));
  }
  return error{errc::bad_message, "unknown store \"" + std::string(spec) +
                                      "\" (expected \"sqlite\", \"memory\" or redis://HOST:PORT)"};
}

}  // namespace herald
