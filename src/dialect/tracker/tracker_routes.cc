#include "dialect/tracker/tracker_routes.h"

#include <algorithm>

#include <boost/json.hpp>

#include "api/authn.h"
#include "api/cluster_link.h"
#include "api/json_util.h"
#include "api/records.h"
#include "auth/crypto.h"
#include "core/clock.h"
#include "core/time_zone.h"
#include "dialect/tracker/tracker_socket.h"

namespace herald::tracker {
namespace json = boost::json;
namespace {

constexpr std::string_view subscription_path = "/event/subscription";

http_response with_cors(http_response r) {
  r.content_type = "application/json; charset=utf-8";
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  return r;
}

http_response success(json::object o) {
  json::object out{{"success", true}};
  for (auto& kv : o) out[kv.key()] = std::move(kv.value());
  return with_cors(http_response{200, "", {}, json::serialize(out)});
}

// The request's parameters (§2): a JSON body, a form body, or the query; the body wins.
class params {
 public:
  explicit params(const http_request& req) : req_(req) {
    std::string_view b = req.body;
    while (!b.empty() &&
           (b.front() == ' ' || b.front() == '\n' || b.front() == '\r' || b.front() == '\t'))
      b.remove_prefix(1);
    if (!b.empty() && b.front() == '{') {
      boost::system::error_code ec;
      auto v = json::parse(b, ec);
      if (ec || !v.is_object())
        malformed_ = true;
      else
        json_ = std::move(v.get_object());
      is_json_ = true;
    }
  }
  bool malformed() const { return malformed_; }
  // The parameter as text: JSON strings and integers; absent (or another JSON type) is nullopt.
  std::optional<std::string> get(std::string_view name) const {
    if (is_json_) {
      if (const auto* v = json_.if_contains(name)) {
        if (v->is_string()) return std::string(v->get_string());
        if (v->is_int64()) return std::to_string(v->get_int64());
        if (v->is_uint64()) return std::to_string(v->get_uint64());
        return std::string("\x01");  // present, wrong type: never a valid value
      }
    } else if (!req_.body.empty()) {
      if (auto f = form_field(req_.body, name)) return f;
    }
    return query_param(req_.query, name);
  }
  // The hash: the parameter, else `Authorization: NVX <hash>`.
  std::string hash() const {
    if (auto h = get("hash")) return *h;
    if (const auto* a = req_.header("authorization")) {
      std::string_view v = *a;
      if (v.size() > 4 && (v.substr(0, 4) == "NVX " || v.substr(0, 4) == "nvx ")) {
        v.remove_prefix(4);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return std::string(v);
      }
    }
    return {};
  }

 private:
  const http_request& req_;
  json::object json_;
  bool is_json_ = false;
  bool malformed_ = false;
};

// ---- login (§2: 7, 105, 102, 11, 104 in that order)

http_response auth(tracker_context& cx, const params& p) {
  const auto login = p.get("login"), password = p.get("password");
  if (!login || login->empty() || !password || password->empty())
    return error_reply(invalid_params, "login and password are required");
  const std::int64_t now = now_ms();
  const std::string key = "login:" + *login;
  if (!cx.login_failures.allows(key, now)) return error_reply(login_attempts);
  auto found = cx.svc.dir.users_by_login(*login);
  const bool one = found.size() == 1 && !found[0].password_hash.empty();
  // Unknown, ambiguous, passwordless or wrong: the same reply after the same PBKDF2 work.
  if (!verify_login_password(*password, one ? &found[0].password_hash : nullptr)) {
    (void)cx.login_failures.take(key, 1, now);
    return error_reply(wrong_login);
  }
  const user_record& u = found[0];
  if (u.blocked) return error_reply(access_denied);
  if (cx.svc.dir.live_logins_of(u.id, now) >= cx.cfg->max_hashes_per_user)
    return error_reply(logins_limit);
  const std::string hash = hex_encode(random_bytes(16));
  login_record l;
  l.id = login_id_of(hash);
  l.tenant = u.tenant;
  l.user_id = u.id;
  l.dialect = "tracker";
  l.created_ms = now;
  l.expires_ms = now + cx.cfg->hash_ttl_s * 1000;
  if (status st = persist(cx.svc.st, l); !st) return error_reply(unexpected, st.err().message);
  cx.svc.dir.put_login(l);
  return success(json::object{{"hash", hash}});
}

// A hash's live login, or the refusal; a live one is touched (§2: a REST call is a use).
std::variant<live_login, http_response> use_hash(tracker_context& cx, const params& p) {
  auto checked = check_hash(cx.svc, p.hash(), now_ms());
  if (const int* code = std::get_if<int>(&checked)) return error_reply(*code);
  auto& live = std::get<live_login>(checked);
  touch(cx, live.login, now_ms());
  return std::move(live);
}

http_response logout(tracker_context& cx, const params& p) {
  auto used = use_hash(cx, p);
  if (auto* r = std::get_if<http_response>(&used)) return std::move(*r);
  const auto& live = std::get<live_login>(used);
  auto ended = cx.svc.dir.update_login(live.login.id, [](login_record& r) { r.ended = true; });
  if (ended) {
    if (status st = persist(cx.svc.st, *ended); !st)
      return error_reply(unexpected, st.err().message);
  }
  // §5.5: every socket holding a subscription under the hash gets one logout frame, on every
  // node (the login record's announcement revokes by login session, which a tracker socket,
  // bound to a user and holding several hashes, does not carry).
  logout_sockets(cx, live.user.id, live.login.id);
  if (cx.svc.cluster != nullptr)
    cx.svc.cluster->broadcast(std::string(logout_broadcast_kind),
                              live.user.id + " " + live.login.id);
  return success({});
}

http_response list(tracker_context& cx, const params& p) {
  auto used = use_hash(cx, p);
  if (auto* r = std::get_if<http_response>(&used)) return std::move(*r);
  const auto& live = std::get<live_login>(used);
  std::vector<std::pair<std::int64_t, subject_record>> rows;
  for (auto& r : cx.svc.dir.subjects(live.user.tenant, "tracker")) {
    auto id = parse_tracker_id(r.id);
    if (!id || r.corrupted) continue;
    if (status_of(cx.svc.dir, live.user, *id) == tstatus::disallowed) continue;
    rows.emplace_back(*id, std::move(r));
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json::array items;
  for (const auto& [id, r] : rows) {
    items.push_back(
        json::object{{"id", id},
                     {"label", r.label},
                     {"group_id", 0},
                     {"clone", false},
                     {"source", json::object{{"id", source_id_of(r)}, {"blocked", r.blocked}}}});
  }
  return success(json::object{{"list", std::move(items)}});
}

http_response get_state(tracker_context& cx, const params& p) {
  auto used = use_hash(cx, p);
  if (auto* r = std::get_if<http_response>(&used)) return std::move(*r);
  const auto& live = std::get<live_login>(used);
  const auto text = p.get("tracker_id");
  if (!text) return error_reply(invalid_params, "tracker_id is required");
  const auto id = parse_tracker_id(*text);
  if (!id) return error_reply(invalid_params, "tracker_id: an integer 1..2147483647");
  switch (status_of(cx.svc.dir, live.user, *id)) {
    case tstatus::unknown:
    case tstatus::disallowed:
      return error_reply(not_found);
    case tstatus::blocked:
      return error_reply(device_blocked);
    case tstatus::normal:
      break;
  }
  auto state = cx.svc.st.state(live.user.tenant, std::to_string(*id));
  if (!state) return error_reply(unexpected, state.err().message);
  std::string body = json::serialize(json::object{{"success", true}});
  body.pop_back();
  body += ",\"user_time\":" + json_quote(format_local_time(now_ms(), live.user.time_zone)) +
          ",\"state\":" + (*state ? (**state)->data : std::string("null")) + "}";
  return with_cors(http_response{200, "", {}, std::move(body)});
}

// §3: the close request (200, empty text/plain, for any id) or a refused transport (400, 5).
http_response subscription_get(tracker_context& cx, const http_request& req) {
  const auto transport = query_param(req.query, "X-Atmosphere-Transport");
  if (transport && *transport == "close") {
    if (auto id = query_param(req.query, "X-Atmosphere-tracking-id")) {
      // Not here: in a cluster the socket may be on another node (the GET is a request of its
      // own, a load balancer may send it anywhere).
      if (!close_uuid(cx, *id) && cx.svc.cluster != nullptr)
        cx.svc.cluster->broadcast(std::string(close_broadcast_kind), *id);
    }
    http_response r{200, "text/plain", {}, {}};
    r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    return r;
  }
  return error_reply(wrong_format, "only the websocket transport is served");
}

}  // namespace

void logout_sockets(tracker_context& cx, const std::string& user_id, const std::string& login_id) {
  for (const sink_ref& ref : cx.sockets.of_user(user_id))
    cx.on_socket(ref, [login_id](tracker_socket& s) { s.logout(login_id); });
}

bool close_uuid(tracker_context& cx, const std::string& uuid) {
  auto ref = cx.sockets.find(uuid);
  if (!ref) return false;
  cx.on_socket(*ref, [](tracker_socket& s) { s.close_requested(); });
  return true;
}

http_response error_reply(int code, std::string_view detail) {
  (void)detail;  // the description is fixed (§8); the detail is for logs
  json::object o{{"success", false},
                 {"status", json::object{{"code", code}, {"description", description(code)}}}};
  return with_cors(http_response{http_status(code), "", {}, json::serialize(o)});
}

http_response serve_rest(tracker_context& cx, const http_request& req) {
  std::string_view path = req.path;
  if (path.substr(0, 3) == "/v2" && (path.size() == 3 || path[3] == '/')) path.remove_prefix(3);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (req.method == "OPTIONS") {
    http_response r{204, "text/plain", {}, {}};
    r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST");
    r.headers.emplace_back("Access-Control-Allow-Headers", "Content-Type, Authorization");
    return r;
  }
  if (path == subscription_path) {
    if (req.method != "GET") return error_reply(wrong_format, "GET only");
    return subscription_get(cx, req);
  }
  if (req.method != "GET" && req.method != "POST") return error_reply(wrong_format, "method");
  if (req.body.size() > cx.cfg->max_request_bytes) return error_reply(too_large);
  const params p(req);
  if (p.malformed()) return error_reply(wrong_format, "body: not a JSON object");
  if (path == "/user/auth") return auth(cx, p);
  if (path == "/user/logout") return logout(cx, p);
  if (path == "/tracker/list") return list(cx, p);
  if (path == "/tracker/get_state") return get_state(cx, p);
  http_response r = error_reply(wrong_format, "unknown path");
  r.status = 404;
  return r;
}

void add_tracker_routes(router& r, tracker_context& cx) {
  auto answer = [&cx](route_match& m) { return serve_rest(cx, m.req); };
  for (const std::string v2 : {"/v2", ""}) {
    for (const char* call : {"/user/auth", "/user/logout", "/tracker/list", "/tracker/get_state"})
      for (const char* method : {"GET", "POST", "OPTIONS"}) r.add(method, v2 + call, answer);
    for (const char* method : {"GET", "OPTIONS"})
      r.add(method, v2 + std::string(subscription_path), answer);
  }
}

}  // namespace herald::tracker
