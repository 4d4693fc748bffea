// The bounds and timings of one Redis connection (commands or subscriber). Every limit here is
// a field with a default and a unit; the cluster store will fill them from `[redis]` config.
// Thread-safe: a value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "store/redis/url.h"

namespace herald::redis {

struct options {
  url address;
  std::string client_name = "herald";      // CLIENT SETNAME on every connection (CLIENT LIST)
  std::int64_t connect_timeout_ms = 2000;  // resolve + TCP connect + handshake replies
  // A command with no reply within it completes with a timeout error (its reply, if it comes,
  // is skipped). If nothing at all was read from the socket since the command was queued, the
  // connection is deemed dead and dropped (then reconnected).
  std::int64_t command_timeout_ms = 5000;
  std::int64_t reconnect_min_ms = 50;    // first retry after a drop; doubles on each failure
  std::int64_t reconnect_max_ms = 2000;  // up to this
  // Bytes queued and not yet written; a command past it is refused at once (no unbounded
  // buffer when Redis or the network is slower than the callers).
  std::size_t max_send_buffer_bytes = 16u << 20;
  std::size_t max_pending_commands = 100000;  // sent or queued, awaiting their replies
  // One reply's bytes on the wire. Past it the command fails naming the limit and the
  // connection is dropped (a RESP stream cannot skip a reply it has not parsed).
  std::size_t max_reply_bytes = 64u << 20;
  std::int64_t ping_interval_ms = 1000;  // subscriber: a PING this often proves the link live
};

}  // namespace herald::redis
