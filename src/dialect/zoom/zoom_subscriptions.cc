// Stored Zoom event subscriptions (zoom.md §4.2, §5): their records in the store's generic
// registry, the core subscription a socket installs for one, the registry of open sockets and
// the admin calls. Admin routes run on the blocking pool.
#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/cluster_link.h"
#include "api/json_util.h"
#include "api/numbers.h"
#include "core/clock.h"
#include "dialect/zoom/zoom_context.h"
#include "dialect/zoom/zoom_socket.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::size_t max_admin_body = 65536;  // design.md §4
constexpr std::size_t max_string = 256;

json::object stored_json(const zoom_subscription& r) {
  json::array events;
  for (const auto& e : r.events) events.emplace_back(e);
  return json::object{{"id", r.id},
                      {"tenant", r.tenant},
                      {"app", r.app.empty() ? json::value(nullptr) : json::value(r.app)},
                      {"name", r.name},
                      {"events", events},
                      {"include_sub_accounts", r.include_sub_accounts},
                      {"created_ms", r.created_ms}};
}

std::optional<zoom_subscription> parse_stored(std::string_view text) {
  auto v = parse_json(text);
  if (!v || !v->is_object()) return std::nullopt;
  const json::object& o = v->as_object();
  zoom_subscription r;
  auto str = [&](const char* k) {
    const auto* x = o.if_contains(k);
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
  };
  r.id = str("id");
  r.tenant = str("tenant");
  r.app = str("app");
  r.name = str("name");
  if (const auto* e = o.if_contains("events"); e != nullptr && e->is_array())
    for (const auto& t : e->get_array())
      if (t.is_string()) r.events.emplace_back(t.get_string());
  if (const auto* b = o.if_contains("include_sub_accounts"); b != nullptr && b->is_bool())
    r.include_sub_accounts = b->get_bool();
  if (const auto* c = o.if_contains("created_ms"); c != nullptr && c->is_int64())
    r.created_ms = c->get_int64();
  if (r.id.empty() || r.tenant.empty()) return std::nullopt;
  return r;
}

std::string ws_base(const services& s, const http_request& req) {
  std::string base = s.public_url;
  if (base.empty()) base = (req.scheme == "https" ? "https://" : "http://") + req.host;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.rfind("https://", 0) == 0) return "wss://" + base.substr(8);
  if (base.rfind("http://", 0) == 0) return "ws://" + base.substr(7);
  return base;
}

json::object admin_json(const zoom_context& cx, const zoom_subscription& r,
                        const http_request& req) {
  json::object o = stored_json(r);
  o.erase("created_ms");
  o["ws_url"] = ws_base(*cx.svc, req) + cx.prefix + "/ws?subscriptionId=" + r.id;
  return o;
}

http_response bad(const std::string& message) { return error_response(errc::bad_message, message); }

// events: 1..1000 event types, each optionally ending in '*' (§5).
std::optional<std::string> read_events(const json::value& v, std::vector<std::string>& out) {
  if (!v.is_array()) return "events: must be an array of event types";
  const auto& a = v.get_array();
  if (a.empty() || a.size() > zoom_limits::max_events) return "events: 1 to 1000 event types";
  out.clear();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string at = "events[" + std::to_string(i) + "]";
    if (!a[i].is_string()) return at + ": must be a string";
    std::string_view t = a[i].get_string();
    const std::string_view bare = !t.empty() && t.back() == '*' ? t.substr(0, t.size() - 1) : t;
    if (!valid_type(bare)) return at + ": not an event type ([A-Za-z0-9_.:-]{1,128}, optional *)";
    out.emplace_back(t);
  }
  return std::nullopt;
}

// Reads the optional fields PATCH and POST share into `r`; an error message or nullopt.
std::optional<std::string> read_common(const json::object& b, zoom_subscription& r) {
  if (const auto* e = b.if_contains("events")) {
    if (auto err = read_events(*e, r.events)) return err;
  }
  if (const auto* i = b.if_contains("include_sub_accounts")) {
    if (!i->is_bool()) return std::string("include_sub_accounts: must be a boolean");
    r.include_sub_accounts = i->get_bool();
  }
  if (const auto* n = b.if_contains("name")) {
    if (!n->is_string()) return std::string("name: must be a string");
    if (n->get_string().size() > max_string) return std::string("name: longer than 256 characters");
    r.name = n->get_string();
  }
  return std::nullopt;
}

// The admin key check and the body, as every admin call of design.md §4 (dialect_host checks
// the key before dispatching to a dialect's admin router; the body rules are ours).
result<json::object> body_of(const http_request& req) {
  if (req.body.size() > max_admin_body)
    return error{errc::too_large, "admin bodies are limited to 64 KiB"};
  auto v = parse_json(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
  if (!v) return v.err();
  if (!v->is_object()) return error{errc::bad_message, "body: must be a JSON object"};
  return std::move(v->as_object());
}

result<std::vector<zoom_subscription>> all_records(store& st) {
  auto rows = st.load_records(zoom_record_kind);
  if (!rows) return rows.err();
  std::vector<zoom_subscription> out;
  for (const auto& row : *rows)
    if (auto r = parse_stored(row.json)) out.push_back(std::move(*r));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

// Admin changes apply to the open sockets at once (native.md §1, stored subscriptions): each
// is told on its own shard, and only if it is still there.
void tell_sockets(zoom_context& cx, const std::vector<zoom_registry::entry>& open,
                  const std::function<void(zoom_socket&)>& fn) {
  for (const auto& e : open) {
    zoom_socket* p = e.sock;
    cx.svc->h.on_socket_shard(e.ref, [p, fn] { fn(*p); });
  }
}

void close_deleted(zoom_context& cx, const std::string& id) {
  tell_sockets(cx, cx.sockets.take(id), [](zoom_socket& z) {
    z.on_kick(kick{close_reason::admin, "subscription deleted"});
  });
}

http_response create(zoom_context& cx, const http_request& req) {
  auto b = body_of(req);
  if (!b) return error_response(b.err());
  zoom_subscription r;
  const auto* t = b->if_contains("tenant");
  if (t == nullptr || !t->is_string() || t->get_string().empty()) return bad("tenant: required");
  r.tenant = t->get_string();
  if (!cx.svc->dir.tenant_exists(r.tenant))
    return error_response(errc::not_found, "tenant: no such tenant: " + r.tenant);
  if (!b->contains("events")) return bad("events: required");
  if (auto err = read_common(*b, r)) return bad(*err);
  if (const auto* a = b->if_contains("app"); a != nullptr && !a->is_null()) {
    if (!a->is_string()) return bad("app: must be a string");
    auto app = cx.svc->dir.app(a->get_string());
    if (!app) return error_response(errc::not_found, "app: no such app");
    if (app->tenant != r.tenant) return bad("app: not an app of tenant " + r.tenant);
    if (app->app_role == role::publisher) return bad("app: a publisher cannot subscribe");
    r.app = app->id;
  }
  static std::mutex create_mu;  // the per-tenant count and the insert, one create at a time
  std::lock_guard lock(create_mu);
  auto existing = all_records(cx.svc->st);
  if (!existing) return error_response(existing.err());
  const auto n = std::count_if(existing->begin(), existing->end(),
                               [&](const auto& x) { return x.tenant == r.tenant; });
  if (static_cast<std::size_t>(n) >= zoom_limits::max_subscriptions_per_tenant)
    return error_response(errc::conflict, "tenant " + r.tenant + " has 1000 subscriptions");
  r.id = random_token(16);  // 128 bits: 22 base64url characters, as Zoom's ids (§4.2)
  r.created_ms = now_ms();
  if (status st = cx.svc->st.put_record(zoom_record_kind, r.id, json::serialize(stored_json(r)));
      !st)
    return error_response(st.err());
  return json_response(201, admin_json(cx, r, req));
}

http_response list(zoom_context& cx, const http_request& req) {
  const std::string tenant = query_param(req.query, "tenant").value_or("");
  std::uint64_t limit = 100;
  if (auto l = query_param(req.query, "limit")) {
    auto n = number_param("limit", *l, 1, 1000);
    if (!n) return error_response(n.err());
    limit = *n;
  }
  const std::string cursor = query_param(req.query, "cursor").value_or("");
  auto all = all_records(cx.svc->st);
  if (!all) return error_response(all.err());
  json::array items;
  std::string last;
  bool more = false;
  for (const auto& r : *all) {
    if (!tenant.empty() && r.tenant != tenant) continue;
    if (!cursor.empty() && r.id <= cursor) continue;  // ids sort; the cursor is the last one shown
    if (items.size() == limit) {
      more = true;
      break;
    }
    items.push_back(admin_json(cx, r, req));
    last = r.id;
  }
  return json_response(
      200, json::object{{"subscriptions", items},
                        {"next_cursor", more ? json::value(last) : json::value(nullptr)}});
}

http_response get_one(zoom_context& cx, const http_request& req, const std::string& id) {
  auto r = load_zoom_subscription(cx.svc->st, id);
  if (!r) return error_response(r.err());
  if (!*r) return error_response(errc::not_found, "no such subscription: " + id);
  return json_response(200, admin_json(cx, **r, req));
}

http_response patch(zoom_context& cx, const http_request& req, const std::string& id) {
  auto b = body_of(req);
  if (!b) return error_response(b.err());
  for (const char* fixed : {"id", "tenant", "app"})
    if (b->contains(fixed)) return bad(std::string(fixed) + ": cannot be changed");
  auto r = load_zoom_subscription(cx.svc->st, id);
  if (!r) return error_response(r.err());
  if (!*r) return error_response(errc::not_found, "no such subscription: " + id);
  zoom_subscription next = **r;
  if (auto err = read_common(*b, next)) return bad(*err);
  if (status st = cx.svc->st.put_record(zoom_record_kind, id, json::serialize(stored_json(next)));
      !st)
    return error_response(st.err());
  tell_sockets(cx, cx.sockets.of(id), [next](zoom_socket& z) { z.apply(next); });
  zoom_announce(cx, "changed " + id);
  return json_response(200, admin_json(cx, next, req));
}

http_response remove(zoom_context& cx, const std::string& id) {
  auto r = load_zoom_subscription(cx.svc->st, id);
  if (!r) return error_response(r.err());
  if (!*r) return error_response(errc::not_found, "no such subscription: " + id);
  if (status st = cx.svc->st.erase_record(zoom_record_kind, id); !st)
    return error_response(st.err());
  // §5: the open socket closes 1000 "subscription deleted", on whichever node it is.
  close_deleted(cx, id);
  zoom_announce(cx, "changed " + id);
  http_response res;
  res.status = 204;
  return res;
}

}  // namespace

result<std::optional<zoom_subscription>> load_zoom_subscription(store& st, const std::string& id) {
  auto row = st.get_record(zoom_record_kind, id);
  if (!row) return row.err();
  if (!*row) return std::optional<zoom_subscription>();
  return parse_stored(**row);
}

result<subscription> core_subscription_of(const zoom_subscription& rec) {
  filter_spec spec;
  spec.topic = "/**";
  spec.types = rec.events;
  filter_limits limits;
  limits.max_types_per_filter = zoom_limits::max_events;
  auto f = filter::compile(spec, rec.tenant, limits);
  if (!f) return f.err();
  subscription sub;
  sub.id = rec.id;
  sub.filters.push_back(std::move(*f));
  // An explicit tenant set: it bounds every role, admin apps included (§4.2).
  sub.tenants = tenant_set{rec.tenant, rec.include_sub_accounts};
  return sub;
}

std::vector<zoom_registry::entry> zoom_registry::claim(const std::string& sub, entry e,
                                                       bool single) {
  std::lock_guard lock(mu_);
  auto& list = open_[sub];
  std::vector<entry> replaced;
  if (single) {
    replaced = std::exchange(list, {});
    for (auto& old : replaced) old.superseded->store(true, std::memory_order_release);
  }
  list.push_back(std::move(e));
  return replaced;
}

void zoom_registry::release(const std::string& sub, const std::string& con_id) {
  std::lock_guard lock(mu_);
  auto it = open_.find(sub);
  if (it == open_.end()) return;
  std::erase_if(it->second, [&](const entry& e) { return e.con_id == con_id; });
  if (it->second.empty()) open_.erase(it);
}

std::vector<zoom_registry::entry> zoom_registry::of(const std::string& sub) const {
  std::lock_guard lock(mu_);
  auto it = open_.find(sub);
  return it == open_.end() ? std::vector<entry>{} : it->second;
}

std::vector<zoom_registry::entry> zoom_registry::take(const std::string& sub) {
  std::lock_guard lock(mu_);
  auto it = open_.find(sub);
  if (it == open_.end()) return {};
  auto out = std::move(it->second);
  open_.erase(it);
  return out;
}

std::vector<zoom_registry::entry> zoom_registry::take_claimed_by(const std::string& sub,
                                                                 std::int64_t ms) {
  std::lock_guard lock(mu_);
  auto it = open_.find(sub);
  if (it == open_.end()) return {};
  std::vector<entry> out;
  std::erase_if(it->second, [&](entry& e) {
    if (e.claimed_ms > ms) return false;
    e.superseded->store(true, std::memory_order_release);
    out.push_back(e);
    return true;
  });
  if (it->second.empty()) open_.erase(it);
  return out;
}

void zoom_announce(const zoom_context& cx, std::string arg) {
  if (cx.svc != nullptr && cx.svc->cluster != nullptr)
    cx.svc->cluster->broadcast(std::string(zoom_broadcast_kind), std::move(arg));
}

void zoom_on_broadcast(zoom_context& cx, const std::string& arg) {
  const auto sp = arg.find(' ');
  const std::string verb = arg.substr(0, sp);
  std::string rest = sp == std::string::npos ? std::string() : arg.substr(sp + 1);
  if (verb == "claim") {
    const auto sp2 = rest.find(' ');
    if (sp2 == std::string::npos) return;
    auto ms = parse_i64(std::string_view(rest).substr(sp2 + 1));
    if (!ms) return;
    rest.resize(sp2);
    tell_sockets(cx, cx.sockets.take_claimed_by(rest, *ms), [](zoom_socket& z) {
      z.on_kick(kick{close_reason::replaced, "replaced"});
    });
  } else if (verb == "changed") {
    auto r = load_zoom_subscription(cx.svc->st, rest);
    if (!r) return;  // the store is down: the socket keeps what it had
    if (!*r) return close_deleted(cx, rest);
    tell_sockets(cx, cx.sockets.of(rest), [next = **r](zoom_socket& z) { z.apply(next); });
  }
}

void add_zoom_admin_routes(router& r, const std::shared_ptr<zoom_context>& cx) {
  const std::string base = "/v1/admin/zoom/subscriptions";
  r.add("POST", base, [cx](route_match& m) { return create(*cx, m.req); });
  r.add("GET", base, [cx](route_match& m) { return list(*cx, m.req); });
  r.add("GET", base + "/{id}", [cx](route_match& m) { return get_one(*cx, m.req, m.params[0]); });
  r.add("PATCH", base + "/{id}", [cx](route_match& m) { return patch(*cx, m.req, m.params[0]); });
  r.add("DELETE", base + "/{id}", [cx](route_match& m) { return remove(*cx, m.params[0]); });
}

}  // namespace herald
