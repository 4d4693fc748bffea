#include "dialect/native/native_socket.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/native_errors.h"
#include "api/numbers.h"
#include "core/metrics.h"

namespace herald {
namespace json = boost::json;
namespace {

// A compiled filter's identity: its canonical JSON (the ack's echo), equal for equal filters.
std::string spec_key(const filter_spec& f) { return json::serialize(filter_json(f)); }

std::string subject_status(services& svc, const principal& who, const std::string& subject) {
  if (auto r = svc.dir.subject(who.tenant, subject)) {
    if (r->corrupted) return "unknown";
    if (who.kind == principal_kind::user && who.trackers && r->kind == "tracker" &&
        std::find(who.trackers->begin(), who.trackers->end(), subject) == who.trackers->end())
      return "forbidden";
    return r->blocked ? "blocked" : "ok";
  }
  auto seen = svc.st.subject_seen(who.tenant, subject);
  return seen && *seen ? "ok" : "unknown";
}

}  // namespace

native_socket::native_socket(const native_context& cx, ws_connection& conn, const http_request& up)
    : dialect_socket(cx.svc, conn, up, "native"), cx_(cx), limits_(cx.svc.native) {
  last_activity_ms_ = opened_ms_;
}

// The native close table (the protocol reference's close codes): the reasons that refuse a
// credential or a request say why in an error frame first.
wire_close native_socket::close_table(close_reason why, const std::string& detail) const {
  auto with_error = [&](errc code, int close_code, const std::string& text) {
    return wire_close{close_code, text,
                      "{\"type\":\"error\",\"code\":\"" + std::string(errc_name(code)) +
                          "\",\"message\":" + json_quote(text) + "}"};
  };
  switch (why) {
    case close_reason::replaced:
    case close_reason::admin:
      return {1000, detail, {}};
    case close_reason::drain:
      return {1012, "service restart", {}};
    case close_reason::revoked:
    case close_reason::auth_failed:
      return with_error(errc::auth_failed, 4001, detail);
    case close_reason::forbidden:
      return with_error(errc::forbidden, 4003, detail);
    case close_reason::too_many:
      return with_error(errc::too_many_requests, 4029, detail);
    case close_reason::slow_consumer:
      return {4010, "slow consumer", {}};
    case close_reason::heartbeat:
      return {4008, "heartbeat timeout", {}};
    case close_reason::idle:
      return {4008, "idle timeout", {}};
    case close_reason::absolute:
    case close_reason::seq_exhausted:
      return {4009, "absolute timeout", {}};
    case close_reason::auth_timeout: {
      wire_close w = with_error(errc::auth_timeout, 4002, "no authentication within auth_timeout");
      w.text = "auth timeout";
      return w;
    }
    case close_reason::protocol:
      return with_error(errc::bad_message, 1008, detail);
  }
  return {1011, "internal error", {}};
}

void native_socket::send_error(const std::string& id, errc code, const std::string& message) {
  std::string out = "{\"type\":\"error\"";
  if (!id.empty()) out += ",\"id\":" + json_quote(id);
  out +=
      ",\"code\":\"" + std::string(errc_name(code)) + "\",\"message\":" + json_quote(message) + "}";
  send_text(std::move(out));
}

// ---- authentication

void native_socket::on_open() {
  auth_request r;
  if (auto t = query_param(upgrade_.query, "access_token"); t && !t->empty()) {
    r.credential = *t;
    r.ws_token = true;
  } else if (const auto* h = upgrade_.header("authorization")) {
    r.credential = std::string(bearer_of(*h));
  }
  if (auto res = query_param(upgrade_.query, "resume")) r.resume = *res;
  if (auto ls = query_param(upgrade_.query, "last_seq")) {
    // Strict: a last_seq read as 0 would replay the whole ring as duplicates.
    auto n = parse_u64(*ls);
    if (!n) return close_with(close_reason::protocol, "last_seq: not a number");
    r.last_seq = *n;
  }
  upgrade_.keep_origin_only();
  if (!r.credential.empty()) return start_auth(r);
  // Authentication comes in-band; a resume named in the query still applies to it.
  query_resume_ = std::move(r.resume);
  query_last_seq_ = r.last_seq;
}

void native_socket::start_auth(const auth_request& r) {
  // Past the address's failed-authentication limit the credential is still checked (every
  // kind is cheap: a hash or a signature): a valid one is never refused for others' failures
  // from the same address; a failed one is answered too_many (authenticated()).
  phase_ = phase::authenticating;
  if (!r.ws_token) {
    // An API key or access token is checked in memory (a hash, an HMAC, directory lookups):
    // right here on the shard, not handed to the blocking pool and back.
    return authenticated(authenticate_credential(svc_, r.credential, "native"), r);
  }
  auto out = std::make_shared<std::optional<result<principal>>>();
  conn_.offload(
      // The blocking pool (the single-use guard is a store write): values only, never `this`.
      [svc = &svc_, out, cred = r.credential] {
        *out = authenticate_ws_token(*svc, cred, "native", true);
      },
      [this, out, r] { authenticated(std::move(**out), r); });
}

void native_socket::authenticated(result<principal> p, const auth_request& r) {
  if (!p && !auth_allowed()) {
    auth_failed_here();
    return close_with(close_reason::too_many, "too many failed authentications from this address",
                      error_cause::auth_failures);
  }
  if (!admit(std::move(p), {limits_->max_connections_per_session, true})) return;
  if (r.resume.empty()) return send_welcome(nullptr, recovery_error::none);
  resume_session(r.resume, r.last_seq, [this](const resume_outcome& o) {
    const bool ok = o.error == recovery_error::none;
    global_metrics().recoveries_by_outcome.add(ok ? "recovered" : recovery_error_name(o.error));
    if (ok) return send_welcome(&o, recovery_error::none);
    send_welcome(nullptr, o.error);
  });
}

void native_socket::send_welcome(const resume_outcome* recovered, recovery_error failed) {
  if (recovered == nullptr) open_session(session_options{});
  const native_limits& n = *limits_;  // what this socket is told: the values in force now
  json::object limits{{"heartbeat_interval", n.heartbeat_interval_s},
                      {"idle_timeout", n.idle_timeout_s},
                      {"absolute_timeout", n.absolute_timeout_s},
                      {"recovery_window", n.recovery_window_s},
                      {"recovery_buffer", n.recovery_buffer},
                      {"max_inflight", n.max_inflight},
                      {"max_message_bytes", n.max_message_bytes},
                      {"max_connections_per_session", n.max_connections_per_session}};
  json::object w{{"type", "welcome"},
                 {"session", session_.id},
                 {"resume_token", resume_token_},
                 {"seq", recovered != nullptr ? recovered->seq : 0},
                 {"recovered", recovered != nullptr},
                 {"limits", limits}};
  if (failed != recovery_error::none) w["recovery_error"] = recovery_error_name(failed);
  if (recovered != nullptr && recovered->sub_id) w["subscription"] = *recovered->sub_id;
  send_text(json::serialize(w));
}

// ---- client messages

void native_socket::on_frame(std::string_view text, bool binary) {
  native_decoded d =
      binary
          ? native_decoded{{},
                           error{errc::bad_message, "binary frames are not part of the protocol"}}
          : decode_native(text, limits_->filters.max_filters);
  if (phase_ == phase::authenticating) return;  // one auth at a time; the rest is ignored
  if (phase_ == phase::awaiting_auth) {
    // The first message must authenticate.
    if (d.err || d.msg.type != native_msg::kind::auth)
      return close_with(close_reason::auth_failed,
                        "the first message must be {\"type\":\"auth\",...}", error_cause::missing);
    auth_request r;
    r.credential = !d.msg.token.empty() ? d.msg.token : d.msg.api_key;
    if (r.credential.empty())
      return close_with(close_reason::auth_failed, "auth: token or api_key required",
                        error_cause::missing);
    r.ws_token = true;
    if (!d.msg.resume.empty()) {
      r.resume = d.msg.resume;
      r.last_seq = d.msg.last_seq.value_or(0);
    } else {
      r.resume = query_resume_;
      r.last_seq = d.msg.last_seq.value_or(query_last_seq_);
    }
    return start_auth(r);
  }
  if (d.err) return send_error(d.msg.id, d.err->code, d.err->message);
  handle(d.msg);
}

bool native_socket::take_request_slot(const std::string& id) {
  if (begin_request(limits_->max_inflight)) return true;
  send_error(id, errc::too_many_requests,
             "more than " + std::to_string(limits_->max_inflight) + " requests in flight");
  return false;
}

void native_socket::handle(const native_msg& msg) {
  if (msg.type == native_msg::kind::pong) return;
  last_activity_ms_ = now();
  switch (msg.type) {
    case native_msg::kind::ping:
      send_text("{\"type\":\"pong\"" +
                (msg.id.empty() ? std::string() : ",\"id\":" + json_quote(msg.id)) + "}");
      return;
    case native_msg::kind::subscribe:
      return handle_subscribe(msg);
    case native_msg::kind::unsubscribe:
      return handle_unsubscribe(msg);
    case native_msg::kind::request:
      return handle_request(msg);
    case native_msg::kind::auth:
      return send_error(msg.id, errc::bad_message, "already authenticated");
    case native_msg::kind::pong:
      return;
  }
}

void native_socket::handle_subscribe(const native_msg& msg) {
  const std::string id = msg.id;
  subscription sub;
  sub.id = new_id("sub_");
  sub.snapshot = msg.snapshot;
  std::vector<std::string> listed;
  for (std::size_t i = 0; i < msg.filters.size(); ++i) {
    const filter_spec& spec = msg.filters[i];
    auto f = filter::compile(spec, who_.tenant, limits_->filters);
    if (!f)
      return send_error(id, errc::invalid_filter,
                        "filters[" + std::to_string(i) + "]." + f.err().message);
    if (spec.subjects) listed.insert(listed.end(), spec.subjects->begin(), spec.subjects->end());
    sub.filters.push_back(std::move(*f));
  }
  if (!take_request_slot(id)) return;
  auto statuses = std::make_shared<json::object>();
  // The slot is held until the request is over: the ack, or a snapshot's copies delivered.
  auto install = [this, statuses, id, sub = std::move(sub)]() mutable {
    json::array echoed;
    for (const auto& f : sub.filters) echoed.push_back(filter_json(f.spec()));
    json::object ack{{"type", "ack"},
                     {"id", id},
                     {"subscription",
                      json::object{{"id", sub.id}, {"filters", echoed}, {"subjects", *statuses}}}};
    const bool snapshot = sub.snapshot;
    install_subscription(
        std::move(sub), snapshot,
        [this, ack = std::move(ack)](const session& s) mutable {
          // Every event with a higher offset is matched by the new filters; lower
          // ones are in GET /v1/events?since=offset:N.
          ack.at("subscription").as_object()["from_offset"] = s.sub_from_offset;
          return [this, text = json::serialize(ack)] { send_text(text); };
        },
        [this] { end_request(); });
  };
  // No subjects listed: nothing to read from the store, so nothing leaves the shard.
  if (listed.empty()) return install();
  conn_.offload(
      [svc = &svc_, who = who_, statuses, listed] {
        for (const auto& s : listed) (*statuses)[s] = subject_status(*svc, who, s);
      },
      std::move(install));
}

void native_socket::handle_unsubscribe(const native_msg& msg) {
  // Each filter to remove is compiled and keyed once here; the home shard then looks every
  // filter of the subscription up by its key (one serialisation each, not one per pair).
  auto remove = std::make_shared<std::unordered_set<std::string>>();
  for (std::size_t i = 0; i < msg.filters.size(); ++i) {
    auto f = filter::compile(msg.filters[i], who_.tenant, limits_->filters);
    if (!f)
      return send_error(msg.id, errc::invalid_filter,
                        "filters[" + std::to_string(i) + "]." + f.err().message);
    remove->insert(spec_key(f->spec()));
  }
  if (!take_request_slot(msg.id)) return;
  hub* h = &svc_.h;
  with_session([this, h, remove, id = msg.id](session* s) -> hub::task {
    if (s != nullptr && s->sub && !remove->empty()) {
      subscription next = *s->sub;
      std::erase_if(next.filters,
                    [&](const filter& f) { return remove->contains(spec_key(f.spec())); });
      if (next.filters.empty())
        h->clear_subscription(*s);
      else
        h->set_subscription(*s, std::move(next), false);
    } else if (s != nullptr) {
      h->clear_subscription(*s);
    }
    return [this, id] {
      end_request();
      send_text("{\"type\":\"ack\",\"id\":" + json_quote(id) + "}");
    };
  });
}

void native_socket::handle_request(const native_msg& msg) {
  const std::string id = msg.id;
  if (msg.path.size() > limits_->max_path_bytes)
    return send_error(id, errc::too_large, "path: too long");
  if (!take_request_slot(id)) return;
  http_request req;
  req.method = msg.method;
  req.target = msg.path;
  const auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query = q == std::string::npos ? std::string() : req.target.substr(q + 1);
  req.host = upgrade_.host;
  req.body = msg.body;
  // The socket's identity, as a short-lived access token of its principal.
  req.headers["authorization"] =
      "Bearer " + svc_.signer.issue(claims_for(who_, "native", "access", 60000));
  if (!msg.idempotency_key.empty()) req.headers["idempotency-key"] = msg.idempotency_key;
  dispatch_request(
      cx_.routes, std::move(req),
      [](const router& r, const http_request& q2) { return r.dispatch(q2); },
      [this, id](const http_response& res) {
        std::string out = "{\"type\":\"ack\",\"id\":" + json_quote(id) +
                          ",\"status\":" + std::to_string(res.status) + ",\"body\":";
        out += res.body.empty() ? std::string("null") : res.body;
        out += '}';
        send_text(std::move(out));
      });
}

// ---- events

void native_socket::write_delivery(const delivery_ref& d) {
  const std::string& body = d.ev->rendered(cx_.render_slot, render_event_json);
  // The head is written into a buffer this socket keeps: a constant prefix, the seq digits,
  // then the subscription part rendered once per subscription (no allocation per event).
  constexpr std::string_view prefix = "{\"type\":\"event\",\"seq\":";
  constexpr std::size_t max_digits = 20;
  if (d.subscription_id.get() != quoted_sub_for_ || head_.empty()) {
    quoted_sub_for_ = d.subscription_id.get();
    head_tail_ = ",\"subscription\":";
    head_tail_ += d.subscription_id ? json_quote(*d.subscription_id) : std::string("null");
    head_tail_ += ",\"event\":";
    head_.assign(prefix);
    head_.resize(prefix.size() + max_digits + head_tail_.size());
  }
  char* const start = head_.data();
  char* cur = std::to_chars(start + prefix.size(), start + prefix.size() + max_digits, d.seq).ptr;
  std::memcpy(cur, head_tail_.data(), head_tail_.size());
  cur += head_tail_.size();
  const std::string_view head(start, static_cast<std::size_t>(cur - start));
  // Only a message that must wait in the queue owns its parts: the rendered body is shared
  // across connections by an aliasing shared_ptr that keeps the event alive.
  struct owner {
    const event_ptr& ev;
    const std::string& body;
  } own{d.ev, body};
  const frame_parts parts{head, body, "}",
                          [](const frame_parts& p, const void* ctx) {
                            const auto& o = *static_cast<const owner*>(ctx);
                            return out_frame{std::string(p.head),
                                             std::shared_ptr<const std::string>(o.ev, &o.body),
                                             std::string(p.tail)};
                          },
                          &own};
  // Stamped from the shard's coarse clock: no clock read per delivery (the timers have a
  // second's resolution).
  last_out_ms_ = last_activity_ms_ = coarse_now();
  send_parts(parts);
}

// ---- timers

std::int64_t native_socket::on_tick(std::int64_t now) {
  if (closed()) return 0;
  deadlines d(now);
  const native_limits& l = *limits_;  // the values in force at this check (SIGHUP)
  if (phase_ == phase::awaiting_auth || phase_ == phase::authenticating) {
    d.expire_at(opened_ms_ + l.auth_timeout_s * 1000, close_reason::auth_timeout);
    return finish_tick(d);
  }
  if (phase_ != phase::open) {
    d.wake_at(now + 1000);  // a resume's hand-over: look again in a second
    return finish_tick(d);
  }
  const std::int64_t hb_ms = l.heartbeat_interval_s * 1000;
  d.expire_at(opened_ms_ + l.absolute_timeout_s * 1000, close_reason::absolute);
  d.expire_at(last_in_ms_ + 2 * hb_ms, close_reason::heartbeat);
  d.expire_at(last_activity_ms_ + l.idle_timeout_s * 1000, close_reason::idle);
  if (d.expired()) return finish_tick(d);
  // Ping when the client has been quiet (even while events flow out: a listening client
  // answers the ping frame) or the connection is quiet both ways; at most once per interval.
  const auto ping_at = [&] {
    return std::max(std::min(last_in_ms_, last_out_ms_), last_ping_ms_) + hb_ms;
  };
  if (now >= ping_at()) {
    last_ping_ms_ = now;
    send_text("{\"type\":\"ping\"}");
    conn_.ping();
  }
  d.wake_at(ping_at());
  return finish_tick(d);
}

}  // namespace herald
