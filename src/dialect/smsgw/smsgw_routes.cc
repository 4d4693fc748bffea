// The smsgw REST read side (smsgw.md §5): health, ws tokens, message status and history, and the
// optional send intake, with its own auth, limits and error body. Runs on the blocking pool.
// A message is a subject whose retained state is an sms.* event (§4.3): the records are read
// from the store's retained states, scoped by the core's policy (may_see) like every path.
#include "dialect/smsgw/smsgw_routes.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <variant>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/numbers.h"
#include "api/router.h"
#include "auth/crypto.h"
#include "core/clock.h"
#include "dialect/smsgw/smsgw_codec.h"

namespace herald {
namespace json = boost::json;
namespace smsgw {

result<principal> principal_of_key(const services& s, std::string_view key) {
  if (key.empty()) return error{errc::auth_failed, std::string(txt_invalid_key)};
  // By hash: the key itself is never compared; a rotated or deleted key has no record.
  auto a = s.dir.app_by_key_hash(hash_secret(key));
  if (!a) return error{errc::auth_failed, std::string(txt_invalid_key)};
  if (a->app_role == role::publisher) return error{errc::forbidden, std::string(txt_not_permitted)};
  return principal_of_app(*a, true);
}

namespace {

constexpr std::string_view wst_kind = "smsgw_wst";

std::string wst_record_key(std::string_view token) { return sha256_hex(token); }

}  // namespace

result<std::string> issue_ws_token(smsgw_context& cx, const principal& who) {
  const std::string token = "wst_" + hex_encode(random_bytes(32));
  const std::int64_t exp = now_ms() + cx.cfg->ws_token_ttl_s * 1000;
  // Only the hash is stored: a store dump yields no usable token. `expires_ms` is the field
  // the store's record pruning reads, so an unredeemed token does not stay forever.
  json::object rec{{"app", who.app_id}, {"expires_ms", exp}};
  if (status st = cx.svc.st.put_record(wst_kind, wst_record_key(token), json::serialize(rec)); !st)
    return st.err();
  return token;
}

result<principal> redeem_ws_token(smsgw_context& cx, std::string_view token) {
  const error invalid{errc::auth_failed, std::string(txt_invalid_key)};
  if (token.size() != 68 || token.substr(0, 4) != "wst_") return invalid;
  const std::string key = wst_record_key(token);
  auto rec = cx.svc.st.get_record(wst_kind, key);
  if (!rec || !*rec) return invalid;
  boost::system::error_code ec;
  json::value v = json::parse(**rec, ec);
  if (ec || !v.is_object()) return invalid;
  const json::object& o = v.get_object();
  const json::value* app = o.if_contains("app");
  const json::value* exp = o.if_contains("expires_ms");
  if (app == nullptr || !app->is_string() || exp == nullptr || !exp->is_int64()) return invalid;
  if (exp->get_int64() <= now_ms()) return invalid;
  // Single use on every node: the store's replay guard decides which redemption wins.
  auto fresh = cx.svc.st.claim_once(std::string(wst_kind) + ":" + key, exp->get_int64());
  if (!fresh || !*fresh) return invalid;
  (void)cx.svc.st.erase_record(wst_kind, key);
  auto a = cx.svc.dir.app(std::string(app->get_string()));
  if (!a) return invalid;
  if (a->app_role == role::publisher) return error{errc::forbidden, std::string(txt_not_permitted)};
  return principal_of_app(*a, true);
}

namespace {

http_response with_retry_after(http_response r, std::int64_t s) {
  r.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, s)));
  return r;
}

// The credential of a REST call (§5): Authorization wins; it must be "Bearer <x>".
std::optional<std::string> rest_credential(const http_request& req) {
  if (const auto* h = req.header("authorization")) {
    std::string_view v = *h;
    if (v.size() <= 7 || (v.substr(0, 7) != "Bearer " && v.substr(0, 7) != "bearer "))
      return std::nullopt;
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (v.empty()) return std::nullopt;
    return std::string(v);
  }
  if (const auto* k = req.header("x-api-key"); k != nullptr && !k->empty()) return *k;
  return std::nullopt;
}

// Auth and limits of a REST call: the principal, or the refusal to answer with.
std::variant<principal, http_response> rest_auth(smsgw_context& cx, const http_request& req) {
  const std::string addr = cx.svc.auth_failures.client_address(req);
  const std::int64_t now = now_ms();
  // A blocked address is refused whatever it presents (§7).
  if (const std::int64_t s = cx.auth_fails.blocked_for_s(addr, now); s > 0) {
    http_response r = error_reply(429, txt_too_many_requests);
    r.cause = error_cause::auth_failures;
    return with_retry_after(std::move(r), s);
  }
  auto cred = rest_credential(req);
  if (!cred) {
    http_response r = error_reply(401, txt_missing_key);
    r.cause = error_cause::missing;
    return r;
  }
  auto p = principal_of_key(cx.svc, *cred);
  if (!p) {
    if (p.err().code == errc::forbidden) return error_reply(403, txt_not_permitted);
    cx.auth_fails.fail(addr, now);
    return error_reply(401, txt_invalid_key);
  }
  const std::size_t limit = p->is_admin_app() ? cx.cfg->rate_limit_admin : cx.cfg->rate_limit_app;
  if (const std::int64_t s = cx.rest_rate.take(p->app_id, limit, now); s > 0)
    return with_retry_after(error_reply(429, txt_too_many_requests), s);
  return std::move(*p);
}

// A message as the read side sees it: its latest event and its creation time.
struct message {
  event_ptr latest;
  std::int64_t created_ms = 0;
};

bool is_sms(const event& e) { return e.type == type_status || e.type == type_inbound; }

// createdAt: the time of the subject's first event (§4.3), read from the log; once the log no
// longer holds it (retention), the oldest time still known (the retained state's).
std::int64_t created_ms_of(services& s, const event& latest) {
  log_query q;
  q.tenants = {latest.tenant};
  q.subject = latest.subject;
  q.limit = 1;
  auto first = s.st.read(q);
  if (first && !first->empty()) return std::min(first->front()->time_ms, latest.time_ms);
  return latest.time_ms;
}

std::optional<message> find_message(services& s, const principal& who, const std::string& id,
                                    const std::optional<std::string>& tenant) {
  std::vector<std::string> tenants;
  if (!who.is_admin_app())
    tenants.push_back(who.tenant);
  else if (tenant)
    tenants.push_back(*tenant);
  std::optional<message> best;
  if (tenants.size() == 1) {
    auto st = s.st.state(tenants[0], id);
    if (!st || !*st || !is_sms(***st) || !may_see(who, ***st, &s.dir)) return std::nullopt;
    return message{**st, created_ms_of(s, ***st)};
  }
  // An admin key without ?tenant: the latest created of that id across tenants (§5).
  for (const auto& t : s.dir.tenants()) {
    auto st = s.st.state(t.id, id);
    if (!st || !*st || !is_sms(***st) || !may_see(who, ***st, &s.dir)) continue;
    const std::int64_t c = created_ms_of(s, ***st);
    if (!best || c > best->created_ms) best = message{**st, c};
  }
  return best;
}

http_response get_status(smsgw_context& cx, const principal& who, const http_request& req,
                         const std::string& id) {
  if (!valid_message_id(id)) return error_reply(400, "Invalid messageId format");
  auto m = find_message(cx.svc, who, id, query_param(req.query, "tenant"));
  if (!m) return error_reply(404, txt_message_not_found);
  return json_response(200, render_record(*m->latest, m->created_ms));
}

// The list reads every retained state in the caller's scope and orders it here: retained states
// are one per message (the store keeps them past log retention), so this is the message table.
// Validation comes first, in the order of §5, so a bad request costs no store read.
http_response list_messages(smsgw_context& cx, const principal& who, const http_request& req) {
  std::optional<std::int64_t> start, end;
  if (auto v = query_param(req.query, "startDate")) {
    start = parse_date(*v);
    if (!start) return error_reply(400, "Invalid startDate");
  }
  if (auto v = query_param(req.query, "endDate")) {
    end = parse_date(*v);
    if (!end) return error_reply(400, "Invalid endDate");
  }
  if (start && end && *start >= *end) return error_reply(400, "startDate must be before endDate");
  const auto want_status = query_param(req.query, "status");
  if (want_status && *want_status != "queued" && *want_status != "sending" &&
      *want_status != "sent" && *want_status != "failed" && *want_status != "received")
    return error_reply(400, "Invalid status");
  const auto direction = query_param(req.query, "direction");
  if (direction && *direction != "outbound" && *direction != "inbound")
    return error_reply(400, "Invalid direction");
  std::size_t limit = 50;
  if (auto v = query_param(req.query, "limit")) {
    auto n = parse_u64(*v);
    if (!n || *n < 1 || *n > 100) return error_reply(400, "limit must be 1-100");
    limit = static_cast<std::size_t>(*n);
  }
  // A cursor belongs to one query: its other parameters, hashed, travel inside it.
  const std::string qhash =
      sha256_hex(query_param(req.query, "startDate").value_or("") + "\n" +
                 query_param(req.query, "endDate").value_or("") + "\n" + want_status.value_or("") +
                 "\n" + direction.value_or("") + "\n" + std::to_string(limit) + "\n" + who.app_id)
          .substr(0, 16);
  std::optional<cursor> after;
  if (auto v = query_param(req.query, "cursor")) {
    after = decode_cursor(*v);
    if (!after || after->query_hash != qhash) return error_reply(400, "Invalid cursor");
  }
  std::vector<std::string> tenants;
  if (!who.is_admin_app()) tenants.push_back(who.tenant);
  auto states = cx.svc.st.states(tenants);
  if (!states) return error_reply(503, "Service unavailable");
  std::vector<message> found;
  for (const auto& e : *states) {
    if (!is_sms(*e) || !may_see(who, *e, &cx.svc.dir)) continue;
    if (want_status && record_status(*e) != *want_status) continue;
    if (direction && (*direction == "inbound") != (e->type == type_inbound)) continue;
    found.push_back(message{e, created_ms_of(cx.svc, *e)});
  }
  // Newest createdAt first, ties by messageId descending (then tenant: ids are per tenant).
  auto key = [](const message& m) {
    return std::tie(m.created_ms, m.latest->subject, m.latest->tenant);
  };
  std::sort(found.begin(), found.end(),
            [&](const message& a, const message& b) { return key(a) > key(b); });
  std::string out = "{\"messages\":[";
  std::size_t n = 0;
  const message* last = nullptr;
  bool more = false;
  for (const auto& m : found) {
    if (start && m.created_ms < *start) continue;
    if (end && m.created_ms >= *end) continue;
    // Keyset paging: strictly after the cursor's position, so new (newer) messages never shift
    // a later page.
    if (after &&
        std::make_tuple(m.created_ms, std::cref(m.latest->subject), std::cref(m.latest->tenant)) >=
            std::make_tuple(after->created_ms, std::cref(after->message_id),
                            std::cref(after->tenant)))
      continue;
    if (n == limit) {
      more = true;
      break;
    }
    if (n++ > 0) out += ',';
    out += render_record(*m.latest, m.created_ms);
    last = &m;
  }
  out += "],\"nextCursor\":";
  if (more && last != nullptr)
    out += json_quote(encode_cursor(
        cursor{last->created_ms, last->latest->tenant, last->latest->subject, qhash}));
  else
    out += "null";
  out += '}';
  return json_response(200, out);
}

http_response ws_token(smsgw_context& cx, const principal& who) {
  auto t = issue_ws_token(cx, who);
  if (!t) return error_reply(503, "Service unavailable");
  json::object o{{"token", *t}, {"expiresIn", cx.cfg->ws_token_ttl_s}};
  return json_response(200, json::serialize(o));
}

// §4.4: an intake, not a carrier. The queued event goes through the same validators as a native
// publish and is durable before the 202; the operator's sender does the rest.
http_response send(smsgw_context& cx, const principal& who, const http_request& req) {
  if (!cx.cfg->send_enabled) return error_reply(501, "Sending is not enabled on this gateway");
  // An Idempotency-Key makes a retry return the first answer (kept per app).
  std::string idem_key;
  if (const auto* k = req.header("idempotency-key"); k != nullptr && !k->empty()) {
    idem_key = sha256_hex(who.app_id + "\n" + *k);
    if (auto prev = cx.svc.st.get_record("smsgw_idem", idem_key); prev && *prev) {
      boost::system::error_code pec;
      json::value kept = json::parse(**prev, pec);
      const json::object* ko = pec ? nullptr : kept.if_object();
      const json::value* reply = ko != nullptr ? ko->if_contains("reply") : nullptr;
      const json::value* until = ko != nullptr ? ko->if_contains("expires_ms") : nullptr;
      // An expired key is a new request (core.idempotency_window bounds how long it holds).
      if (reply != nullptr && reply->is_string() && until != nullptr && until->is_int64() &&
          until->get_int64() > now_ms())
        return json_response(202, std::string(reply->get_string()));
    }
  }
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec || !v.is_object()) return error_reply(400, "Invalid JSON body");
  const json::object& o = v.get_object();
  auto str = [&](const char* k) -> const json::string* {
    const json::value* f = o.if_contains(k);
    return f != nullptr && f->is_string() ? &f->get_string() : nullptr;
  };
  const json::string *to = str("to"), *from = str("from"), *body = str("body");
  if (to == nullptr || from == nullptr || body == nullptr || to->empty() || from->empty())
    return error_reply(400, "to, from, and body are required");
  if (!valid_e164(*to) || !valid_e164(*from))
    return error_reply(400, "to and from must be valid E.164 phone numbers");
  const std::size_t len = code_points(*body);
  if (len < 1 || len > 1600) return error_reply(400, "body must be 1-1600 characters");
  const json::value* user = o.if_contains("userId");
  const std::string id = new_message_id();
  json::object data{{"status", "queued"},
                    {"to", *to},
                    {"from", *from},
                    {"body", *body},
                    {"userId", user != nullptr && user->is_string() ? *user : json::value()},
                    {"source", "send"}};
  event_draft d;
  d.topic = "/sms/" + who.tenant + "/status";
  d.type = std::string(type_status);
  d.tenant = who.tenant;
  d.app = who.app_id;
  d.subject = id;
  d.retain = true;
  d.data = json::serialize(data);
  // The same rules as a native publish of this type; durable before the 202 (design.md §5).
  for (const auto& val : cx.svc.validators)
    if (status st = val(d); !st) return error_reply(400, st.err().message);
  const std::string reply = "{\"messageId\":" + json_quote(id) + ",\"status\":\"queued\"}";
  // The idempotency record commits with the event (both or neither, even across a crash).
  append_record with;
  if (!idem_key.empty()) {
    with.kind = "smsgw_idem";
    with.key = idem_key;
    with.json = [&reply, window_ms = cx.svc.core.idempotency_window_s *
                                     1000](const std::vector<event_ptr>&) {
      json::object kept{{"reply", reply}, {"expires_ms", now_ms() + window_ms}};
      return json::serialize(kept);
    };
  }
  auto appended = cx.svc.st.append({d}, std::move(with));
  if (!appended) return error_reply(503, "Service unavailable");
  return json_response(202, reply);
}

// The routes of §5 with their methods: the 404/405 answers are computed from this table.
struct route_def {
  std::string_view method;
  std::vector<std::string_view> segs;  // "{name}" matches one segment
};
const std::vector<route_def>& route_table() {
  static const std::vector<route_def> t{{"GET", {"health"}},
                                        {"POST", {"v1", "ws", "token"}},
                                        {"GET", {"v1", "sms", "status", "{messageId}"}},
                                        {"GET", {"v1", "sms", "messages"}},
                                        {"POST", {"v1", "sms", "send"}}};
  return t;
}

bool matches(const route_def& r, const std::vector<std::string_view>& segs) {
  if (r.segs.size() != segs.size()) return false;
  for (std::size_t i = 0; i < segs.size(); ++i)
    if (r.segs[i].front() != '{' && r.segs[i] != segs[i]) return false;
  return true;
}

// Path, then method, then size, then auth: an unknown path is 404 and a wrong method 405 even
// without a key (they reveal nothing), and a refused body is never parsed.
http_response route(smsgw_context& cx, const http_request& req) {
  const auto segs = split_path(req.path);
  const route_def* hit = nullptr;
  std::string allow;
  for (const auto& r : route_table()) {
    if (!matches(r, segs)) continue;
    if (r.method == req.method || (r.method == "GET" && req.method == "HEAD")) hit = &r;
    if (!allow.empty()) allow += ", ";
    allow += r.method;
  }
  if (allow.empty()) return error_reply(404, txt_not_found);
  if (hit == nullptr) {
    http_response r = error_reply(405, "Method not allowed");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  if (req.body.size() > cx.cfg->max_body_bytes) return error_reply(413, "Payload too large");
  if (segs[0] == "health") return json_response(200, std::string("{\"status\":\"ok\"}"));
  auto who = rest_auth(cx, req);
  if (auto* refused = std::get_if<http_response>(&who)) return std::move(*refused);
  const principal& p = std::get<principal>(who);
  if (segs[1] == "ws") return ws_token(cx, p);
  if (segs[2] == "status") return get_status(cx, p, req, std::string(segs[3]));
  if (segs[2] == "messages") return list_messages(cx, p, req);
  return send(cx, p, req);
}

// X-Request-Id (§5): the request's own when 1-64 characters of [A-Za-z0-9._-], else a fresh
// UUID v4.
std::string request_id_of(const http_request& req) {
  if (const auto* h = req.header("x-request-id");
      h != nullptr && !h->empty() && h->size() <= 64 &&
      std::all_of(h->begin(), h->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
      }))
    return *h;
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  const std::string h = hex_encode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace

http_response with_request_id(const http_request& req, http_response res) {
  res.headers.emplace_back("X-Request-Id", request_id_of(req));
  return res;
}

http_response serve_rest(smsgw_context& cx, const http_request& req) {
  return with_request_id(req, route(cx, req));
}

void add_smsgw_routes(router& r, smsgw_context& cx) {
  for (const auto& def : route_table()) {
    std::string pattern;
    for (const auto seg : def.segs) pattern += "/" + std::string(seg);
    r.add(std::string(def.method), pattern,
          [&cx](route_match& m) { return serve_rest(cx, m.req); });
  }
}

}  // namespace smsgw
}  // namespace herald
