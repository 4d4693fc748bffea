// The `[zoom]` configuration table's values (zoom.md §6), filled at configuration load and
// read-only after: shared by the token route, the admin calls and every zoom socket.
// Thread-safe once loaded (plain values, never written again).
#pragma once

#include <cstddef>
#include <cstdint>

namespace herald {

struct zoom_limits {
  std::int64_t token_ttl_s = 3599;              // token lifetime, `expires_in`
  std::int64_t heartbeat_interval_s = 30;       // the client's expected interval (docs, metrics)
  std::int64_t idle_timeout_s = 90;             // no client frame: 4008
  std::int64_t close_grace_s = 5;               // after our close frame, then the TCP drop
  std::int64_t validate_timeout_s = 10;         // upgrade to build_connection: 1013 past it
  std::size_t max_client_frame_bytes = 4096;    // 1009 past it
  std::int64_t client_frames_per_second = 10;   // averaged over 10 s: 1008
  bool single_connection = true;                // a newer socket replaces the older (§3.5)
  bool close_on_token_expiry = false;           // 4001 "token expired" at the token's expiry
  std::int64_t token_failures_per_minute = 20;  // per client address, then 429

  // The window the frame rate is averaged over (§3.8).
  static constexpr std::int64_t rate_window_s = 10;
  // Event types a subscription may list, and stored subscriptions per tenant (§5).
  static constexpr std::size_t max_events = 1000;
  static constexpr std::size_t max_subscriptions_per_tenant = 1000;
};

}  // namespace herald
