// Why the server ends a socket, in the core's words. Every dialect maps each reason to its own
// close code and wire message in one table in its folder (native: 4001/4008/..., RingCentral:
// an Error frame plus a close code); nothing below the dialects knows a close-code number.
// Value type; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace herald {

enum class close_reason : std::uint8_t {
  replaced,       // a resume moved the session to another socket
  revoked,        // the credential, the app or the login session behind the socket ended
  admin,          // DELETE /v1/admin/connections/{id}
  drain,          // the server is stopping
  slow_consumer,  // the send queue passed its bound
  heartbeat,      // no inbound traffic within twice the heartbeat interval
  idle,           // no request and no event within the idle timeout
  absolute,       // the socket reached its longest allowed age
  auth_timeout,   // in-band authentication did not arrive in time
  auth_failed,    // the socket presented a bad credential
  forbidden,      // authenticated, but not allowed on this socket
  too_many,       // a connection or rate limit
  protocol,       // the client broke the protocol (a dialect's own rule)
  seq_exhausted,  // the dialect's wire sequence would pass its largest value
};

// A resumable ending leaves the session waiting for its recovery window; the others end it.
constexpr bool is_resumable(close_reason r) noexcept {
  return r != close_reason::revoked && r != close_reason::auth_failed &&
         r != close_reason::forbidden;
}

// The reason's name, for logs and metrics labels ("slow_consumer").
constexpr const char* close_reason_name(close_reason r) noexcept {
  switch (r) {
    case close_reason::replaced:
      return "replaced";
    case close_reason::revoked:
      return "revoked";
    case close_reason::admin:
      return "admin";
    case close_reason::drain:
      return "drain";
    case close_reason::slow_consumer:
      return "slow_consumer";
    case close_reason::heartbeat:
      return "heartbeat";
    case close_reason::idle:
      return "idle";
    case close_reason::absolute:
      return "absolute";
    case close_reason::auth_timeout:
      return "auth_timeout";
    case close_reason::auth_failed:
      return "auth_failed";
    case close_reason::forbidden:
      return "forbidden";
    case close_reason::too_many:
      return "too_many";
    case close_reason::protocol:
      return "protocol";
    case close_reason::seq_exhausted:
      return "seq_exhausted";
  }
  return "unknown";
}

// A request to close a socket: the reason, and a detail for the wire message and the log
// ("login session revoked"); the dialect decides how much of the detail its clients see.
struct kick {
  close_reason why;
  std::string detail;
};

}  // namespace herald
