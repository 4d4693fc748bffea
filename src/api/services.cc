#include "api/services.h"

namespace herald {

status connection_counter::acquire(const principal& who, std::size_t per_session_limit,
                                   const core_limits& l) {
  std::lock_guard g(mu_);
  // Every socket counts against its app and its tenant, whatever the dialect or grant that
  // admitted it (a login session's sockets too: a client-credentials login per socket must not
  // slip past the app's bound), and a login session's against that session as well.
  const bool login = !who.login_session.empty();
  auto count = [](const auto& m, const std::string& k) -> std::size_t {
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  };
  if (login && count(logins_, who.login_session) >= per_session_limit)
    return error{errc::too_many_requests, "too many connections for this login session",
                 error_cause::connections_per_session};
  if (count(apps_, who.app_id) >= l.max_connections_per_app)
    return error{errc::too_many_requests, "too many connections for this app",
                 error_cause::connections_per_app};
  if (count(tenants_, who.tenant) >= l.max_connections_per_tenant)
    return error{errc::too_many_requests, "too many connections for this tenant",
                 error_cause::connections_per_tenant};
  if (login) ++logins_[who.login_session];
  ++apps_[who.app_id];
  ++tenants_[who.tenant];
  return {};
}

std::string remote_address(const std::string& remote) {
  const auto colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

void release_socket(services& s, std::uint64_t sink_id, bool counted, const principal& who,
                    const session_ref& ses, bool resumable, std::optional<close_reason> why) {
  if (sink_id != 0) s.h.unregister_sink(sink_id);
  if (counted) s.connections.release(who);
  if (ses.id.empty()) return;
  hub* h = &s.h;
  h->with_session(ses, [h, sink_id, resumable, why](session* x) {
    if (x != nullptr) h->detach(*x, sink_id, resumable, why);
  });
}

connection_info describe_socket(std::string id, std::string dialect, const principal& who,
                                const session_ref& ses, const std::string& remote,
                                std::int64_t opened_ms) {
  connection_info c;
  c.id = std::move(id);
  c.dialect = std::move(dialect);
  c.tenant = who.tenant;
  c.app = who.app_id;
  c.user = who.user_id;
  c.login = who.login_session;
  c.session = ses.id;
  c.remote = remote;
  c.opened_ms = opened_ms;
  return c;
}

void connection_counter::release(const principal& who) {
  std::lock_guard g(mu_);
  auto dec = [](auto& m, const std::string& k) {
    auto it = m.find(k);
    if (it == m.end()) return;
    if (--it->second == 0) m.erase(it);
  };
  if (!who.login_session.empty()) dec(logins_, who.login_session);
  dec(apps_, who.app_id);
  dec(tenants_, who.tenant);
}

}  // namespace herald
