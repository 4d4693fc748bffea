// The smsgw dialect's own limits (smsgw.md §7): one named field per key of its `[smsgw]` table
// with its default and unit, bound to the table in smsgw_dialect.cc (the common `enabled`,
// `prefix`, `listen` keys are the dialect type's). Values only; read-only after start-up.
#pragma once

#include <cstddef>
#include <cstdint>

namespace herald {

struct smsgw_limits {
  std::int64_t auth_timeout_s = 10;          // first frame after the 101: else auth_error + 1008
  std::int64_t close_grace_s = 5;            // the closing handshake may take this long
  std::int64_t ping_interval_s = 30;         // {"type":"ping"} + a ping control frame
  std::int64_t liveness_timeout_s = 60;      // nothing inbound (control pongs count): 4008
  std::int64_t absolute_timeout_s = 86400;   // a socket's age: 4009
  std::size_t max_auth_frame_bytes = 4096;   // the auth frame: else 1009
  std::size_t max_frame_bytes = 65536;       // any later frame: else 1009
  std::size_t max_body_bytes = 102400;       // REST bodies: else 413
  std::int64_t client_msg_rate = 10;         // client frames per second after auth...
  std::int64_t client_msg_burst = 50;        // ...and in a burst: else 1008 Too many messages
  std::size_t max_connections_per_key = 50;  // sockets one API key may hold
  std::int64_t ws_token_ttl_s = 60;          // a wst_ token lives (single use)
  std::size_t rate_limit_app = 100;          // REST requests per key of role app per window
  std::size_t rate_limit_admin = 500;        // the same for role admin
  std::int64_t rate_limit_window_s = 60;     // the sliding window of both
  std::size_t auth_fail_limit = 10;          // failed auths per address in auth_fail_window...
  std::int64_t auth_fail_window_s = 300;     // ...block the address for auth_fail_block
  std::int64_t auth_fail_block_s = 900;
  bool send_enabled = false;  // POST /v1/sms/send: else 501
};

}  // namespace herald
