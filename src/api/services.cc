#include "api/services.h"

namespace herald {

status connection_counter::acquire(const principal& who, std::size_t per_session_limit,
                                   const core_limits& l) {
  std::lock_guard g(mu_);
  if (!who.login_session.empty()) {
    if (logins_[who.login_session] >= per_session_limit)
      return {errc::too_many_requests, "too many connections for this login session"};
  } else {
    if (apps_[who.app_id] >= l.max_connections_per_app)
      return {errc::too_many_requests, "too many connections for this app"};
    if (tenants_[who.tenant] >= l.max_connections_per_tenant)
      return {errc::too_many_requests, "too many connections for this tenant"};
  }
  if (!who.login_session.empty())
    ++logins_[who.login_session];
  else {
    ++apps_[who.app_id];
    ++tenants_[who.tenant];
  }
  return {};
}

std::string remote_address(const std::string& remote) {
  const auto colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

void release_socket(services& s, std::uint64_t sink_id, bool counted, const principal& who,
                    const session_ref& ses, bool resumable) {
  if (sink_id != 0) s.h.unregister_sink(sink_id);
  if (counted) s.connections.release(who);
  if (ses.id.empty()) return;
  hub* h = &s.h;
  h->with_session(ses, [h, sink_id, resumable](session* x) {
    if (x != nullptr) h->detach(*x, sink_id, resumable);
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
  if (!who.login_session.empty())
    dec(logins_, who.login_session);
  else {
    dec(apps_, who.app_id);
    dec(tenants_, who.tenant);
  }
}

}  // namespace herald
