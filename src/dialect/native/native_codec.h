// Decoding of native client messages (native.md §3): bytes → a checked command, with the error
// a reply must carry (code, message naming the field, and the request id when it was readable).
// Pure: no sockets, no state; the fuzz target drives it directly. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "api/filter_json.h"
#include "core/errc.h"
#include "core/filter.h"

namespace herald {

struct native_msg {
  enum class kind { auth, subscribe, unsubscribe, request, ping, pong };
  kind type = kind::ping;
  std::string id;
  // auth
  std::string token, api_key, resume;
  std::optional<std::uint64_t> last_seq;
  // subscribe / unsubscribe (unsubscribe: no filters = all)
  std::vector<filter_spec> filters;
  bool snapshot = false;
  // request
  std::string method, path, body, idempotency_key;
};

struct native_decoded {
  native_msg msg;
  std::optional<error> err;  // set when the message is refused; msg.id may still be set
};

// `max_filters` bounds a subscribe before any filter is compiled.
native_decoded decode_native(std::string_view text, std::size_t max_filters);

}  // namespace herald
