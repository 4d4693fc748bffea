// The limits of the core and the native dialect (design.md §4, native.md §5): one named field
// per limit with its default and unit, filled by app/config. Values only.
#pragma once

#include <cstdint>
#include <string>

#include "core/filter.h"

namespace herald {

struct core_limits {
  std::size_t send_queue_bytes = 4194304;           // per socket, then 4010
  std::size_t unauth_send_queue_bytes = 65536;      // the same before authentication
  std::size_t max_connections_per_app = 25000;      // sockets of one app principal
  std::size_t max_connections_per_tenant = 100000;  // sockets of one tenant's apps
  std::int64_t log_retention_s = 2592000;           // events older are pruned
  // Comma-separated proxy addresses whose X-Forwarded-For names the client (failed-auth
  // counting); from any other peer the header is ignored.
  std::string trusted_proxies;
  std::int64_t idempotency_window_s = 86400;  // an Idempotency-Key is remembered
  std::int64_t prune_interval_s = 60;         // retention and expiry run this often
};

struct native_limits {
  std::int64_t heartbeat_interval_s = 30;   // server ping after this much quiet; 2x: 4008
  std::int64_t idle_timeout_s = 1800;       // no request and no event either way: 4008
  std::int64_t absolute_timeout_s = 86400;  // connection age: 4009
  std::int64_t recovery_window_s = 180;     // a session outlives its socket this long
  std::size_t recovery_buffer = 1000;       // last deliveries kept for resume
  std::size_t max_log_replay = 10000;       // a resume older than the ring pages the log this far
  std::size_t max_inflight = 10;            // unanswered requests per socket
  std::size_t max_message_bytes = 65536;    // inbound frame: 1009
  std::size_t max_connections_per_session = 50;  // sockets per login session: 4029
  std::int64_t auth_timeout_s = 10;              // in-band auth deadline: 4002
  std::int64_t close_timeout_s = 10;             // closing handshake, then TCP drop
  std::int64_t access_token_ttl_s = 3600;
  std::int64_t ws_token_ttl_s = 30;
  std::size_t max_publish_bytes = 1048576;  // POST /v1/events body: 413
  std::size_t max_body_bytes = 65536;       // other native bodies: 413
  std::size_t max_batch = 1000;             // events per publish: 413
  filter_limits filters;                    // max_filters and friends: invalid_filter
  std::size_t max_path_bytes = 8192;        // request path and query: 414
  // A history page stops before the event that would take its reply past this; next_cursor
  // continues there (one event always goes, so a page is never empty while events remain).
  std::size_t max_history_bytes = 8388608;
  // Events an app may publish per second, and in a burst: 429 + Retry-After past them. Sized
  // so a benchmark on one machine never meets them.
  std::size_t publish_rate = 1000000;
  std::size_t publish_burst = 2000000;
  // Failed authentications per remote address per second, and in a burst: past them every
  // attempt from that address gets 429 (REST) or too_many_requests + 4029 (socket).
  std::size_t auth_fail_rate = 5;
  std::size_t auth_fail_burst = 20;
};

}  // namespace herald
