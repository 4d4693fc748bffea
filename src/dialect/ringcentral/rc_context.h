// What the RingCentral dialect's routes and sockets share: the services, its configuration,
// its prefix, the wsc codec and its own router (ClientRequests reach only it), plus the token
// and login-session helpers both sides use. Built once at install; lives as long as the server.
// Thread-safe: immutable after install; the helpers call thread-safe services only (they may
// block on the store where noted, so not on shard threads).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "api/router.h"
#include "api/services.h"
#include "core/live.h"
#include "dialect/ringcentral/rc_codec.h"
#include "dialect/ringcentral/rc_limits.h"

namespace herald {

struct rc_context {
  rc_context(services& s, router& r, ringcentral_limits c, std::string p, std::size_t slot)
      : svc(s),
        cfg(std::move(c)),
        prefix(std::move(p)),
        wsc(s.token_key),
        routes(r),
        render_slot(slot) {}

  services& svc;
  live<ringcentral_limits> cfg;  // SIGHUP publishes its reloadable keys' new values
  const std::string prefix;      // "/ringcentral"
  const rc::wsc_codec wsc;
  router& routes;                 // this dialect's own: REST companions, ClientRequests
  const std::size_t render_slot;  // event::rendered() slot of the ServerNotification body
};

inline constexpr std::string_view rc_audience = "ringcentral";

// A signed token of this dialect (`kind` access | refresh | ws), re-checked against the
// directory: app gone, user gone or blocked, login session ended or expired all fail. Sets
// principal.login_session for app principals too (client_credentials opens a login session).
// `claims` (optional) receives the verified claims. No store access.
result<principal> rc_principal_of_token(const rc_context& cx, std::string_view token,
                                        std::string_view kind, token_claims* claims = nullptr);

// A short-lived access token of `who` (for ClientRequests dispatched to the router).
std::string rc_access_token_for(const rc_context& cx, const principal& who, std::int64_t ttl_ms);

// "http://HOST:PORT" as the client reached us (or core.public_url).
std::string rc_http_base(const services& s, const http_request& req);

// Ends a login session: directory, store (blocking), and its sockets (HRD-401, close 4001,
// not recoverable). False when there is no such open login.
bool rc_end_login(rc_context& cx, const std::string& login_id);

// Registers the REST routes (§2) on cx.routes.
void add_ringcentral_routes(const std::shared_ptr<rc_context>& cx);

}  // namespace herald
