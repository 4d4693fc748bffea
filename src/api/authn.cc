#include "api/authn.h"

#include "api/json_util.h"
#include "auth/crypto.h"
#include "core/clock.h"

namespace herald {
namespace {
error auth_error(std::string m, error_cause c = error_cause::unspecified) {
  return {errc::auth_failed, std::move(m), c};
}
}  // namespace

principal principal_of_app(const app_record& a, bool via_api_key) {
  principal p;
  p.kind = principal_kind::app;
  p.tenant = a.tenant;
  p.app_id = a.id;
  p.app_role = a.app_role;
  p.scopes = a.scopes;
  p.via_api_key = via_api_key;
  return p;
}

token_claims claims_for(const principal& who, std::string_view aud, std::string_view kind,
                        std::int64_t ttl_ms) {
  token_claims c;
  c.aud = std::string(aud);
  c.kind = std::string(kind);
  c.jti = random_token(16);
  c.principal_kind = who.kind == principal_kind::app ? "app" : "user";
  c.tenant = who.tenant;
  c.app_id = who.app_id;
  c.user_id = who.user_id;
  c.login_session = who.login_session;
  c.iat_ms = now_ms();
  c.exp_ms = c.iat_ms + ttl_ms;
  return c;
}

result<principal> principal_of_claims(const services& s, const token_claims& c) {
  if (c.principal_kind == "app") {
    auto a = s.dir.app(c.app_id);
    if (!a) return auth_error("the token's app no longer exists", error_cause::revoked);
    return principal_of_app(*a, false);
  }
  if (c.principal_kind != "user") return auth_error("malformed token", error_cause::malformed);
  auto u = s.dir.user(c.user_id);
  if (!u) return auth_error("the token's user no longer exists", error_cause::revoked);
  if (u->blocked) return auth_error("the user is blocked", error_cause::revoked);
  if (!c.login_session.empty()) {
    auto l = s.dir.login(c.login_session);
    if (!l || l->ended) return auth_error("the login session has ended", error_cause::revoked);
    if (l->expires_ms != 0 && l->expires_ms < now_ms())
      return auth_error("the login session expired", error_cause::expired);
  }
  if (!c.app_id.empty() && !s.dir.app(c.app_id))
    return auth_error("the login's app no longer exists", error_cause::revoked);
  principal p;
  p.kind = principal_kind::user;
  p.tenant = u->tenant;
  p.app_id = c.app_id;
  p.scopes = scope_subscribe | scope_history;
  p.user_id = u->id;
  p.login_session = c.login_session;
  p.extension_id = u->extension_id;
  p.user_admin = u->admin;
  p.trackers = u->trackers;
  return p;
}

result<principal> current_rights(const services& s, const principal& who) {
  if (who.kind == principal_kind::app) {
    auto a = s.dir.app(who.app_id);
    if (!a) return auth_error("the app no longer exists", error_cause::revoked);
    return principal_of_app(*a, who.via_api_key);
  }
  token_claims c;
  c.principal_kind = "user";
  c.tenant = who.tenant;
  c.app_id = who.app_id;
  c.user_id = who.user_id;
  c.login_session = who.login_session;
  return principal_of_claims(s, c);
}

void apply_rights_change(services& s, const std::string& user_id, const std::string& app_id) {
  const services* svc = &s;
  auto affected = [user_id, app_id](const principal& who) {
    return (!user_id.empty() && who.user_id == user_id) ||
           (!app_id.empty() && who.kind == principal_kind::app && who.app_id == app_id);
  };
  s.h.refresh_where([affected](const session_sink& k) { return affected(k.who()); },
                    [svc](const principal& old) -> std::optional<principal> {
                      auto p = current_rights(*svc, old);
                      if (!p) return std::nullopt;
                      return std::move(*p);
                    },
                    affected);
}

result<principal> authenticate_credential(const services& s, std::string_view cred,
                                          std::string_view audience) {
  if (cred.empty()) return auth_error("missing credential", error_cause::missing);
  if (cred.find('.') != std::string_view::npos) {
    auto c = s.signer.verify(cred, now_ms());
    if (!c) return c.err();
    if (c->aud != audience)
      return auth_error("token not valid here (audience " + c->aud + ")", error_cause::wrong_kind);
    if (c->kind != "access") return auth_error("not an access token", error_cause::wrong_kind);
    return principal_of_claims(s, *c);
  }
  auto a = s.dir.app_by_key_hash(hash_secret(cred));
  if (!a) return auth_error("unknown API key");
  return principal_of_app(*a, true);
}

result<principal> authenticate(const services& s, const http_request& req,
                               std::string_view audience) {
  if (const auto* h = req.header("authorization")) {
    std::string_view v = *h;
    if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer "))
      return authenticate_credential(s, v.substr(7), audience);
    return auth_error("Authorization must use the Bearer scheme", error_cause::wrong_kind);
  }
  if (const auto* k = req.header("x-api-key")) return authenticate_credential(s, *k, audience);
  return auth_error("missing credentials (Authorization: Bearer or X-API-Key)",
                    error_cause::missing);
}

result<principal> authenticate_ws_token(services& s, std::string_view token,
                                        std::string_view audience, bool allow_access) {
  if (token.find('.') == std::string_view::npos) {
    if (allow_access) return authenticate_credential(s, token, audience);
    return auth_error("malformed token", error_cause::malformed);
  }
  auto c = s.signer.verify(token, now_ms());
  if (!c) return c.err();
  if (c->aud != audience)
    return auth_error("token not valid here (audience " + c->aud + ")", error_cause::wrong_kind);
  if (c->kind == "access" && allow_access) return principal_of_claims(s, *c);
  if (c->kind != "ws") return auth_error("not a ws token", error_cause::wrong_kind);
  auto p = principal_of_claims(s, *c);
  if (!p) return p;
  auto fresh = s.st.claim_once("ws:" + c->jti, c->exp_ms);
  if (!fresh) return error{errc::unavailable, "store unavailable"};
  if (!*fresh) return auth_error("ws token already used", error_cause::reused);
  return p;
}

std::optional<std::string> form_field(std::string_view body, std::string_view name) {
  return query_param(body, name);
}

result<app_record> authenticate_client(const services& s, const http_request& req,
                                       std::string_view form_id, std::string_view form_secret) {
  std::string id(form_id), secret(form_secret);
  if (const auto* h = req.header("authorization")) {
    std::string_view v = *h;
    if (v.size() > 6 && (v.substr(0, 6) == "Basic " || v.substr(0, 6) == "basic ")) {
      auto raw = base64_decode(v.substr(6));
      if (!raw) return auth_error("malformed Basic credentials", error_cause::malformed);
      const auto colon = raw->find(':');
      if (colon == std::string::npos)
        return auth_error("malformed Basic credentials", error_cause::malformed);
      if (!form_id.empty() && form_id != raw->substr(0, colon))
        return auth_error("client_id in the body does not match the Basic credentials");
      id = raw->substr(0, colon);
      secret = raw->substr(colon + 1);
    }
  }
  if (id.empty()) return auth_error("missing client credentials", error_cause::missing);
  auto a = s.dir.app_by_client_id(id);
  if (!a || !constant_time_equal(a->secret_hash, hash_secret(secret)))
    return auth_error("invalid client_id or client_secret");
  return *a;
}

}  // namespace herald
