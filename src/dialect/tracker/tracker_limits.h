// The tracker dialect's own limits (tracker.md §7): one named field per key of its `[tracker]`
// table with its default and unit, bound in tracker_dialect.cc (`enabled`, `prefix`, `listen`
// are the dialect type's). Values only; read-only after start-up.
#pragma once

#include <cstddef>
#include <cstdint>

namespace herald {

struct tracker_limits {
  std::int64_t heartbeat_interval_ms = 30000;   // announced; a server `X` after this much silence
  std::int64_t heartbeat_timeout_ms = 90000;    // no client frame: close 4008
  std::size_t max_frame_bytes = 65536;          // a larger client frame: close 1009
  std::size_t max_frames_per_second = 50;       // per socket, `X` included: else dropped, error 15
  std::size_t max_trackers_per_request = 1000;  // error 9
  std::size_t max_trackers_per_socket = 10000;  // error 9
  std::size_t max_request_bytes = 16384;        // a REST body: 412, code 9
  std::int64_t hash_ttl_s = 2592000;            // a hash lives this long after its last use
  std::size_t max_hashes_per_user = 100;        // live hashes of one user: else 104
  std::size_t login_failures_per_minute = 10;   // per login: else 105
};

}  // namespace herald
