#include "dialect/ringcentral/rc_socket.h"

#include <algorithm>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/json_util.h"
#include "api/records.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "dialect/dialect.h"
#include "dialect/ringcentral/ringcentral.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::int64_t max_sequence = 2147483647;

const char* recovery_code(recovery_error e) {
  switch (e) {
    case recovery_error::buffer_overflow:
      return "HRD-1002";
    case recovery_error::forbidden:
      return "WSG-1003";
    default:
      return "HRD-1001";
  }
}

std::string render_shared(const event& e) { return rc::notification_shared(e); }

std::string error_frame(int status, const std::string& code, const std::string& message) {
  return rc::render_error(random_token(12), status, code, message);
}

}  // namespace

rc_socket::rc_socket(std::shared_ptr<rc_context> cx, ws_connection& conn, const http_request& up)
    : dialect_socket(cx->svc, conn, up, "ringcentral"), cx_(std::move(cx)) {
  last_text_in_ms_ = last_notify_ms_ = opened_ms_;
  set_pause_ms(std::max(cx_->cfg->notify_pause_ms, ringcentral_limits::min_notify_pause_ms));
  max_deferred_ = cx_->cfg->max_active_requests + 2;
}

// RingCentral's close table (ringcentral.md §3.8, §6): an Error frame, then the close.
wire_close rc_socket::close_table(close_reason why, const std::string& detail) const {
  auto refuse = [](int status, const std::string& code, const std::string& message, int close) {
    return wire_close{close, message, error_frame(status, code, message)};
  };
  switch (why) {
    case close_reason::replaced:
    case close_reason::admin:
      return {1000, detail, {}};
    case close_reason::drain:
      return {1012, "service restart", {}};
    case close_reason::auth_failed:
      return refuse(401, "HRD-401", detail, 4001);
    case close_reason::revoked:
      return refuse(401, "HRD-401", "Login session ended: " + detail, 4001);
    case close_reason::forbidden:
      return refuse(403, "HRD-403", detail, 4003);
    case close_reason::too_many:
      return refuse(429, "HRD-429", "Too many connections for this login session", 4029);
    case close_reason::protocol:
      return refuse(400, "WSG-400", detail, 1008);
    case close_reason::slow_consumer:
      return refuse(503, "HRD-4010", "Send queue over its bound (slow consumer)", 4010);
    case close_reason::seq_exhausted:
      return refuse(409, "WSG-903", "Sequence limit reached: reconnect", 4009);
    case close_reason::absolute:
      return refuse(408, "WSG-903", "Absolute timeout expired", 4009);
    case close_reason::heartbeat:
      return refuse(408, "WSG-902", "No inbound frame within 2 x ping_interval", 4008);
    case close_reason::idle:
      return refuse(408, "WSG-902", "Idle timeout expired", 4008);
    case close_reason::auth_timeout:
      return refuse(408, "WSG-902", detail, 4008);
  }
  return {1011, "internal error", {}};
}

rc::wsc_value rc_socket::wsc_at(std::uint64_t seq) const {
  return rc::wsc_value{
      cx_->wsc.encode(rc::wsc_state{resume_token_, seq, base_, who_.login_session}),
      static_cast<std::int64_t>(base_ + seq)};
}

void rc_socket::reply(const std::string& message_id, int status, const std::string& body,
                      bool pause) {
  if (closed()) return;
  rc::wsc_value w;
  const bool with_wsc = last_sequence_ > 0;
  if (with_wsc) w = wsc_at(static_cast<std::uint64_t>(last_sequence_) - base_);
  send_text(rc::render_reply(message_id, status, with_wsc ? &w : nullptr, body), pause);
}

void rc_socket::answer(const std::string& message_id, int status, const std::string& body,
                       bool pause) {
  end_request();
  reply(message_id, status, body, pause);
}

// ---- handshake

void rc_socket::on_open() {
  const auto token = query_param(upgrade_.query, "access_token").value_or("");
  const auto wsc_text = query_param(upgrade_.query, "wsc");
  upgrade_.keep_origin_only();
  if (token.empty())
    return close_with(close_reason::auth_failed, "access_token (a ws token) is required",
                      error_cause::missing);
  auto p = rc_principal_of_token(*cx_, token, "ws");
  if (!p) p = error{p.err().code, "Invalid ws token: " + p.err().message, p.err().cause};
  std::optional<rc::wsc_state> wsc;
  if (p && wsc_text) {
    wsc = cx_->wsc.decode(*wsc_text);
    if (!wsc) return close_with(close_reason::protocol, "Malformed wsc token");
  }
  // RingCentral's clients treat refusals other than 401/403 as fatal: its sockets do not count
  // against the failed-authentication limit (ringcentral.md §8.2).
  if (!admit(std::move(p), {cx_->cfg->max_connections_per_session, false})) return;
  if (!wsc) return start_fresh("", 0);
  const std::uint64_t presented = wsc->base + wsc->seq;
  if (wsc->login != who_.login_session) return start_fresh("WSG-1003", presented);
  resume_session(wsc->resume_token, wsc->seq,
                 [this, presented](const resume_outcome& o) { resumed(o, presented); });
}

void rc_socket::resumed(const resume_outcome& o, std::uint64_t presented) {
  if (o.error != recovery_error::none) {
    global_metrics().recoveries_by_outcome.add(std::string("rc_") + recovery_error_name(o.error));
    return start_fresh(recovery_code(o.error), presented);
  }
  if (!o.sub_id) {
    // Nothing to recover (§4.4 WSG-1005): end that session, start a fresh one here. Its
    // replays, already on their way, are dropped (no subscription on this socket yet).
    drop_session();
    return start_fresh("WSG-1005", presented);
  }
  global_metrics().recoveries_by_outcome.add("rc_recovered");
  base_ = o.seq_base;
  has_sub_ = true;
  sub_ = rc::subscription_record{};
  sub_.id = *o.sub_id;
  sub_.creation_ms = now();
  // The subscription's filters, for GET: read on the session's home shard.
  with_session([this](session* s) -> hub::task {
    if (s == nullptr || !s->sub) return {};
    std::vector<std::string> topics;
    for (const auto& f : s->sub->filters) topics.push_back(f.spec().topic);
    return [this, topics = std::move(topics), id = s->sub->id] {
      if (sub_.id == id && sub_.event_filters.empty()) sub_.event_filters = topics;
    };
  });
  send_details(o.seq, "Successful", "");
}

void rc_socket::start_fresh(const std::string& recovery_error, std::uint64_t presented) {
  std::int64_t counter = 0;
  if (auto l = svc_.dir.login(who_.login_session)) counter = l->counter;
  base_ = 1 + std::max<std::uint64_t>(
                  presented, static_cast<std::uint64_t>(std::max<std::int64_t>(counter, 0)));
  if (base_ > static_cast<std::uint64_t>(max_sequence)) base_ = 1;  // never above (§4.3)
  const auto& cfg = *cx_->cfg;
  session_options opts;
  opts.seq_base = base_;
  opts.ring_capacity = std::max<std::size_t>(cfg.recovery_buffer_size, 1);
  opts.recovery_window_ms = cfg.recovery_timeout_s * 1000;
  opts.log_replay = false;  // past recoveryBufferSize: HRD-1002, never paged from the log
  open_session(opts);
  has_sub_ = false;
  sub_ = rc::subscription_record{};
  send_details(0, recovery_error.empty() ? "" : "Failed", recovery_error);
}

void rc_socket::send_details(std::uint64_t seq, const std::string& recovery_state,
                             const std::string& recovery_error) {
  const auto& cfg = *cx_->cfg;
  rc::connection_details d;
  d.creation_ms = opened_ms_;
  d.max_connections_per_session = cfg.max_connections_per_session;
  d.recovery_buffer_size = cfg.recovery_buffer_size;
  d.recovery_timeout_s = cfg.recovery_timeout_s;
  d.idle_timeout_s = cfg.idle_timeout_s;
  d.absolute_timeout_s = cfg.absolute_timeout_s;
  d.max_active_requests = cfg.max_active_requests;
  d.recovery_state = recovery_state;
  d.recovery_error_code = recovery_error;
  const rc::wsc_value w = wsc_at(seq);
  last_sequence_ = w.sequence;
  // The sequence is sent: the login's counter remembers it for later sessions (§4.3).
  svc_.dir.update_login(who_.login_session, [&](login_record& l) {
    l.counter = std::max<std::int64_t>(l.counter, last_sequence_);
  });
  send_text(rc::render_connection_details(random_token(16), w, d), true);
}

// ---- input

void rc_socket::on_frame(std::string_view text, bool binary) {
  if (phase_ != phase::open) return;
  last_text_in_ms_ = now();
  if (binary) {
    send_text(error_frame(400, "HRD-400", "binary frames are not part of the protocol"));
    return;
  }
  rc::client_frame f;
  if (status st = parse_client_frame(text, f); !st) {
    const std::string id = f.message_id.empty() ? random_token(12) : f.message_id;
    send_text(rc::render_error(id, 400, "HRD-400", st.err().message));
    return;
  }
  if (f.type == "Heartbeat") {  // at once, even during a notify pause (§3.7)
    send_now(rc::render_heartbeat(f.message_id));
    return;
  }
  handle_request(std::move(f));
}

void rc_socket::handle_request(rc::client_frame f) {
  if (!begin_request(cx_->cfg->max_active_requests))
    return reply(f.message_id, 429, rc::api_error_body("CMN-301", "Request rate exceeded"));
  if (const auto sp = rc::classify_subscription_path(f.path); sp.kind != rc::sub_path_kind::none)
    return handle_subscription(f, sp);
  // Everything else: this dialect's routes only, as the socket's principal.
  http_request req;
  req.method = f.method;
  req.path = f.path;
  req.query = f.query;
  req.target = f.query.empty() ? f.path : f.path + "?" + f.query;
  req.host = upgrade_.host;
  req.scheme = upgrade_.scheme;
  if (f.body) {
    req.body = *f.body;
    req.headers["content-type"] = "application/json";
  }
  req.headers["authorization"] = "Bearer " + rc_access_token_for(*cx_, who_, 60000);
  dispatch_request(
      cx_->routes, std::move(req), ringcentral_http,
      [this, id = f.message_id](const http_response& res) { reply(id, res.status, res.body); });
}

void rc_socket::handle_subscription(const rc::client_frame& f, const rc::sub_path& sp) {
  const std::string& id = f.message_id;
  const std::string base = rc_http_base(svc_, upgrade_) + cx_->prefix;
  auto not_found = [&] {
    answer(id, 404,
           rc::api_error_body("CMN-102", "Resource for parameter [subscriptionId] is not found",
                              "subscriptionId"));
  };
  const bool known = sp.kind != rc::sub_path_kind::collection && has_sub_ && sp.id == sub_.id;
  if (sp.kind != rc::sub_path_kind::collection && !known) return not_found();
  const std::string& m = f.method;
  if (sp.kind == rc::sub_path_kind::collection && m == "GET") {
    std::string body = "{\"records\":[";
    if (has_sub_) body += rc::render_subscription(sub_, base, now());
    body += "]}";
    return answer(id, 200, body);
  }
  if (sp.kind == rc::sub_path_kind::item && m == "GET")
    return answer(id, 200, rc::render_subscription(sub_, base, now()));
  if (sp.kind == rc::sub_path_kind::renew && m == "POST")
    return answer(id, 200, rc::render_subscription(sub_, base, now()), true);
  if (sp.kind == rc::sub_path_kind::item && m == "DELETE") {
    has_sub_ = false;
    sub_ = rc::subscription_record{};
    // forget_id: a later recovery hears "no subscription" (WSG-1005).
    clear_subscription(true, [this, id] { answer(id, 204, ""); });
    return;
  }
  const bool create = sp.kind == rc::sub_path_kind::collection && m == "POST";
  const bool update = sp.kind == rc::sub_path_kind::item && m == "PUT";
  if (!create && !update)
    return answer(id, 405, rc::api_error_body("CMN-102", "Method " + m + " not allowed here"));

  auto bad = [&](const std::string& msg, const std::string& param) {
    answer(id, 400, rc::api_error_body("CMN-101", msg, param));
  };
  json::object body;
  if (f.body) {
    boost::system::error_code ec;
    json::value v = json::parse(*f.body, ec);
    if (ec || !v.is_object()) return bad("Request body must be a JSON object", "");
    body = std::move(v.as_object());
  } else if (create) {
    return bad("Parameter [eventFilters] is missing", "eventFilters");
  }
  const json::value* filters = body.if_contains("eventFilters");
  if (update && (filters == nullptr || filters->is_null()))  // renew only
    return answer(id, 200, rc::render_subscription(sub_, base, now()), true);
  if (filters == nullptr || !filters->is_array() || filters->get_array().empty())
    return bad("Parameter [eventFilters] must be a non-empty array of strings", "eventFilters");
  if (filters->get_array().size() > cx_->cfg->max_filters)
    return bad("Parameter [eventFilters] holds more than " + std::to_string(cx_->cfg->max_filters) +
                   " filters",
               "eventFilters");
  if (const auto* dm = body.if_contains("deliveryMode"); dm != nullptr && !dm->is_null()) {
    const json::value* tt =
        dm->is_object() ? dm->get_object().if_contains("transportType") : nullptr;
    if (!dm->is_object() ||
        (tt != nullptr && !(tt->is_string() && tt->get_string() == "WebSocket")))
      return bad("Parameter [deliveryMode.transportType] must be WebSocket",
                 "deliveryMode.transportType");
  }
  rc::subscription_record rec;
  rec.id = update ? sub_.id : new_id("sub_");
  rec.creation_ms = update ? sub_.creation_ms : now();
  if (const auto* e = body.if_contains("expiresIn");
      e != nullptr && e->is_int64() && e->get_int64() > 0)
    rec.expires_in_s = e->get_int64();
  else if (update)
    rec.expires_in_s = sub_.expires_in_s;
  subscription core;
  core.id = rec.id;
  core.tenants = tenant_set{who_.tenant, false};  // whatever the role: this tenant only (§4.1)
  std::size_t forbidden = 0;
  for (const auto& v : filters->get_array()) {
    if (!v.is_string())
      return bad("Parameter [eventFilters] must be a non-empty array of strings", "eventFilters");
    const std::string text(v.get_string());
    const auto n = rc::normalize_filter(text, who_);
    if (n.verdict != rc::filter_verdict::ok) {
      if (n.verdict == rc::filter_verdict::forbidden) ++forbidden;
      rec.disabled.emplace_back(
          text, n.verdict == rc::filter_verdict::forbidden ? "Forbidden" : "Invalid");
      continue;
    }
    if (std::find(rec.event_filters.begin(), rec.event_filters.end(), n.topic) !=
        rec.event_filters.end())
      continue;
    auto compiled = filter::compile(filter_spec{n.topic, {}, {}, {}}, who_.tenant, filter_limits{});
    if (!compiled) {
      rec.disabled.emplace_back(text, "Invalid");
      continue;
    }
    rec.event_filters.push_back(n.topic);
    core.filters.push_back(std::move(*compiled));
  }
  if (core.filters.empty()) {
    if (forbidden == filters->get_array().size())
      return answer(
          id, 403,
          rc::api_error_body(
              "CMN-401",
              "In order to subscribe to these event filters, more permissions are required",
              "eventFilters"));
    return bad("No valid event filter in [eventFilters]", "eventFilters");
  }
  install(id, std::move(rec), std::move(core));
}

void rc_socket::install(const std::string& message_id, rc::subscription_record rec,
                        subscription sub) {
  has_sub_ = true;
  sub_ = std::move(rec);
  const std::string body =
      rc::render_subscription(sub_, rc_http_base(svc_, upgrade_) + cx_->prefix, now());
  // The reply reaches the socket before any event of the new subscription.
  install_subscription(std::move(sub), false, [this, message_id, body](const session&) {
    return [this, message_id, body] { answer(message_id, 200, body, true); };
  });
}

// ---- delivery

bool rc_socket::accept_delivery(const delivery_ref& d) {
  if (!has_sub_) return false;
  const std::int64_t sequence = static_cast<std::int64_t>(base_ + d.seq);
  if (sequence > max_sequence) {
    close_with(close_reason::seq_exhausted, "sequence limit reached");
    return false;
  }
  // Counted when accepted (it precedes any reply made after it), written in its turn.
  last_notify_ms_ = now();
  last_sequence_ = std::max(last_sequence_, sequence);
  return true;
}

void rc_socket::write_delivery(const delivery_ref& d) {
  const rc::wsc_value w = wsc_at(d.seq);
  const std::string& shared = d.ev->rendered(cx_->render_slot, render_shared);
  write_frame(out_frame{
      rc::notification_head(d.ev->id, w), std::shared_ptr<const std::string>(d.ev, &shared),
      rc::notification_tail(d.subscription_id ? *d.subscription_id : sub_.id, who_.extension_id)});
}

// ---- timers and the end

std::int64_t rc_socket::on_tick(std::int64_t now) {
  if (closed()) return 0;
  deadlines d(now);
  if (phase_ != phase::open) {
    d.wake_at(now + 1000);  // not yet open: look again in a second
    return finish_tick(d);
  }
  const auto& cfg = *cx_->cfg;
  const std::int64_t ping_ms = cfg.ping_interval_s * 1000;
  d.expire_at(opened_ms_ + cfg.absolute_timeout_s * 1000, close_reason::absolute);
  d.expire_at(last_in_ms_ + 2 * ping_ms, close_reason::heartbeat);
  d.expire_at(std::max(last_text_in_ms_, last_notify_ms_) + cfg.idle_timeout_s * 1000,
              close_reason::idle);
  if (d.expired()) return finish_tick(d);
  if (now - last_out_ms_ >= ping_ms) {
    conn_.ping();
    last_out_ms_ = now;
  }
  d.wake_at(last_out_ms_ + ping_ms);
  return finish_tick(d);
}

void rc_socket::on_closed(int close_code) {
  dialect_socket::on_closed(close_code);
  // The highest sequence this socket sent stays with the login (§4.3), in the store too.
  if (last_sequence_ > 0 && !who_.login_session.empty()) {
    const std::int64_t seq = last_sequence_;
    auto l = svc_.dir.update_login(
        who_.login_session, [seq](login_record& r) { r.counter = std::max(r.counter, seq); });
    if (l) {
      store* st = &svc_.st;
      conn_.offload([st, rec = *l] { (void)persist(*st, rec); }, [] {});
    }
  }
}

connection_info rc_socket::info() const {
  connection_info c = dialect_socket::info();
  c.extras_json =
      "{\"login_session\":" +
      (who_.login_session.empty() ? std::string("null") : json_quote(who_.login_session)) +
      ",\"subscription\":" + (has_sub_ ? json_quote(sub_.id) : std::string("null")) + "}";
  return c;
}

}  // namespace herald
