#include "dialect/ringcentral/rc_socket.h"

#include <algorithm>

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
    case recovery_error::buffer_overflow: return "HRD-1002";
    case recovery_error::forbidden: return "WSG-1003";
    default: return "HRD-1001";
  }
}

std::string render_shared(const event& e) { return rc::notification_shared(e); }

}  // namespace

rc_socket::rc_socket(std::shared_ptr<rc_context> cx, ws_connection& conn, const http_request& up)
    : cx_(std::move(cx)), svc_(cx_->svc), conn_(conn), upgrade_(up), con_id_(new_id("con_")) {
  opened_ms_ = last_in_ms_ = last_text_in_ms_ = last_out_ms_ = last_notify_ms_ = now_ms();
}

rc_socket::~rc_socket() = default;

// ---- output

void rc_socket::send_text(std::string text, bool pause) {
  emit(out_frame{std::move(text), nullptr, {}}, pause);
}

void rc_socket::emit(out_frame f, bool pause_after) {
  if (slow_) return;
  if (!paused_) return write_now(std::move(f), pause_after);
  if (conn_.queued_bytes() + held_bytes_ + f.size() > svc_.core.send_queue_bytes)
    return slow_consumer();
  held_bytes_ += f.size();
  held_.push_back(held_frame{std::move(f), pause_after});
}

void rc_socket::write_now(out_frame f, bool pause_after) {
  last_out_ms_ = now_ms();
  if (!conn_.send(std::move(f))) return slow_consumer();
  if (!pause_after) return;
  // §8.4: this frame goes in a write of its own (nothing else is queued behind it until the
  // pause ends), and nothing follows until notify_pause after that write completed.
  paused_ = true;
  const std::int64_t pause_ms =
      std::max(cx_->cfg.notify_pause_ms, ringcentral_limits::min_notify_pause_ms);
  conn_.after_written([this, pause_ms] { conn_.after(pause_ms, [this] { release_pause(); }); });
}

void rc_socket::release_pause() {
  paused_ = false;
  while (!held_.empty() && !paused_ && !slow_) {
    held_frame h = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= h.frame.size();
    write_now(std::move(h.frame), h.pause_after);
  }
}

void rc_socket::refuse(int status, const std::string& code, const std::string& message,
                       int close_code) {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  (void)conn_.send(out_frame{rc::render_error(random_token(12), status, code, message), nullptr, {}});
  conn_.close(close_code, message);
}

void rc_socket::slow_consumer() {
  if (slow_) return;
  slow_ = true;
  // The send queue passed its bound: stop queuing, say why if it still fits, then close.
  refuse(503, "HRD-4010", "Send queue over its bound (slow consumer)", 4010);
}

rc::wsc_value rc_socket::wsc_at(std::uint64_t seq) const {
  return rc::wsc_value{
      cx_->wsc.encode(rc::wsc_state{resume_token_, seq, base_, who_.login_session}),
      static_cast<std::int64_t>(base_ + seq)};
}

void rc_socket::reply(const std::string& message_id, int status, const std::string& body,
                      bool pause) {
  if (inflight_ > 0) --inflight_;
  if (phase_ == phase::closed) return;
  rc::wsc_value w;
  const bool with_wsc = last_sequence_ > 0;
  if (with_wsc) w = wsc_at(static_cast<std::uint64_t>(last_sequence_) - base_);
  send_text(rc::render_reply(message_id, status, with_wsc ? &w : nullptr, body), pause);
}

// ---- handshake

void rc_socket::on_open() {
  const auto& cfg = cx_->cfg;
  const auto token = query_param(upgrade_.query, "access_token").value_or("");
  const auto wsc_text = query_param(upgrade_.query, "wsc");
  upgrade_.keep_origin_only();
  if (token.empty()) return refuse(401, "HRD-401", "access_token (a ws token) is required", 4001);
  auto p = rc_principal_of_token(*cx_, token, "ws");
  if (!p) return refuse(401, "HRD-401", "Invalid ws token: " + p.err().message, 4001);
  if (!p->has(scope_subscribe)) return refuse(403, "HRD-403", "the subscribe scope is required", 4003);
  std::optional<rc::wsc_state> wsc;
  if (wsc_text) {
    wsc = cx_->wsc.decode(*wsc_text);
    if (!wsc) return refuse(400, "WSG-400", "Malformed wsc token", 1008);
  }
  if (status st = svc_.connections.acquire(*p, cfg.max_connections_per_session, svc_.core); !st)
    return refuse(429, "HRD-429", "Too many connections for this login session", 4029);
  counted_ = true;
  who_ = std::move(*p);
  sink_id_ = svc_.h.register_sink(this);
  if (!wsc) return start_fresh("", 0);
  const std::uint64_t presented = wsc->base + wsc->seq;
  if (wsc->login != who_.login_session) return start_fresh("WSG-1003", presented);
  phase_ = phase::recovering;
  const std::uint64_t me = sink_id_;
  hub* h = &svc_.h;
  const std::size_t shard = conn_.shard();
  svc_.h.resume(wsc->resume_token, wsc->seq, who_, sink_ref{shard, me},
                [this, h, me, presented](resume_outcome o) {
                  if (h->find_sink(me) != this || phase_ == phase::closed) {
                    // The socket went away during the hand-over: let the session wait again.
                    if (o.error == recovery_error::none)
                      h->with_session(o.ref, [h, me](session* s) {
                        if (s != nullptr) h->detach(*s, me, true);
                      });
                    return;
                  }
                  resumed(o, presented);
                });
}

void rc_socket::resumed(const resume_outcome& o, std::uint64_t presented) {
  if (o.error != recovery_error::none) {
    global_metrics().recoveries_by_outcome.add(std::string("rc_") + recovery_error_name(o.error));
    return start_fresh(recovery_code(o.error), presented);
  }
  if (!o.sub_id) {
    // Nothing to recover (§4.4 WSG-1005): end that session, start a fresh one here. Its
    // replays, already on their way, are dropped (no subscription on this socket yet).
    const std::uint64_t me = sink_id_;
    hub* h = &svc_.h;
    h->with_session(o.ref, [h, me](session* s) {
      if (s != nullptr) h->detach(*s, me, false);
    });
    return start_fresh("WSG-1005", presented);
  }
  global_metrics().recoveries_by_outcome.add("rc_recovered");
  session_ = o.ref;
  resume_token_ = o.resume_token;
  base_ = o.seq_base;
  has_sub_ = true;
  sub_ = rc::subscription_record{};
  sub_.id = *o.sub_id;
  sub_.creation_ms = now_ms();
  // The subscription's filters, for GET: read on the session's home shard.
  const std::uint64_t me = sink_id_;
  const std::size_t shard = conn_.shard();
  hub* h = &svc_.h;
  h->with_session(session_, [this, h, me, shard](session* s) {
    if (s == nullptr || !s->sub) return;
    std::vector<std::string> topics;
    for (const auto& f : s->sub->filters) topics.push_back(f.spec().topic);
    std::string id = s->sub->id;
    h->run_on(shard, [this, h, me, topics = std::move(topics), id = std::move(id)] {
      if (h->find_sink(me) == this && sub_.id == id && sub_.event_filters.empty())
        sub_.event_filters = topics;
    });
  });
  phase_ = phase::open;
  send_details(o.seq, "Successful", "");
  for (auto& f : std::exchange(deferred_, {})) handle_frame(f);
}

void rc_socket::start_fresh(const std::string& recovery_error, std::uint64_t presented) {
  std::int64_t counter = 0;
  if (auto l = svc_.dir.login(who_.login_session)) counter = l->counter;
  base_ = 1 + std::max<std::uint64_t>(presented, static_cast<std::uint64_t>(std::max<std::int64_t>(counter, 0)));
  if (base_ > static_cast<std::uint64_t>(max_sequence)) base_ = 1;  // never above (§4.3)
  session_ = svc_.h.open_session(who_, "ringcentral", sink_ref{conn_.shard(), sink_id_}, base_);
  const auto& cfg = cx_->cfg;
  svc_.h.with_session(session_, [this, &cfg](session* s) {  // inline: homed on this shard
    if (s == nullptr) return;
    s->ring_capacity = std::max<std::size_t>(cfg.recovery_buffer_size, 1);
    s->recovery_window_ms = cfg.recovery_timeout_s * 1000;
    s->log_replay = false;  // past recoveryBufferSize: HRD-1002, never paged from the log
    resume_token_ = s->resume_token;
  });
  has_sub_ = false;
  sub_ = rc::subscription_record{};
  phase_ = phase::open;
  send_details(0, recovery_error.empty() ? "" : "Failed", recovery_error);
  for (auto& f : std::exchange(deferred_, {})) handle_frame(f);
}

void rc_socket::send_details(std::uint64_t seq, const std::string& recovery_state,
                             const std::string& recovery_error) {
  const auto& cfg = cx_->cfg;
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

void rc_socket::on_traffic() { last_in_ms_ = now_ms(); }

void rc_socket::on_message(std::string_view text, bool binary) {
  if (phase_ == phase::closed || phase_ == phase::opening) return;
  last_text_in_ms_ = now_ms();
  if (binary) {
    send_text(rc::render_error(random_token(12), 400, "HRD-400", "binary frames are not part of the protocol"));
    return;
  }
  if (phase_ == phase::recovering) {
    if (deferred_.size() < cx_->cfg.max_active_requests + 2) deferred_.emplace_back(text);
    return;
  }
  handle_frame(text);
}

void rc_socket::handle_frame(std::string_view text) {
  if (phase_ != phase::open) return;
  rc::client_frame f;
  if (status st = parse_client_frame(text, f); !st) {
    const std::string id = f.message_id.empty() ? random_token(12) : f.message_id;
    send_text(rc::render_error(id, 400, "HRD-400", st.err().message));
    return;
  }
  if (f.type == "Heartbeat") {  // at once, even during a notify pause (§3.7)
    last_out_ms_ = now_ms();
    if (!conn_.send(out_frame{rc::render_heartbeat(f.message_id), nullptr, {}})) slow_consumer();
    return;
  }
  handle_request(std::move(f));
}

void rc_socket::handle_request(rc::client_frame f) {
  if (inflight_ >= cx_->cfg.max_active_requests) {
    ++inflight_;  // reply() takes it back
    return reply(f.message_id, 429, rc::api_error_body("CMN-301", "Request rate exceeded"));
  }
  ++inflight_;
  if (const auto sp = rc::classify_subscription_path(f.path); sp.kind != rc::sub_path_kind::none)
    return handle_subscription(f, sp);
  // Everything else: this dialect's routes only, as the socket's principal.
  http_request req;
  req.method = f.method;
  req.path = f.path;
  req.query = f.query;
  req.target = f.query.empty() ? f.path : f.path + "?" + f.query;
  req.remote = conn_.remote();
  req.host = upgrade_.host;
  req.scheme = upgrade_.scheme;
  if (f.body) {
    req.body = *f.body;
    req.headers["content-type"] = "application/json";
  }
  req.headers["authorization"] = "Bearer " + rc_access_token_for(*cx_, who_, 60000);
  auto res = std::make_shared<http_response>();
  const router* routes = &cx_->routes;
  conn_.offload([res, routes, req = std::move(req)] { *res = ringcentral_http(*routes, req); },
                [this, res, id = f.message_id] { reply(id, res->status, res->body); });
}

void rc_socket::handle_subscription(const rc::client_frame& f, const rc::sub_path& sp) {
  const std::string& id = f.message_id;
  const std::string base = rc_http_base(svc_, upgrade_) + cx_->prefix;
  auto not_found = [&] {
    reply(id, 404, rc::api_error_body("CMN-102", "Resource for parameter [subscriptionId] is not found", "subscriptionId"));
  };
  const bool known = sp.kind != rc::sub_path_kind::collection && has_sub_ && sp.id == sub_.id;
  if (sp.kind != rc::sub_path_kind::collection && !known) return not_found();
  const std::string& m = f.method;
  if (sp.kind == rc::sub_path_kind::collection && m == "GET") {
    std::string body = "{\"records\":[";
    if (has_sub_) body += rc::render_subscription(sub_, base, now_ms());
    body += "]}";
    return reply(id, 200, body);
  }
  if (sp.kind == rc::sub_path_kind::item && m == "GET")
    return reply(id, 200, rc::render_subscription(sub_, base, now_ms()));
  if (sp.kind == rc::sub_path_kind::renew && m == "POST")
    return reply(id, 200, rc::render_subscription(sub_, base, now_ms()), true);
  if (sp.kind == rc::sub_path_kind::item && m == "DELETE") {
    has_sub_ = false;
    sub_ = rc::subscription_record{};
    hub* h = &svc_.h;
    const std::size_t shard = conn_.shard();
    const std::uint64_t me = sink_id_;
    h->with_session(session_, [this, h, shard, me, id](session* s) {
      if (s != nullptr) {
        h->clear_subscription(*s);
        s->sub_id.reset();  // "no subscription" for a later recovery (WSG-1005)
      }
      h->run_on(shard, [this, h, me, id] {
        if (h->find_sink(me) == this) reply(id, 204, "");
      });
    });
    return;
  }
  const bool create = sp.kind == rc::sub_path_kind::collection && m == "POST";
  const bool update = sp.kind == rc::sub_path_kind::item && m == "PUT";
  if (!create && !update) return reply(id, 405, rc::api_error_body("CMN-102", "Method " + m + " not allowed here"));

  auto bad = [&](const std::string& msg, const std::string& param) {
    reply(id, 400, rc::api_error_body("CMN-101", msg, param));
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
    return reply(id, 200, rc::render_subscription(sub_, base, now_ms()), true);
  if (filters == nullptr || !filters->is_array() || filters->get_array().empty())
    return bad("Parameter [eventFilters] must be a non-empty array of strings", "eventFilters");
  if (filters->get_array().size() > cx_->cfg.max_filters)
    return bad("Parameter [eventFilters] holds more than " + std::to_string(cx_->cfg.max_filters) + " filters", "eventFilters");
  if (const auto* dm = body.if_contains("deliveryMode"); dm != nullptr && !dm->is_null()) {
    const json::value* tt = dm->is_object() ? dm->get_object().if_contains("transportType") : nullptr;
    if (!dm->is_object() || (tt != nullptr && !(tt->is_string() && tt->get_string() == "WebSocket")))
      return bad("Parameter [deliveryMode.transportType] must be WebSocket", "deliveryMode.transportType");
  }
  rc::subscription_record rec;
  rec.id = update ? sub_.id : new_id("sub_");
  rec.creation_ms = update ? sub_.creation_ms : now_ms();
  if (const auto* e = body.if_contains("expiresIn"); e != nullptr && e->is_int64() && e->get_int64() > 0)
    rec.expires_in_s = e->get_int64();
  else if (update)
    rec.expires_in_s = sub_.expires_in_s;
  subscription core;
  core.id = rec.id;
  core.tenants = tenant_set{who_.tenant, false};  // whatever the role: this tenant only (§4.1)
  std::size_t forbidden = 0;
  for (const auto& v : filters->get_array()) {
    if (!v.is_string()) return bad("Parameter [eventFilters] must be a non-empty array of strings", "eventFilters");
    const std::string text(v.get_string());
    const auto n = rc::normalize_filter(text, who_);
    if (n.verdict != rc::filter_verdict::ok) {
      if (n.verdict == rc::filter_verdict::forbidden) ++forbidden;
      rec.disabled.emplace_back(text, n.verdict == rc::filter_verdict::forbidden ? "Forbidden" : "Invalid");
      continue;
    }
    if (std::find(rec.event_filters.begin(), rec.event_filters.end(), n.topic) != rec.event_filters.end())
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
      return reply(id, 403, rc::api_error_body("CMN-401", "In order to subscribe to these event filters, more permissions are required", "eventFilters"));
    return bad("No valid event filter in [eventFilters]", "eventFilters");
  }
  install_subscription(id, std::move(rec), std::move(core));
}

void rc_socket::install_subscription(const std::string& message_id, rc::subscription_record rec,
                                     subscription sub) {
  has_sub_ = true;
  sub_ = std::move(rec);
  const std::string body = rc::render_subscription(sub_, rc_http_base(svc_, upgrade_) + cx_->prefix, now_ms());
  hub* h = &svc_.h;
  const std::size_t shard = conn_.shard();
  const std::uint64_t me = sink_id_;
  h->with_session(session_, [this, h, shard, me, message_id, body, sub = std::move(sub)](session* s) mutable {
    if (s != nullptr) h->set_subscription(*s, std::move(sub), false);
    // The reply reaches the socket before any event of the new subscription (FIFO per shard).
    h->run_on(shard, [this, h, me, message_id, body] {
      if (h->find_sink(me) == this) reply(message_id, 200, body, true);
    });
  });
}

// ---- delivery

void rc_socket::on_deliver(const delivery_ref& d) {
  if (phase_ != phase::open || slow_ || !has_sub_) return;
  const std::int64_t sequence = static_cast<std::int64_t>(base_ + d.seq);
  if (sequence > max_sequence)
    return refuse(409, "WSG-903", "Sequence limit reached: reconnect", 4009);
  const rc::wsc_value w = wsc_at(d.seq);
  const std::string& shared = d.ev->rendered(render_slot::ringcentral_notification, render_shared);
  out_frame f{rc::notification_head(d.ev->id, w), std::shared_ptr<const std::string>(d.ev, &shared),
              rc::notification_tail(d.subscription_id ? *d.subscription_id : sub_.id,
                                    who_.extension_id)};
  last_notify_ms_ = now_ms();
  last_sequence_ = std::max(last_sequence_, sequence);
  emit(std::move(f), false);
}

void rc_socket::on_kick(int close_code, const std::string& reason, bool resumable) {
  (void)resumable;
  if (phase_ == phase::closed) return;
  if (close_code == 4001) return refuse(401, "HRD-401", "Login session ended: " + reason, 4001);
  phase_ = phase::closed;
  conn_.close(close_code, reason);
}

// ---- timers and the end

std::int64_t rc_socket::on_tick(std::int64_t now) {
  if (phase_ == phase::closed) return 0;
  if (phase_ != phase::open) return now + 1000;  // not yet open: look again in a second
  const auto& cfg = cx_->cfg;
  const std::int64_t absolute_at = opened_ms_ + cfg.absolute_timeout_s * 1000;
  const std::int64_t silent_at = last_in_ms_ + 2 * cfg.ping_interval_s * 1000;
  const std::int64_t idle_at = std::max(last_text_in_ms_, last_notify_ms_) + cfg.idle_timeout_s * 1000;
  if (now > absolute_at) {
    refuse(408, "WSG-903", "Absolute timeout expired", 4009);
    return 0;
  }
  if (now > silent_at) {
    refuse(408, "WSG-902", "No inbound frame within 2 x ping_interval", 4008);
    return 0;
  }
  if (now > idle_at) {
    refuse(408, "WSG-902", "Idle timeout expired", 4008);
    return 0;
  }
  if (now - last_out_ms_ >= cfg.ping_interval_s * 1000) {
    conn_.ping();
    last_out_ms_ = now;
  }
  return std::min({absolute_at + 1, silent_at + 1, idle_at + 1,
                   last_out_ms_ + cfg.ping_interval_s * 1000});
}

void rc_socket::on_drain() {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  conn_.close(1012, "service restart");
}

void rc_socket::on_closed(int close_code) {
  phase_ = phase::closed;
  // Revoked (4001): never recoverable.
  release_socket(svc_, sink_id_, counted_, who_, session_, close_code != 4001);
  counted_ = false;
  // The highest sequence this socket sent stays with the login (§4.3), in the store too.
  if (last_sequence_ > 0 && !who_.login_session.empty()) {
    const std::int64_t seq = last_sequence_;
    auto l = svc_.dir.update_login(who_.login_session, [seq](login_record& r) {
      r.counter = std::max(r.counter, seq);
    });
    if (l) {
      store* st = &svc_.st;
      conn_.offload([st, rec = *l] { (void)persist(*st, rec); }, [] {});
    }
  }
}

connection_info rc_socket::info() const {
  connection_info c = describe_socket(con_id_, "ringcentral", who_, session_, conn_.remote(), opened_ms_);
  c.extras_json = "{\"login_session\":" +
                  (who_.login_session.empty() ? std::string("null") : json_quote(who_.login_session)) +
                  ",\"subscription\":" + (has_sub_ ? json_quote(sub_.id) : std::string("null")) + "}";
  return c;
}

}  // namespace herald
