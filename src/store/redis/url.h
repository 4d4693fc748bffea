// `redis://HOST[:PORT][/DB]`, the value of `--store` / `core.store` for the Redis back end.
// Strict: the scheme, a host, a port from 1 to 65535 (6379 when omitted) and a database
// number (0 when omitted) made of decimal digits only; anything else (credentials, a query,
// a second path segment, a sign, spaces) is refused with a message naming the part.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/errc.h"

namespace herald::redis {

struct url {
  std::string host;  // a name, an IPv4 address or an IPv6 address (written [::1] in the URL)
  std::uint16_t port = 6379;
  std::uint32_t db = 0;  // SELECTed on every (re)connection when not 0
  std::string to_string() const;
};

// errc::bad_message naming the URL and the part: "redis url 'redis://h:99999': port: must be
// from 1 to 65535".
result<url> parse_url(std::string_view text);

}  // namespace herald::redis
