// The admin API (design.md §4): tenants, apps, users (+ JWT credentials), subjects,
// connections. Bearer admin key; JSON in and out; every change is written to the store first,
// then to the directory, then sockets that lost their credentials are closed.
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/cluster_link.h"
#include "api/filter_json.h"
#include "api/json_util.h"
#include "api/native_routes.h"
#include "api/numbers.h"
#include "api/records.h"
#include "auth/crypto.h"
#include "auth/jwt.h"
#include "core/clock.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::size_t max_admin_body = 65536;
constexpr std::size_t max_string = 256;
constexpr std::size_t max_jwts_per_user = 100;

using handler = std::function<http_response(route_match&, const json::object&)>;

error bad(std::string m) { return {errc::bad_message, std::move(m)}; }
http_response not_found(std::string what) {
  return error_response(errc::not_found, what + " not found");
}

// Admin key check + body parse for every admin route.
route_fn admin(services& s, bool with_body, handler h) {
  return [&s, with_body, h = std::move(h)](route_match& m) -> http_response {
    const auto* auth = m.req.header("authorization");
    const std::string_view v = auth ? std::string_view(*auth) : std::string_view();
    if (v.size() < 8 || (v.substr(0, 7) != "Bearer " && v.substr(0, 7) != "bearer ") ||
        !constant_time_equal(v.substr(7), s.admin_key))
      return error_response(
          error{errc::auth_failed, "admin key required (Authorization: Bearer)",
                auth == nullptr ? error_cause::missing : error_cause::unspecified});
    if (m.req.body.size() > max_admin_body)
      return error_response(errc::too_large, "admin bodies are limited to 64 KiB");
    json::object body;
    if (with_body) {
      auto v2 =
          parse_json(m.req.body.empty() ? std::string_view("{}") : std::string_view(m.req.body));
      if (!v2) return error_response(v2.err());
      if (!v2->is_object()) return error_response(errc::bad_message, "body: must be a JSON object");
      body = std::move(v2->as_object());
    }
    return h(m, body);
  };
}

// A string field within the admin length bound.
result<std::optional<std::string>> field(const json::object& o, std::string_view name) {
  auto v = get_string(o, name);
  if (!v) return v;
  if (*v && (*v)->size() > max_string)
    return bad(std::string(name) + ": longer than 256 characters");
  return v;
}

// `{"<plural>":[…],"next_cursor":…}` over records sorted by id.
template <class R, class F>
http_response list_page(const route_match& m, const char* plural, std::vector<R> recs, F&& id_of,
                        std::function<json::object(const R&)> render) {
  std::size_t limit = 100;
  if (auto l = query_param(m.req.query, "limit")) {
    auto n = number_param("limit", *l, 1, 1000);
    if (!n) return error_response(n.err());
    limit = static_cast<std::size_t>(*n);
  }
  std::string after;
  if (auto c = query_param(m.req.query, "cursor"); c && !c->empty()) {
    auto raw = base64url_decode(*c);
    if (!raw) return error_response(errc::bad_message, "cursor: malformed");
    after = *raw;
  }
  std::sort(recs.begin(), recs.end(), [&](const R& a, const R& b) { return id_of(a) < id_of(b); });
  json::array items;
  std::string last;
  bool more = false;
  for (const R& r : recs) {
    if (!after.empty() && id_of(r) <= after) continue;
    if (items.size() == limit) {
      more = true;
      break;
    }
    items.push_back(render(r));
    last = id_of(r);
  }
  json::object out{
      {plural, items},
      {"next_cursor", more ? json::value(base64url_encode(last)) : json::value(nullptr)}};
  return json_response(200, out);
}

std::string new_api_key(const std::string& format) {
  if (format == "sgw") {
    std::string raw = random_token(24);
    return "sgw_" + sha256_hex(raw).substr(0, 32);
  }
  return "hk_" + random_token(32);
}

void end_user_access(services& s, const std::string& user_id) {
  for (const auto& id : s.dir.end_logins_of(user_id, "")) {
    if (auto l = s.dir.login(id)) (void)persist(s.st, *l);
  }
  s.h.kick_where([user_id](const session_sink& k) { return k.who().user_id == user_id; },
                 kick{close_reason::revoked, "credential revoked"});
}

// ---- tenants
http_response create_tenant(services& s, const json::object& b) {
  auto id = field(b, "id");
  if (!id) return error_response(id.err());
  if (!*id || !valid_tenant_id(**id))
    return error_response(errc::bad_message, "id: [A-Za-z0-9_.-]{1,64} required");
  auto parent = field(b, "parent");
  if (!parent) return error_response(parent.err());
  tenant_record t{**id, parent->value_or(""), now_ms()};
  if (!t.parent.empty() && !s.dir.tenant_exists(t.parent))
    return not_found("parent tenant '" + t.parent + "'");
  if (s.dir.tenant_exists(t.id))
    return error_response(errc::conflict, "tenant '" + t.id + "' exists");
  if (status st = persist(s.st, t); !st) return error_response(st.err());
  if (!s.dir.add_tenant(t)) return error_response(errc::conflict, "tenant '" + t.id + "' exists");
  return json_response(201, admin_json(t));
}

// ---- apps
// `scopes` of an app of role `r` (absent or null: `fallback`); a publisher never subscribes.
result<std::uint32_t> scopes_field(const json::object& b, role r, std::uint32_t fallback) {
  std::uint32_t scopes = fallback;
  if (const auto* sc = b.if_contains("scopes"); sc != nullptr && !sc->is_null()) {
    if (!sc->is_array()) return bad("scopes: must be an array");
    scopes = 0;
    for (const auto& e : sc->get_array()) {
      auto one = e.is_string() ? parse_scope(e.get_string()) : std::nullopt;
      if (!one) return bad("scopes: publish, subscribe or history");
      scopes |= *one;
    }
  }
  if (r == role::publisher && (scopes & scope_subscribe))
    return bad("scopes: a publisher never subscribes");
  return scopes;
}

// PATCH {name?, role?, scopes?}: a changed role without `scopes` takes the role's defaults.
// Open sockets of the app take the new rights at once (apply_rights_change).
http_response patch_app(services& s, const std::string& id, const json::object& b) {
  auto a = s.dir.app(id);
  if (!a) return not_found("app '" + id + "'");
  for (const char* k : {"tenant", "api_key_format", "client_id"})
    if (b.contains(k)) return error_response(errc::bad_message, std::string(k) + ": cannot change");
  auto name = field(b, "name"), rl = field(b, "role");
  for (auto* f : {&name, &rl})
    if (!*f) return error_response(f->err());
  if (*name && (*name)->empty()) return error_response(errc::bad_message, "name: not empty");
  const auto r = *rl ? parse_role(**rl) : std::optional<role>(a->app_role);
  if (!r) return error_response(errc::bad_message, "role: one of app, admin, publisher");
  auto scopes = scopes_field(b, *r, *rl && *r != a->app_role ? default_scopes(*r) : a->scopes);
  if (!scopes) return error_response(scopes.err());
  if (*name) a->name = **name;
  a->app_role = *r;
  a->scopes = *scopes;
  if (status st = persist(s.st, *a); !st) return error_response(st.err());
  s.dir.put_app(*a);
  apply_rights_change(s, "", id);
  return json_response(200, admin_json(*a));
}

http_response create_app(services& s, const json::object& b) {
  auto tenant = field(b, "tenant"), name = field(b, "name"), rl = field(b, "role"),
       fmt = field(b, "api_key_format");
  for (auto* f : {&tenant, &name, &rl, &fmt})
    if (!*f) return error_response(f->err());
  if (!*tenant) return error_response(errc::bad_message, "tenant: required");
  if (!s.dir.tenant_exists(**tenant)) return not_found("tenant '" + **tenant + "'");
  if (!*name || (*name)->empty()) return error_response(errc::bad_message, "name: required");
  auto r = parse_role(rl->value_or(""));
  if (!r) return error_response(errc::bad_message, "role: one of app, admin, publisher");
  const std::string format = fmt->value_or("native");
  if (format != "native" && format != "sgw")
    return error_response(errc::bad_message, "api_key_format: native or sgw");
  auto scopes = scopes_field(b, *r, default_scopes(*r));
  if (!scopes) return error_response(scopes.err());
  app_record a;
  a.id = new_id("app_");
  a.tenant = **tenant;
  a.name = **name;
  a.app_role = *r;
  a.scopes = *scopes;
  a.client_id = "cl_" + random_token(15);
  const std::string secret = random_token(32);
  const std::string key = new_api_key(format);
  a.secret_hash = hash_secret(secret);
  a.api_key_hash = hash_secret(key);
  a.api_key_format = format;
  a.created_ms = now_ms();
  if (status st = persist(s.st, a); !st) return error_response(st.err());
  s.dir.put_app(a);
  json::object o = admin_json(a);
  o["client_secret"] = secret;
  o["api_key"] = key;
  return json_response(201, o);
}

http_response delete_app(services& s, const std::string& id) {
  auto a = s.dir.app(id);
  if (!a) return not_found("app '" + id + "'");
  if (status st = s.st.erase_record("app", id); !st) return error_response(st.err());
  s.dir.remove_app(id);
  for (const auto& lid : s.dir.end_logins_of("", id))
    if (auto l = s.dir.login(lid)) (void)persist(s.st, *l);
  s.h.kick_where([id](const session_sink& k) { return k.who().app_id == id; },
                 kick{close_reason::revoked, "credential revoked"});
  return json_response(204, std::string());
}

http_response rotate_key(services& s, const std::string& id) {
  auto a = s.dir.app(id);
  if (!a) return not_found("app '" + id + "'");
  const std::string key = new_api_key(a->api_key_format);
  a->api_key_hash = hash_secret(key);
  if (status st = persist(s.st, *a); !st) return error_response(st.err());
  s.dir.put_app(*a);
  s.h.kick_where(
      [id](const session_sink& k) { return k.who().app_id == id && k.who().via_api_key; },
      kick{close_reason::revoked, "credential revoked"});
  return json_response(200, json::object{{"api_key", key}});
}

// ---- users
result<user_record> apply_user(services& s, user_record u, const json::object& b, bool create) {
  auto str_field = [&](const char* k, std::string& dst) -> status {
    auto v = field(b, k);
    if (!v) return v.err();
    if (*v) dst = **v;
    return {};
  };
  for (auto [k, dst] : {std::pair{"login", &u.login},
                        {"name", &u.name},
                        {"extension_id", &u.extension_id},
                        {"extension_number", &u.extension_number},
                        {"time_zone", &u.time_zone}}) {
    if (status st = str_field(k, *dst); !st) return st.err();
  }
  if (u.login.empty()) return bad("login: required");
  if (u.extension_id.empty() ||
      u.extension_id.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos)
    return bad("extension_id: URL-safe characters required");
  for (auto [k, dst] : {std::pair{"blocked", &u.blocked}, {"admin", &u.admin}}) {
    auto v = get_bool(b, k);
    if (!v) return v.err();
    if (*v) *dst = **v;
  }
  if (auto pw = field(b, "password"); !pw) {
    return pw.err();
  } else if (*pw) {
    u.password_hash = (*pw)->empty() ? std::string() : hash_password(**pw);
  }
  if (const auto* t = b.if_contains("trackers")) {
    if (t->is_null()) {
      u.trackers.reset();
    } else if (t->is_array() && t->get_array().size() <= 10000) {
      std::vector<std::string> l;
      for (const auto& e : t->get_array()) {
        if (e.is_string())
          l.emplace_back(e.get_string());
        else if (e.is_int64())
          l.push_back(std::to_string(e.get_int64()));
        else
          return bad("trackers: strings or integers");
      }
      u.trackers = std::move(l);
    } else {
      return bad("trackers: null or an array of at most 10000 ids");
    }
  }
  if (create && u.name.empty()) u.name = u.login;
  if (create && u.extension_number.empty()) u.extension_number = u.extension_id;
  if (s.dir.user_conflicts(u))
    return error{errc::conflict, "login or extension_id taken in tenant"};
  return u;
}

http_response create_user(services& s, const json::object& b) {
  auto tenant = field(b, "tenant");
  if (!tenant) return error_response(tenant.err());
  if (!*tenant) return error_response(errc::bad_message, "tenant: required");
  if (!s.dir.tenant_exists(**tenant)) return not_found("tenant '" + **tenant + "'");
  user_record u;
  u.id = new_id("usr_");
  u.tenant = **tenant;
  u.created_ms = now_ms();
  if (!b.contains("extension_id")) {
    do {
      u.extension_id =
          std::to_string(100000 + (std::hash<std::string>{}(random_token(8)) % 900000000));
    } while (s.dir.user_conflicts(u));
  }
  auto r = apply_user(s, u, b, true);
  if (!r) return error_response(r.err());
  if (status st = persist(s.st, *r); !st) return error_response(st.err());
  s.dir.put_user(*r);
  return json_response(201, admin_json(*r));
}

http_response patch_user(services& s, const std::string& id, const json::object& b) {
  auto u = s.dir.user(id);
  if (!u) return not_found("user '" + id + "'");
  if (b.contains("tenant")) return error_response(errc::bad_message, "tenant: cannot change");
  auto r = apply_user(s, *u, b, false);
  if (!r) return error_response(r.err());
  if (status st = persist(s.st, *r); !st) return error_response(st.err());
  s.dir.put_user(*r);
  if (b.contains("password") || (r->blocked && !u->blocked))
    end_user_access(s, id);
  else
    apply_rights_change(s, id, "");  // admin flag, extension, trackers: open sockets at once
  return json_response(200, admin_json(*r));
}

http_response delete_user(services& s, const std::string& id) {
  if (!s.dir.user(id)) return not_found("user '" + id + "'");
  if (status st = s.st.erase_record("user", id); !st) return error_response(st.err());
  s.dir.remove_user(id);
  for (const auto& j : s.dir.jwts_of(id)) {
    (void)s.st.erase_record("jwt", j.jti);
    s.dir.remove_jwt(j.jti);
  }
  end_user_access(s, id);
  return json_response(204, std::string());
}

http_response create_jwt(services& s, const std::string& id, const json::object& b) {
  auto u = s.dir.user(id);
  if (!u) return not_found("user '" + id + "'");
  if (s.dir.jwts_of(id).size() >= max_jwts_per_user)
    return error_response(errc::conflict, "a user holds at most 100 JWT credentials");
  auto exp = get_int(b, "expires_in");
  if (!exp) return error_response(exp.err());
  auto client = field(b, "client_id");
  if (!client) return error_response(client.err());
  if (*client && !s.dir.app_by_client_id(**client))
    return not_found("client_id '" + **client + "'");
  jwt_record j;
  j.jti = new_id("jwt_");
  j.user_id = id;
  j.client_id = client->value_or("");
  j.created_ms = now_ms();
  json::object claims{{"iss", "herald"},
                      {"sub", id},
                      {"ten", u->tenant},
                      {"jti", j.jti},
                      {"iat", j.created_ms / 1000}};
  if (exp->value_or(0) > 0) {
    j.expires_ms = j.created_ms + **exp * 1000;
    claims["exp"] = *j.expires_ms / 1000;
  }
  if (!j.client_id.empty()) claims["azp"] = j.client_id;
  if (status st = persist(s.st, j); !st) return error_response(st.err());
  s.dir.put_jwt(j);
  json::object o{{"jwt", jwt_sign(claims, s.token_key)},
                 {"jti", j.jti},
                 {"expires_at", j.expires_ms ? json::value(format_rfc3339_ms(*j.expires_ms))
                                             : json::value(nullptr)}};
  return json_response(201, o);
}

// ---- subjects
result<subject_record> find_subject(services& s, const route_match& m, const std::string& id) {
  if (auto t = query_param(m.req.query, "tenant")) {
    auto r = s.dir.subject(*t, id);
    if (!r) return error{errc::not_found, "subject '" + id + "' not found in tenant '" + *t + "'"};
    return *r;
  }
  auto all = s.dir.subjects_with_id(id);
  if (all.empty()) return error{errc::not_found, "subject '" + id + "' not found"};
  if (all.size() > 1) return bad("tenant: several tenants hold subject '" + id + "'; name one");
  return all.front();
}

// Stores a subject change with its kind's rules (design.md §4): checked and completed first;
// the events the change emits (lifecycle) commit with the record in one transaction, before
// the reply. The directory takes the change first (so no event published meanwhile slips past
// a new block) and goes back if the store refuses it. Never after the write: in cluster mode a
// change made through another node may reach this node's directory between the write and its
// reply, and a put then would overwrite it with this older one (the cluster's store re-applies
// the written record itself, ordered against its feed: docs/cluster.md "Records").
status store_subject(services& s, const subject_record* before, subject_record& r) {
  const auto rules = s.subject_kinds.find(r.kind);
  if (rules != s.subject_kinds.end() && rules->second.check) {
    if (status st = rules->second.check(before, r); !st) return st;
  }
  std::vector<event_draft> drafts;
  if (rules != s.subject_kinds.end() && rules->second.events)
    drafts = rules->second.events(before, r);
  s.dir.put_subject(r);
  status st;
  if (drafts.empty()) {
    st = persist(s.st, r);
  } else if (auto appended = s.st.append(std::move(drafts), subject_append_record(r)); !appended) {
    st = std::move(appended).err();
  }
  if (!st) {
    if (before != nullptr)
      s.dir.put_subject(*before);
    else
      s.dir.remove_subject(r.tenant, r.id);
  }
  return st;
}

http_response put_subject(services& s, const std::string& id, const json::object& b) {
  if (!valid_subject_id(id)) return error_response(errc::bad_message, "id: [A-Za-z0-9_.:-]{1,128}");
  auto tenant = field(b, "tenant"), kind = field(b, "kind"), label = field(b, "label");
  for (auto* f : {&tenant, &kind, &label})
    if (!*f) return error_response(f->err());
  if (!*tenant) return error_response(errc::bad_message, "tenant: required");
  if (!s.dir.tenant_exists(**tenant)) return not_found("tenant '" + **tenant + "'");
  auto existing = s.dir.subject(**tenant, id);
  subject_record r = existing.value_or(subject_record{});
  if (existing) {
    if (existing->corrupted)
      return error_response(errc::already_corrupted, "subject '" + id + "' is corrupted");
    if (*kind && **kind != existing->kind)
      return error_response(errc::conflict, "kind: cannot change");
  } else {
    if (!*kind) return error_response(errc::bad_message, "kind: required");
    const std::string& k = **kind;
    if (k.empty() || k.size() > 32 ||
        k.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos)
      return error_response(errc::bad_message, "kind: [a-z0-9_.-]{1,32}");
    r.tenant = **tenant;
    r.id = id;
    r.kind = k;
    r.label = id;
    r.created_ms = now_ms();
  }
  if (*label) r.label = **label;
  if (const auto* a = b.if_contains("attrs")) {
    if (!a->is_object()) return error_response(errc::bad_message, "attrs: must be an object");
    r.attrs = json::serialize(*a);
  }
  for (auto [k, dst] : {std::pair{"blocked", &r.blocked}, {"corrupted", &r.corrupted}}) {
    auto v = get_bool(b, k);
    if (!v) return error_response(v.err());
    if (*v) *dst = **v;
  }
  if (status st = store_subject(s, existing ? &*existing : nullptr, r); !st)
    return error_response(st.err());
  if (existing && existing->blocked && !r.blocked && !r.corrupted) {
    // native.md §3.3: snapshot sessions get the state again, if newer than what they saw.
    if (auto state = s.st.state(r.tenant, r.id); state && *state) s.h.subject_unblocked(**state);
  }
  return json_response(existing ? 200 : 201, admin_json(r));
}

// GET /v1/admin/connections: every socket, filtered by ?tenant=, ?app=, ?dialect=, paged by id.
http_response list_connections(services& s, const route_match& m) {
  const auto tenant = query_param(m.req.query, "tenant");
  const auto app = query_param(m.req.query, "app");
  const auto dialect = query_param(m.req.query, "dialect");
  if (tenant && !valid_tenant_id(*tenant))
    return error_response(errc::bad_message, "tenant: not a tenant id");
  if (app && (app->empty() || app->size() > max_string))
    return error_response(errc::bad_message, "app: not an app id");
  static const std::set<std::string, std::less<>> dialects{"native", "ringcentral", "zoom", "smsgw",
                                                           "tracker"};
  if (dialect && !dialects.contains(*dialect))
    return error_response(errc::bad_message, "dialect: unknown '" + *dialect +
                                                 "' (native, ringcentral, zoom, smsgw or tracker)");
  const std::string node = s.cluster != nullptr ? s.cluster->node_id() : "local";
  std::vector<json::object> rows;
  for (auto& c : s.h.connections()) rows.push_back(connection_json(c, node));
  // Cluster mode: every other live node's sockets too.
  if (s.cluster != nullptr)
    for (auto& o : s.cluster->others_connections()) rows.push_back(std::move(o));
  auto text = [](const json::object& o, const char* k) {
    const auto* v = o.if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  std::erase_if(rows, [&](const json::object& o) {
    return (tenant && text(o, "tenant") != *tenant) || (app && text(o, "app") != *app) ||
           (dialect && text(o, "dialect") != *dialect);
  });
  return list_page<json::object>(
      m, "connections", std::move(rows), [&](const json::object& o) { return text(o, "id"); },
      [](const json::object& o) { return o; });
}

// GET /v1/admin/why?event=ID&session=ID: hub::explain rendered (docs/admin-api.md, "why").
http_response why(services& s, const route_match& m) {
  const auto event_id = query_param(m.req.query, "event");
  const auto session_id = query_param(m.req.query, "session");
  if (!event_id || event_id->empty() || event_id->size() > max_string)
    return error_response(errc::bad_message, "event: required (an event id, evt_…)");
  if (!session_id || session_id->empty() || session_id->size() > max_string)
    return error_response(errc::bad_message,
                          "session: required (a session id, as /v1/admin/connections shows)");
  auto found = s.st.find_event(*event_id);
  if (!found) return error_response(found.err());
  // A log that never lost an event holds every event a session's ring could.
  if (!found->ev && !found->pruned_any) return not_found("event '" + *event_id + "'");
  auto v = s.h.explain(*session_id, *event_id, found->ev);
  if (!v) return not_found("session '" + *session_id + "'");
  if (v->rule == "event_missing") {
    v->rule = "event_pruned";
    v->detail =
        "the event is not in the log, which log_retention has pruned (an id that never "
        "existed looks the same once the log is pruned)";
  }
  json::array filters;
  for (const auto& f : v->filters) {
    json::object o{{"filter", filter_json(f.spec)}, {"matched", f.matched}};
    if (!f.matched) o["why"] = f.why;
    filters.push_back(std::move(o));
  }
  json::object out{{"event", *event_id},
                   {"session", *session_id},
                   {"dialect", v->dialect.empty() ? json::value(nullptr) : json::value(v->dialect)},
                   {"delivered", v->delivered},
                   {"seq", v->seq ? json::value(*v->seq) : json::value(nullptr)}};
  if (v->delivered) {
    out["at"] = format_rfc3339_ms(v->at_ms);
    out["detail"] = v->detail.empty() ? "handed to the session's socket" : v->detail;
  } else {
    out["rule"] = v->rule;
    out["detail"] = v->detail;
  }
  out["filters"] = std::move(filters);
  return json_response(200, out);
}

}  // namespace

json::object connection_json(const connection_info& c, const std::string& node) {
  auto nul = [](const std::string& v) { return v.empty() ? json::value(nullptr) : json::value(v); };
  json::object o{{"id", c.id},
                 {"dialect", c.dialect},
                 {"node", node},
                 {"tenant", nul(c.tenant)},
                 {"app", nul(c.app)},
                 {"user", nul(c.user)},
                 {"login", nul(c.login)},
                 {"session", nul(c.session)},
                 {"remote", c.remote},
                 {"opened_at", format_rfc3339_ms(c.opened_ms)}};
  boost::system::error_code ec;
  auto extras = boost::json::parse(c.extras_json, ec);
  if (!ec && extras.is_object())
    for (auto& kv : extras.as_object()) o[kv.key()] = kv.value();
  json::array subs;  // the session's one subscription, if any
  if (c.filters) {
    json::array fs;
    for (const auto& f : *c.filters) fs.push_back(filter_json(f));
    subs.push_back(json::object{{"id", c.subscription_id}, {"filters", std::move(fs)}});
  }
  o["subscriptions"] = std::move(subs);
  o["seq"] = c.seq;
  o["queued_bytes"] = c.queued_bytes;
  o["delivered"] = c.delivered;
  o["last_activity"] = format_rfc3339_ms(c.last_activity_ms);
  return o;
}

void add_admin_routes(router& r, services& s) {
  r.add("POST", "/v1/admin/tenants",
        admin(s, true, [&s](route_match&, const json::object& b) { return create_tenant(s, b); }));
  r.add("GET", "/v1/admin/tenants", admin(s, false, [&s](route_match& m, const json::object&) {
          return list_page<tenant_record>(
              m, "tenants", s.dir.tenants(), [](const tenant_record& t) { return t.id; },
              [](const tenant_record& t) { return admin_json(t); });
        }));
  r.add("GET", "/v1/admin/tenants/{id}", admin(s, false, [&s](route_match& m, const json::object&) {
          auto t = s.dir.tenant(m.params[0]);
          return t ? json_response(200, admin_json(*t)) : not_found("tenant '" + m.params[0] + "'");
        }));
  r.add("POST", "/v1/admin/apps",
        admin(s, true, [&s](route_match&, const json::object& b) { return create_app(s, b); }));
  r.add("GET", "/v1/admin/apps", admin(s, false, [&s](route_match& m, const json::object&) {
          return list_page<app_record>(
              m, "apps", s.dir.apps(query_param(m.req.query, "tenant").value_or("")),
              [](const app_record& a) { return a.id; },
              [](const app_record& a) { return admin_json(a); });
        }));
  r.add("GET", "/v1/admin/apps/{id}", admin(s, false, [&s](route_match& m, const json::object&) {
          auto a = s.dir.app(m.params[0]);
          return a ? json_response(200, admin_json(*a)) : not_found("app '" + m.params[0] + "'");
        }));
  r.add("PATCH", "/v1/admin/apps/{id}", admin(s, true, [&s](route_match& m, const json::object& b) {
          return patch_app(s, m.params[0], b);
        }));
  r.add("DELETE", "/v1/admin/apps/{id}", admin(s, false, [&s](route_match& m, const json::object&) {
          return delete_app(s, m.params[0]);
        }));
  r.add("POST", "/v1/admin/apps/{id}/rotate-key",
        admin(s, false,
              [&s](route_match& m, const json::object&) { return rotate_key(s, m.params[0]); }));
  r.add("POST", "/v1/admin/users",
        admin(s, true, [&s](route_match&, const json::object& b) { return create_user(s, b); }));
  r.add("GET", "/v1/admin/users", admin(s, false, [&s](route_match& m, const json::object&) {
          return list_page<user_record>(
              m, "users", s.dir.users(query_param(m.req.query, "tenant").value_or("")),
              [](const user_record& u) { return u.id; },
              [](const user_record& u) { return admin_json(u); });
        }));
  r.add("GET", "/v1/admin/users/{id}", admin(s, false, [&s](route_match& m, const json::object&) {
          auto u = s.dir.user(m.params[0]);
          return u ? json_response(200, admin_json(*u)) : not_found("user '" + m.params[0] + "'");
        }));
  r.add("PATCH", "/v1/admin/users/{id}",
        admin(s, true, [&s](route_match& m, const json::object& b) {
          return patch_user(s, m.params[0], b);
        }));
  r.add("DELETE", "/v1/admin/users/{id}",
        admin(s, false,
              [&s](route_match& m, const json::object&) { return delete_user(s, m.params[0]); }));
  r.add("POST", "/v1/admin/users/{id}/jwt",
        admin(s, true, [&s](route_match& m, const json::object& b) {
          return create_jwt(s, m.params[0], b);
        }));
  r.add(
      "GET", "/v1/admin/users/{id}/jwt", admin(s, false, [&s](route_match& m, const json::object&) {
        if (!s.dir.user(m.params[0])) return not_found("user '" + m.params[0] + "'");
        json::array items;
        for (const auto& j : s.dir.jwts_of(m.params[0]))
          items.push_back(json::object{
              {"jti", j.jti},
              {"client_id", j.client_id.empty() ? json::value(nullptr) : json::value(j.client_id)},
              {"created", format_rfc3339_ms(j.created_ms)},
              {"expires_at", j.expires_ms ? json::value(format_rfc3339_ms(*j.expires_ms))
                                          : json::value(nullptr)}});
        return json_response(200, json::object{{"jwts", items}, {"next_cursor", nullptr}});
      }));
  r.add("DELETE", "/v1/admin/users/{id}/jwt/{jti}",
        admin(s, false, [&s](route_match& m, const json::object&) {
          auto j = s.dir.jwt(m.params[1]);
          if (!j || j->user_id != m.params[0]) return not_found("jwt '" + m.params[1] + "'");
          if (status st = s.st.erase_record("jwt", j->jti); !st) return error_response(st.err());
          s.dir.remove_jwt(j->jti);
          return json_response(204, std::string());
        }));
  r.add("PUT", "/v1/admin/subjects/{id}",
        admin(s, true, [&s](route_match& m, const json::object& b) {
          return put_subject(s, m.params[0], b);
        }));
  r.add("GET", "/v1/admin/subjects/{id}",
        admin(s, false, [&s](route_match& m, const json::object&) {
          auto r2 = find_subject(s, m, m.params[0]);
          return r2 ? json_response(200, admin_json(*r2)) : error_response(r2.err());
        }));
  r.add("DELETE", "/v1/admin/subjects/{id}",
        admin(s, false, [&s](route_match& m, const json::object&) {
          auto r2 = find_subject(s, m, m.params[0]);
          if (!r2) return error_response(r2.err());
          if (r2->corrupted)
            return error_response(errc::already_corrupted, "subject is already corrupted");
          const subject_record before = *r2;
          r2->corrupted = true;
          if (status st = store_subject(s, &before, *r2); !st) return error_response(st.err());
          return json_response(204, std::string());
        }));
  r.add("GET", "/v1/admin/subjects", admin(s, false, [&s](route_match& m, const json::object&) {
          return list_page<subject_record>(
              m, "subjects",
              s.dir.subjects(query_param(m.req.query, "tenant").value_or(""),
                             query_param(m.req.query, "kind").value_or("")),
              [](const subject_record& r2) { return r2.tenant + "/" + r2.id; },
              [](const subject_record& r2) { return admin_json(r2); });
        }));
  r.add("GET", "/v1/admin/connections", admin(s, false, [&s](route_match& m, const json::object&) {
          return list_connections(s, m);
        }));
  r.add("GET", "/v1/admin/why",
        admin(s, false, [&s](route_match& m, const json::object&) { return why(s, m); }));
  r.add("DELETE", "/v1/admin/connections/{id}",
        admin(s, false, [&s](route_match& m, const json::object&) {
          if (!s.h.kick_connection(m.params[0], kick{close_reason::admin, "closed by admin"}) &&
              (s.cluster == nullptr || !s.cluster->kick_elsewhere(m.params[0])))
            return not_found("connection '" + m.params[0] + "'");
          return json_response(204, std::string());
        }));
}

}  // namespace herald
