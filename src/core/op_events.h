// The operational events of issue #14, each one call that writes its log line (core/oplog.h)
// and counts its metric (core/metrics.h) together, so that the two cannot disagree. None is on
// the delivery path. Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/errc.h"

namespace herald::op_events {

// Who a socket is, for its open and close lines.
struct socket_note {
  std::string_view dialect;
  std::string_view conn_id;
  std::string_view remote;
  std::string_view tenant;  // empty before authentication
  std::string_view app;
  std::string_view user;
  bool authenticated = true;  // false: the socket never got past authentication
};

void socket_opened(const socket_note& s);
// `code`: the close code on the wire; `reason`: the server's close_reason name, or "client"
// when the client closed (or the connection dropped); `detail`: the server's text. A socket
// that never authenticated says so (`authenticated: false`, "socket closed before
// authenticating"): its reason is then why (auth_timeout, auth_failed, too_many, client...).
void socket_closed(const socket_note& s, int code, std::string_view reason, std::string_view detail,
                   std::int64_t duration_ms, std::uint64_t delivered);

// A failed authentication: `reason` is auth_failure_reason() of the error's cause; `detail` is
// the server's own message (never the credential). `remote` may be empty.
void auth_failed(std::string_view dialect, std::string_view reason, std::string_view remote,
                 std::string_view detail);
// The metrics label of an authentication error's cause: missing, malformed, expired, reused,
// revoked, wrong_kind, or invalid for any other (from the code, never from the message text).
std::string_view auth_failure_reason(error_cause cause);

// A limit refused a request or socket: `limit` names it (refusal_limit() of a too-many error's
// cause, send_queue for a slow consumer, max_connections and max_connections_per_address at
// accept), `code` the HTTP status or close code answered.
void refused(std::string_view dialect, std::string_view limit, std::string_view tenant,
             std::string_view remote, int code, std::string_view detail);
// The metrics label of a too-many error's cause: auth_failures, connections_per_app,
// connections_per_tenant, connections_per_session, connections (a dialect's own bound),
// publish_rate, or rate for any other.
std::string_view refusal_limit(error_cause cause);

// A successful admin change (POST, PUT, PATCH, DELETE under /v1/admin/).
void admin_change(std::string_view method, std::string_view path, int status,
                  std::string_view remote);

// A store operation failed.
void store_error(std::string_view op, std::string_view message);

}  // namespace herald::op_events
