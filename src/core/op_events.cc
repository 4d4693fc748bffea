#include "core/op_events.h"

#include <string>

#include "core/metrics.h"
#include "core/oplog.h"

namespace herald::op_events {

void socket_opened(const socket_note& s) {
  oplog::write_limited(oplog::level::info, "socket_open", s.dialect, "socket opened",
                       {{"event", "socket_open"},
                        {"dialect", s.dialect},
                        {"tenant", s.tenant},
                        {"app", s.app},
                        {"user", s.user},
                        {"remote", s.remote},
                        {"conn", s.conn_id}});
}

void socket_closed(const socket_note& s, int code, std::string_view reason, std::string_view detail,
                   std::int64_t duration_ms, std::uint64_t delivered) {
  auto& m = global_metrics();
  const std::string code_s = std::to_string(code);
  m.closes.add({s.dialect, m.tenants.label(s.tenant), code_s});
  oplog::write_limited(oplog::level::info, "socket_close", reason,
                       s.authenticated ? "socket closed" : "socket closed before authenticating",
                       {{"event", "socket_close"},
                        {"authenticated", s.authenticated},
                        {"dialect", s.dialect},
                        {"tenant", s.tenant},
                        {"app", s.app},
                        {"user", s.user},
                        {"remote", s.remote},
                        {"conn", s.conn_id},
                        {"code", code},
                        {"reason", reason},
                        {"detail", detail},
                        {"duration_ms", duration_ms},
                        {"delivered", delivered}});
}

std::string_view auth_failure_reason(error_cause cause) {
  switch (cause) {
    case error_cause::missing:
      return "missing";
    case error_cause::malformed:
      return "malformed";
    case error_cause::expired:
      return "expired";
    case error_cause::reused:
      return "reused";
    case error_cause::revoked:
      return "revoked";
    case error_cause::wrong_kind:
      return "wrong_kind";
    default:
      return "invalid";
  }
}

void auth_failed(std::string_view dialect, std::string_view reason, std::string_view remote,
                 std::string_view detail) {
  global_metrics().auth_failures.add({dialect, reason});
  oplog::write_limited(oplog::level::info, "auth_failure", reason, "authentication failed",
                       {{"event", "auth_failure"},
                        {"dialect", dialect},
                        {"reason", reason},
                        {"remote", remote},
                        {"detail", detail}});
}

std::string_view refusal_limit(error_cause cause) {
  switch (cause) {
    case error_cause::auth_failures:
      return "auth_failures";
    case error_cause::connections:
      return "connections";
    case error_cause::connections_per_app:
      return "connections_per_app";
    case error_cause::connections_per_tenant:
      return "connections_per_tenant";
    case error_cause::connections_per_session:
      return "connections_per_session";
    case error_cause::publish_rate:
      return "publish_rate";
    default:
      return "rate";
  }
}

void refused(std::string_view dialect, std::string_view limit, std::string_view tenant,
             std::string_view remote, int code, std::string_view detail) {
  global_metrics().refusals.add({dialect, limit});
  oplog::write_limited(oplog::level::info, "refusal", limit, "refused by a limit",
                       {{"event", "refusal"},
                        {"dialect", dialect},
                        {"limit", limit},
                        {"tenant", tenant},
                        {"remote", remote},
                        {"code", code},
                        {"detail", detail}});
}

void admin_change(std::string_view method, std::string_view path, int status,
                  std::string_view remote) {
  oplog::write(oplog::level::info, "admin change",
               {{"event", "admin_change"},
                {"method", method},
                {"path", path},
                {"status", status},
                {"remote", remote}});
}

void store_error(std::string_view op, std::string_view message) {
  global_metrics().store_errors.fetch_add(1, std::memory_order_relaxed);
  oplog::write_limited(oplog::level::error, "store_error", op, "store error",
                       {{"event", "store_error"}, {"op", op}, {"error", message}});
}

}  // namespace herald::op_events
