// open_store: picks the back end named by `[core] store`.
#include <filesystem>
#include <system_error>

#include "store/memory/memory_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace herald {

result<std::unique_ptr<store>> open_store(std::string_view spec, const std::string& data_dir) {
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
    return error{errc::unavailable, "redis store not built in this version"};
  }
  return error{errc::bad_message,
               "unknown store \"" + std::string(spec) + "\" (expected \"sqlite\" or \"memory\")"};
}

}  // namespace herald
