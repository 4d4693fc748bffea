// The zoom dialect's REST answers (zoom.md §2, §3): the OAuth token endpoint with both grants
// and Zoom-shaped errors, the 426 of a plain GET on the socket path, and Zoom-shaped 404/405.
// Routes run on the blocking pool.
#include <boost/json/object.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "core/clock.h"
#include "dialect/zoom/zoom_context.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::size_t max_token_body = 8192;  // §2: "Body limit 8 KiB"

http_response no_store(http_response r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// A parameter of the token request: the form body's when the body is a form and carries it,
// else the query string's (§2: "if both carry one, the body wins; other body types are
// ignored").
std::string param(const http_request& req, std::string_view name) {
  const auto* ct = req.header("content-type");
  const bool form = ct != nullptr && ct->rfind("application/x-www-form-urlencoded", 0) == 0;
  if (form) {
    if (auto v = form_field(req.body, name)) return *v;
  }
  return form_field(req.query, name).value_or("");
}

std::string joined_scopes(std::uint32_t scopes) {
  std::string out;
  for (const auto& s : scope_names(scopes)) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

http_response token_route(zoom_context& cx, const http_request& req) {
  const std::string addr = cx.svc->auth_failures.client_address(req);
  rate_limiter& failures = *cx.token_failures;
  if (!failures.allows(addr, now_ms())) {
    http_response r = zoom_error(429, "rate_limited", "Too many requests");
    r.cause = error_cause::auth_failures;
    r.headers.emplace_back("Retry-After",
                           std::to_string(failures.retry_after_s(addr, 1, now_ms())));
    return r;
  }
  // Every refusal below counts against the address (§6 token_failures_per_minute).
  auto refuse = [&](int status, std::string_view error, std::string_view reason) {
    (void)failures.take(addr, 1, now_ms());
    return zoom_error(status, error, reason);
  };
  if (req.body.size() > max_token_body) return refuse(413, "invalid_request", "Request too large");
  auto app =
      authenticate_client(*cx.svc, req, param(req, "client_id"), param(req, "client_secret"));
  if (!app) return refuse(401, "invalid_client", "Invalid client_id or client_secret");
  const std::string grant = param(req, "grant_type");
  if (grant == "account_credentials") {
    const std::string account = param(req, "account_id");
    if (account.empty()) return refuse(400, "invalid_request", "Missing account_id");
    if (account != app->tenant) return refuse(400, "invalid_request", "Invalid account_id");
  } else if (grant != "client_credentials") {
    return refuse(400, "unsupported_grant_type", "Unsupported grant type");
  }
  // A native access token of the app (§2): the zoom socket and the native paths accept it.
  const principal who = principal_of_app(*app, false);
  const std::int64_t ttl_s = cx.cfg->token_ttl_s;
  json::object o{
      {"access_token", cx.svc->signer.issue(claims_for(who, "native", "access", ttl_s * 1000))},
      {"token_type", "bearer"},
      {"expires_in", ttl_s},
      {"scope", joined_scopes(app->scopes)}};
  return no_store(json_response(200, o));
}

}  // namespace

http_response zoom_error(int status, std::string_view error, std::string_view reason) {
  json::object o{{"reason", reason}, {"error", error}};
  return no_store(json_response(status, o));
}

void add_zoom_routes(router& r, const std::shared_ptr<zoom_context>& cx) {
  r.add("POST", "/oauth/token", [cx](route_match& m) { return token_route(*cx, m.req); });
  // The socket path reached without an upgrade (an upgrade never reaches the router).
  auto upgrade_required = [](route_match&) {
    return zoom_error(426, "invalid_request", "WebSocket upgrade required");
  };
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"})
    r.add(method, "/ws", upgrade_required);
}

http_response zoom_http(const router& routes, const http_request& req) {
  if (!routes.has_path(req.path)) return zoom_error(404, "invalid_request", "Not found");
  http_response res = routes.dispatch(req);
  if (res.status == 405) {
    // Only the token endpoint has a method of its own; POST is all it takes.
    res = zoom_error(405, "invalid_request", "Method not allowed");
    res.headers.emplace_back("Allow", "POST");
  }
  return res;
}

}  // namespace herald
