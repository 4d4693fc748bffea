// The RingCentral dialect's own limits (ringcentral.md §6): one named field per key of its
// `[ringcentral]` table with its default and unit, bound to the table in rc_dialect.cc (the
// common `enabled`, `prefix`, `listen` keys are the dialect type's). Values only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace herald {

struct ringcentral_limits {
  std::size_t max_connections_per_session = 50;  // open sockets per login: 4029
  std::size_t recovery_buffer_size = 100;        // deliveries kept per WSG session for recovery
  std::int64_t recovery_timeout_s = 180;         // a WSG session outlives its socket this long
  std::int64_t idle_timeout_s = 1800;            // no inbound text frame, no notification: 4008
  std::int64_t absolute_timeout_s = 86400;       // socket age: 4009
  std::size_t max_active_requests = 10;          // unanswered ClientRequests per socket: 429
  std::int64_t ping_interval_s = 30;             // RFC 6455 ping after this much outbound quiet
  std::int64_t notify_pause_ms = 50;  // §8.4 spacing after ConnectionDetails / sub reply
  std::int64_t ws_token_ttl_s = 600;
  std::int64_t access_token_ttl_s = 3600;     // default; a grant may ask 600..86400
  std::int64_t refresh_token_ttl_s = 604800;  // default and upper bound of a grant's ask
  std::size_t max_filters = 100;              // eventFilters per subscription
  std::size_t max_frame_bytes = 65536;        // inbound frame: 1009
  bool compress = true;                       // accept permessage-deflate

  static constexpr std::int64_t min_access_token_ttl_s = 600;
  static constexpr std::int64_t max_access_token_ttl_s = 86400;
  static constexpr std::int64_t min_refresh_token_ttl_s = 600;
  static constexpr std::int64_t min_notify_pause_ms = 20;
};

}  // namespace herald
