// The RingCentral REST companions (ringcentral.md §2): OAuth token grants opening login
// sessions, ws tokens, revoke, extension info, and the RC-shaped refusals. Routes run on the
// blocking pool (HTTP) or are dispatched there for a socket's ClientRequest.
#include <algorithm>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/numbers.h"
#include "api/records.h"
#include "auth/jwt.h"
#include "core/clock.h"
#include "dialect/ringcentral/rc_context.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::string_view rc_scope = "WebSocketsSubscription ReadAccounts";

http_response invalid_grant(std::string_view message, bool expired = false) {
  return rc::oauth_error(400, "invalid_grant", expired ? "OAU-210" : "OAU-140", message);
}
http_response invalid_request(std::string_view message) {
  return rc::oauth_error(400, "invalid_request", "OAU-101", message);
}

// 401 OAU-213 (OAU-128 when the token only expired).
http_response token_refused(const error& e) {
  if (e.code == errc::too_many_requests) {
    // Past the failed-authentication limit (authenticate_api): one token back within a second.
    http_response r = rc::api_error(429, "CMN-301", "Request rate exceeded");
    r.headers.emplace_back("Retry-After", "1");
    r.cause = e.cause;
    return r;
  }
  http_response r = is_token_expired(e)
                        ? rc::api_error(401, "OAU-128", "Access token expired")
                        : rc::api_error(401, "OAU-213", "Token not found or invalid: " + e.message);
  r.cause = e.cause;
  return r;
}

std::optional<std::string_view> bearer_of(const http_request& req) {
  const auto* h = req.header("authorization");
  if (h == nullptr) return std::nullopt;
  std::string_view v = *h;
  if (v.size() < 7) return std::nullopt;
  std::string scheme(v.substr(0, 6));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer" || v[6] != ' ') return std::nullopt;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

result<principal> authenticate_api(const rc_context& cx, const http_request& req) {
  auto tok = bearer_of(req);
  result<principal> p =
      !tok || tok->empty()
          ? result<principal>(
                error{errc::auth_failed, "missing Bearer access token", error_cause::missing})
          : rc_principal_of_token(cx, *tok, "access");
  if (p || is_token_expired(p.err())) return p;
  // A bad token counts against the client's address (a valid one is always checked, never
  // refused for others' failures); past the limit the refusal is 429 CMN-301.
  auth_policy& policy = cx.svc.auth_failures;
  const std::string addr = policy.client_address(req);
  const bool limited = !policy.may_try(addr, "", now_ms());
  policy.failed(addr, "", now_ms());
  if (limited)
    return error{errc::too_many_requests, "too many failed authentications",
                 error_cause::auth_failures};
  return p;
}

std::string field(const http_request& req, std::string_view name) {
  return form_field(req.body, name).value_or("");
}

bool in_reach(const services& s, const app_record& app, const std::string& tenant) {
  if (app.app_role == role::admin) return true;
  return tenant == app.tenant || s.dir.in_subtree(tenant, app.tenant);
}

std::int64_t clamp_ttl(const std::string& asked, std::int64_t def, std::int64_t lo,
                       std::int64_t hi) {
  // Clamped, never rejected (ringcentral.md §2); read strictly: "10abc" is not 10 but no number,
  // which takes the default like an absent value.
  const auto v = parse_i64(asked);
  return std::clamp(v.value_or(def), lo, hi);
}

std::string issue(const services& s, const token_claims& base, std::string_view kind,
                  std::int64_t ttl_s) {
  token_claims c = base;
  c.kind = std::string(kind);
  c.jti = random_token(12);
  c.exp_ms = c.iat_ms + ttl_s * 1000;
  return s.signer.issue(c);
}

struct grant_ttls {
  std::int64_t access_s = 0, refresh_s = 0;
};

// The grant's asked TTLs, clamped to the configured ranges (never rejected, §2.1).
grant_ttls ttls_of(const rc_context& cx, const http_request& req) {
  const auto& cfg = *cx.cfg;
  grant_ttls t;
  t.access_s = clamp_ttl(field(req, "access_token_ttl"), cfg.access_token_ttl_s,
                         ringcentral_limits::min_access_token_ttl_s,
                         ringcentral_limits::max_access_token_ttl_s);
  const std::int64_t hi = std::max<std::int64_t>(cfg.refresh_token_ttl_s, 1);
  t.refresh_s = clamp_ttl(field(req, "refresh_token_ttl"), cfg.refresh_token_ttl_s,
                          std::min(ringcentral_limits::min_refresh_token_ttl_s, hi), hi);
  return t;
}

// The token pair of a login session (new or continued) and the grant's reply.
http_response grant_reply(rc_context& cx, const app_record& app, const user_record* user,
                          const std::string& login_id, const grant_ttls& t) {
  token_claims c;
  c.aud = std::string(rc_audience);
  c.principal_kind = user ? "user" : "app";
  c.tenant = user ? user->tenant : app.tenant;
  c.app_id = app.id;
  c.user_id = user ? user->id : "";
  c.login_session = login_id;
  c.iat_ms = now_ms();
  c.scopes = std::string(rc_scope);
  json::object o{{"access_token", issue(cx.svc, c, "access", t.access_s)},
                 {"token_type", "bearer"},
                 {"expires_in", t.access_s},
                 {"refresh_token", issue(cx.svc, c, "refresh", t.refresh_s)},
                 {"refresh_token_expires_in", t.refresh_s},
                 {"scope", rc_scope},
                 {"owner_id", user ? user->extension_id : ""},
                 {"endpoint_id", new_id("ep_")},
                 {"session_id", login_id}};
  return json_response(200, o);
}

// Opens a login session (§4.5) and answers with its first token pair.
http_response open_login(rc_context& cx, const app_record& app, const user_record* user,
                         const http_request& req) {
  const grant_ttls t = ttls_of(cx, req);
  login_record l;
  l.id = new_id("lgn_");
  l.tenant = user ? user->tenant : app.tenant;
  l.user_id = user ? user->id : "";
  l.app_id = app.id;
  l.dialect = "ringcentral";
  l.created_ms = now_ms();
  l.expires_ms = l.created_ms + t.refresh_s * 1000;  // as long as its newest refresh token
  if (status st = persist(cx.svc.st, l); !st)
    return rc::oauth_error(503, "temporarily_unavailable", "OAU-501", st.err().message);
  cx.svc.dir.put_login(l);
  return grant_reply(cx, app, user, l.id, t);
}

// Users of `login` in the app's reach whose extension (number or id) is `ext` (any if empty).
std::vector<user_record> find_users(const services& s, const app_record& app,
                                    const std::string& login, const std::string& ext) {
  std::vector<user_record> out;
  for (auto& u : s.dir.users_by_login(login)) {
    if (!in_reach(s, app, u.tenant)) continue;
    if (!ext.empty() && u.extension_number != ext && u.extension_id != ext) continue;
    out.push_back(std::move(u));
  }
  return out;
}

// How a token path's failed client or grant credential is reported to token_route, which
// counts it against the address's failed-authentication limit.
struct grant_outcome {
  std::string address;   // the client's (services::auth_failures)
  bool limited = false;  // past the limit: a failure answers 429
  bool credential_failed = false;
  std::string login;  // the login a password was tried for (counted per login too)
};

// RingCentral's answer past the failed-authentication limit: 429 CMN-301 with Retry-After.
http_response too_many_failures(services& s, const std::string& addr,
                                const std::string& login = {}) {
  http_response r = rc::api_error(429, "CMN-301", "Request rate exceeded");
  r.cause = error_cause::auth_failures;
  r.headers.emplace_back("Retry-After",
                         std::to_string(s.auth_failures.retry_after_s(addr, login, now_ms())));
  return r;
}

http_response password_grant(rc_context& cx, const app_record& app, const http_request& req,
                             grant_outcome& out) {
  const std::string username = field(req, "username"), password = field(req, "password");
  if (username.empty()) return invalid_request("username: required");
  if (password.empty()) return invalid_request("password: required");
  const std::string ext = field(req, "extension");
  auto found = find_users(cx.svc, app, username, ext);
  if (found.empty() && ext.empty()) {
    if (const auto star = username.rfind('*'); star != std::string::npos)
      found = find_users(cx.svc, app, username.substr(0, star), username.substr(star + 1));
  }
  if (found.size() > 1) return invalid_grant("more than one user matches; name the extension");
  const bool known = !found.empty() && !found[0].password_hash.empty();
  const bool matches = verify_login_password(password, known ? &found[0].password_hash : nullptr);
  if (!known || !matches || found[0].blocked) {
    out.credential_failed = true;
    return invalid_grant("Invalid resource owner credentials");
  }
  return open_login(cx, app, &found[0], req);
}

http_response jwt_grant(rc_context& cx, const app_record& app, const http_request& req,
                        grant_outcome& out) {
  const std::string assertion = field(req, "assertion");
  if (assertion.empty()) return invalid_request("assertion: required");
  auto claims = jwt_verify(assertion, cx.svc.token_key, now_ms() / 1000);
  if (!claims) {
    out.credential_failed = !is_jwt_expired(claims.err());  // a forged or garbled assertion
    return invalid_grant("Invalid JWT: " + claims.err().message, is_jwt_expired(claims.err()));
  }
  auto str = [&](const char* k) {
    const auto* v = claims->if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  if (str("iss") != "herald") return invalid_grant("Invalid JWT: issuer");
  const auto rec = cx.svc.dir.jwt(str("jti"));
  if (!rec || rec->user_id != str("sub"))
    return invalid_grant("Invalid JWT: unknown or deleted credential");
  if (rec->expires_ms && *rec->expires_ms <= now_ms()) return invalid_grant("JWT expired", true);
  const std::string azp = str("azp");
  if (!azp.empty() && azp != app.client_id)
    return invalid_grant("Invalid JWT: issued for another client");
  auto user = cx.svc.dir.user(rec->user_id);
  if (!user || user->blocked) return invalid_grant("Invalid JWT: user unavailable");
  if (!in_reach(cx.svc, app, user->tenant))
    return invalid_grant("Invalid JWT: user outside the app's account");
  return open_login(cx, app, &*user, req);
}

http_response refresh_grant(rc_context& cx, const app_record& app, const http_request& req) {
  const std::string token = field(req, "refresh_token");
  if (token.empty()) return invalid_request("refresh_token: required");
  token_claims c;
  auto who = rc_principal_of_token(cx, token, "refresh", &c);
  if (!who)
    return invalid_grant("Invalid refresh token: " + who.err().message,
                         is_token_expired(who.err()));
  if (c.app_id != app.id) return invalid_grant("Invalid refresh token: issued to another client");
  auto fresh = cx.svc.st.claim_once("rc-refresh:" + c.jti, c.exp_ms);
  if (!fresh)
    return rc::oauth_error(503, "temporarily_unavailable", "OAU-501", fresh.err().message);
  if (!*fresh) return invalid_grant("Invalid refresh token: already used");
  std::optional<user_record> user;
  if (who->kind == principal_kind::user) user = cx.svc.dir.user(who->user_id);
  const grant_ttls t = ttls_of(cx, req);
  const std::int64_t until = now_ms() + t.refresh_s * 1000;
  auto l = cx.svc.dir.update_login(
      c.login_session, [&](login_record& r) { r.expires_ms = std::max(r.expires_ms, until); });
  if (!l || l->ended) return invalid_grant("Invalid refresh token: login session ended");
  if (status st = persist(cx.svc.st, *l); !st)
    return rc::oauth_error(503, "temporarily_unavailable", "OAU-501", st.err().message);
  return grant_reply(cx, app, user ? &*user : nullptr, c.login_session, t);
}

// `limited`: the address is past its failed-authentication limit. Cheap credentials (a client
// secret's hash, a signed JWT or refresh token) are still checked, so a valid one is never
// refused for others' failures; a password is not (its PBKDF2 is the work the limit spares).
http_response token_grant(rc_context& cx, const http_request& req, bool limited,
                          grant_outcome& out) {
  if (req.body.size() > 65536) return invalid_request("body too large");
  auto app = authenticate_client(cx.svc, req, field(req, "client_id"), field(req, "client_secret"));
  if (!app) {
    out.credential_failed = true;
    http_response r =
        rc::oauth_error(401, "invalid_client", "OAU-153", "Invalid client: " + app.err().message);
    r.cause = app.err().cause;
    return r;
  }
  if (app->app_role == role::publisher)
    return rc::oauth_error(400, "unauthorized_client", "OAU-251", "A publisher app cannot log in");
  const std::string grant = field(req, "grant_type");
  if (grant.empty()) return invalid_request("grant_type: required");
  if (grant == "password") {
    // Counted per login as well as per address: guesses at one login spread over many
    // addresses meet its limit. Refused before the check (its PBKDF2 is what the limit spares).
    out.login = "rc:" + field(req, "username");
    if (limited || !cx.svc.auth_failures.may_try(out.address, out.login, now_ms())) {
      out.limited = out.credential_failed = true;
      return {};
    }
    return password_grant(cx, *app, req, out);
  }
  if (grant == "urn:ietf:params:oauth:grant-type:jwt-bearer") return jwt_grant(cx, *app, req, out);
  if (grant == "refresh_token") return refresh_grant(cx, *app, req);
  if (grant == "client_credentials") return open_login(cx, *app, nullptr, req);
  return rc::oauth_error(400, "unsupported_grant_type", "OAU-101",
                         "Unsupported grant type: " + grant);
}

// One failed-authentication policy on the token path (the host's generic limiter skips this
// dialect: its clients take only 400/401 as ordinary refusals): a failed client secret,
// password or JWT counts against the address; past the limit a failure (or any password
// grant) answers RingCentral's 429 CMN-301, while ordinary failures keep their 400/401.
http_response token_route(rc_context& cx, const http_request& req) {
  grant_outcome out;
  out.address = cx.svc.auth_failures.client_address(req);
  out.limited = !cx.svc.auth_failures.may_try(out.address, "", now_ms());
  http_response res = token_grant(cx, req, out.limited, out);
  if (!out.credential_failed) return res;
  cx.svc.auth_failures.failed(out.address, out.login, now_ms());
  return out.limited ? too_many_failures(cx.svc, out.address, out.login) : res;
}

http_response wstoken_route(rc_context& cx, const http_request& req) {
  auto who = authenticate_api(cx, req);
  if (!who) return token_refused(who.err());
  if (!who->has(scope_subscribe))
    return rc::api_error(403, "CMN-401",
                         "In order to call this API endpoint, the subscribe scope is required");
  const token_claims c = claims_for(*who, rc_audience, "ws", cx.cfg->ws_token_ttl_s * 1000);
  std::string base = rc_http_base(cx.svc, req);
  if (base.rfind("https://", 0) == 0)
    base = "wss://" + base.substr(8);
  else if (base.rfind("http://", 0) == 0)
    base = "ws://" + base.substr(7);
  json::object o{{"uri", base + cx.prefix + "/ws"},
                 {"ws_access_token", cx.svc.signer.issue(c)},
                 {"expires_in", cx.cfg->ws_token_ttl_s}};
  return json_response(200, o);
}

http_response revoke_route(rc_context& cx, const http_request& req) {
  auto app = authenticate_client(cx.svc, req, field(req, "client_id"), field(req, "client_secret"));
  if (!app) {
    // A client secret guessed here counts like one guessed on the token path.
    const std::string addr = cx.svc.auth_failures.client_address(req);
    const bool limited = !cx.svc.auth_failures.may_try(addr, "", now_ms());
    cx.svc.auth_failures.failed(addr, "", now_ms());
    if (limited) return too_many_failures(cx.svc, addr);
    http_response r =
        rc::oauth_error(401, "invalid_client", "OAU-153", "Invalid client: " + app.err().message);
    r.cause = app.err().cause;
    return r;
  }
  const std::string token = field(req, "token");
  if (!token.empty()) {
    auto c = cx.svc.signer.verify(token, now_ms());
    if (c && c->aud == rc_audience && (c->kind == "access" || c->kind == "refresh") &&
        c->app_id == app->id && !c->login_session.empty())
      rc_end_login(cx, c->login_session);
  }
  return json_response(200, std::string("{}"));
}

http_response extension_route(rc_context& cx, const http_request& req, const std::string& acc,
                              const std::string& ext) {
  auto who = authenticate_api(cx, req);
  if (!who) return token_refused(who.err());
  auto not_found = [&] {
    return rc::api_error(404, "CMN-102", "Resource for parameter [extensionId] is not found",
                         "extensionId");
  };
  if (acc != "~" && acc != who->tenant) return not_found();
  std::string want = ext;
  if (ext == "~") {
    if (who->kind != principal_kind::user) return not_found();
    want = who->extension_id;
  }
  if (who->kind == principal_kind::user && !who->user_admin && want != who->extension_id)
    return not_found();
  for (const auto& u : cx.svc.dir.users(who->tenant)) {
    if (u.extension_id != want) continue;
    json::object o{{"id", u.extension_id},
                   {"uri", rc_http_base(cx.svc, req) + cx.prefix + "/restapi/v1.0/account/" +
                               u.tenant + "/extension/" + u.extension_id},
                   {"extensionNumber", u.extension_number},
                   {"name", u.name},
                   {"status", u.blocked ? "Disabled" : "Enabled"},
                   {"type", "User"},
                   {"account", json::object{{"id", u.tenant}}}};
    return json_response(200, o);
  }
  return not_found();
}

}  // namespace

result<principal> rc_principal_of_token(const rc_context& cx, std::string_view token,
                                        std::string_view kind, token_claims* claims) {
  auto c = cx.svc.signer.verify(token, now_ms());
  if (!c) return c.err();
  if (c->aud != rc_audience)
    return error{errc::auth_failed, "token not valid here (audience " + c->aud + ")",
                 error_cause::wrong_kind};
  if (c->kind != kind)
    return error{
        errc::auth_failed,
        "not a" + std::string(kind == "access" ? "n " : " ") + std::string(kind) + " token",
        error_cause::wrong_kind};
  auto p = principal_of_claims(cx.svc, *c);
  if (!p) return p;
  if (!c->login_session.empty()) {
    auto l = cx.svc.dir.login(c->login_session);
    if (!l || l->ended)
      return error{errc::auth_failed, "the login session has ended", error_cause::revoked};
    if (l->expires_ms != 0 && l->expires_ms < now_ms())
      return error{errc::auth_failed, "the login session expired", error_cause::expired};
    p->login_session = c->login_session;
  }
  if (claims != nullptr) *claims = std::move(*c);
  return p;
}

std::string rc_access_token_for(const rc_context& cx, const principal& who, std::int64_t ttl_ms) {
  return cx.svc.signer.issue(claims_for(who, rc_audience, "access", ttl_ms));
}

std::string rc_http_base(const services& s, const http_request& req) {
  if (!s.public_url.empty()) {
    std::string u = s.public_url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  return (req.scheme == "https" ? "https://" : "http://") + req.host;
}

bool rc_end_login(rc_context& cx, const std::string& login_id) {
  bool was_open = false;
  auto l = cx.svc.dir.update_login(login_id, [&](login_record& r) {
    was_open = !r.ended;
    r.ended = true;
  });
  if (!l || !was_open) return false;
  (void)persist(cx.svc.st, *l);
  cx.svc.h.kick_where(
      [login_id](const session_sink& k) { return k.who().login_session == login_id; },
      kick{close_reason::revoked, "login session revoked"});
  return true;
}

void add_ringcentral_routes(const std::shared_ptr<rc_context>& p) {
  router& r = p->routes;
  r.add("POST", "/restapi/oauth/token", [p](route_match& m) { return token_route(*p, m.req); });
  r.add("POST", "/restapi/oauth/wstoken", [p](route_match& m) { return wstoken_route(*p, m.req); });
  r.add("POST", "/restapi/oauth/revoke", [p](route_match& m) { return revoke_route(*p, m.req); });
  r.add("GET", "/restapi/v1.0/account/{account}/extension/{extension}",
        [p](route_match& m) { return extension_route(*p, m.req, m.params[0], m.params[1]); });
  auto socket_only = [](route_match&) {
    return rc::api_error(
        400, "CMN-101",
        "Subscriptions with WebSocket delivery are managed over the WebSocket (ClientRequest)");
  };
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "PATCH"}) {
    r.add(method, "/restapi/v1.0/subscription", socket_only);
    r.add(method, "/restapi/v1.0/subscription/{id}", socket_only);
    r.add(method, "/restapi/v1.0/subscription/{id}/renew", socket_only);
  }
}

}  // namespace herald
