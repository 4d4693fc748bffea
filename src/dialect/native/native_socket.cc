#include "dialect/native/native_socket.h"

#include <algorithm>
#include <cstring>
#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/native_errors.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "dialect/dialect.h"
#include "dialect/native/native_codec.h"

namespace herald {
namespace json = boost::json;
namespace {

bool same_spec(const filter_spec& a, const filter_spec& b) {
  return json::serialize(filter_json(a)) == json::serialize(filter_json(b));
}

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

native_socket::native_socket(services& svc, const router& routes, ws_connection& conn,
                             const http_request& up)
    : svc_(svc), routes_(routes), conn_(conn), upgrade_(up), con_id_(new_id("con_")) {
  opened_ms_ = last_in_ms_ = last_out_ms_ = last_activity_ms_ = now_ms();
}

native_socket::~native_socket() = default;

void native_socket::send_text(std::string text) {
  last_out_ms_ = now_ms();
  if (!conn_.send(out_frame{std::move(text), nullptr, {}})) slow_consumer();
}

void native_socket::send_error(const std::string& id, errc code, const std::string& message) {
  std::string out = "{\"type\":\"error\"";
  if (!id.empty()) out += ",\"id\":" + json_quote(id);
  out += ",\"code\":\"" + std::string(errc_name(code)) + "\",\"message\":" + json_quote(message) + "}";
  send_text(std::move(out));
}

void native_socket::fail(errc code, const std::string& message, int close_code) {
  send_error("", code, message);
  phase_ = phase::closed;
  conn_.close(close_code, message);
}

void native_socket::slow_consumer() {
  if (slow_) return;
  slow_ = true;
  // Stop queuing, send the close frame as soon as the socket takes it (native.md §3.7).
  conn_.close(4010, "slow consumer", true);
}

void native_socket::on_open() {
  auth_request r;
  if (auto t = query_param(upgrade_.query, "access_token"); t && !t->empty()) {
    r.credential = *t;
    r.ws_token = true;
  } else if (const auto* h = upgrade_.header("authorization")) {
    std::string_view v = *h;
    if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer "))
      r.credential = std::string(v.substr(7));
  }
  if (auto res = query_param(upgrade_.query, "resume")) r.resume = *res;
  if (auto ls = query_param(upgrade_.query, "last_seq")) {
    try {
      r.last_seq = std::stoull(*ls);
    } catch (...) {
      r.last_seq = std::nullopt;
    }
  }
  upgrade_.keep_origin_only();
  if (!r.credential.empty()) start_auth(std::move(r));
}

void native_socket::start_auth(auth_request r) {
  if (!svc_.auth_failures.allows(remote_address(conn_.remote()), now_ms()))
    return fail(errc::too_many_requests, "too many failed authentications from this address", 4029);
  phase_ = phase::authenticating;
  if (!r.ws_token) {
    // An API key or access token is checked in memory (a hash, an HMAC, directory lookups):
    // done right here on the shard, not handed to the blocking pool and back.
    return authenticated(authenticate_credential(svc_, r.credential, "native"), r);
  }
  auto out = std::make_shared<std::optional<result<principal>>>();
  conn_.offload(
      // Work on the blocking pool must not touch `this`: the socket may be gone when it runs.
      [svc = &svc_, out, cred = r.credential] {
        // Runs on the blocking pool: the replay guard is a store write.
        *out = authenticate_ws_token(*svc, cred, "native", true);
      },
      [this, out, r] { authenticated(std::move(**out), r); });
}

void native_socket::authenticated(result<principal> p, const auth_request& r) {
  if (phase_ == phase::closed) return;
  if (!p) {
    (void)svc_.auth_failures.take(remote_address(conn_.remote()), 1, now_ms());
    return fail(errc::auth_failed, p.err().message, 4001);
  }
  if (!p->has(scope_subscribe)) return fail(errc::forbidden, "the subscribe scope is required", 4003);
  if (status st = svc_.connections.acquire(*p, svc_.native.max_connections_per_session, svc_.core); !st)
    return fail(errc::too_many_requests, st.err().message, 4029);
  counted_ = true;
  who_ = std::move(*p);
  sink_id_ = svc_.h.register_sink(this);
  phase_ = phase::open;
  const sink_ref me{conn_.shard(), sink_id_};
  if (!r.resume.empty()) {
    svc_.h.resume(r.resume, r.last_seq.value_or(0), who_, me, [this](resume_outcome o) {
      if (phase_ == phase::closed) return;
      if (o.error == recovery_error::none) {
        in_replay_ = true;  // the missed events follow in this same task, then on_batch_end
        session_ = o.ref;
        resume_token_ = o.resume_token;
        global_metrics().recoveries_by_outcome.add("recovered");
        send_welcome(&o, recovery_error::none);
      } else {
        global_metrics().recoveries_by_outcome.add(recovery_error_name(o.error));
        send_welcome(nullptr, o.error);
      }
    });
    return;
  }
  send_welcome(nullptr, recovery_error::none);
}

void native_socket::send_welcome(const resume_outcome* recovered, recovery_error failed) {
  std::uint64_t seq = 0;
  if (recovered != nullptr) {
    seq = recovered->seq;
  } else {
    session_ = svc_.h.open_session(who_, "native", sink_ref{conn_.shard(), sink_id_});
    svc_.h.with_session(session_, [this](session* s) {
      if (s != nullptr) resume_token_ = s->resume_token;
    });
  }
  const auto& n = svc_.native;
  json::object limits{{"heartbeat_interval", n.heartbeat_interval_s},
                      {"idle_timeout", n.idle_timeout_s},
                      {"absolute_timeout", n.absolute_timeout_s},
                      {"recovery_window", n.recovery_window_s},
                      {"recovery_buffer", n.recovery_buffer},
                      {"max_inflight", n.max_inflight},
                      {"max_message_bytes", n.max_message_bytes},
                      {"max_connections_per_session", n.max_connections_per_session}};
  json::object w{{"type", "welcome"}, {"session", session_.id}, {"resume_token", resume_token_},
                 {"seq", seq}, {"recovered", recovered != nullptr}, {"limits", limits}};
  if (failed != recovery_error::none) w["recovery_error"] = recovery_error_name(failed);
  if (recovered != nullptr && recovered->sub_id) w["subscription"] = *recovered->sub_id;
  send_text(json::serialize(w));
}

void native_socket::on_traffic() { last_in_ms_ = now_ms(); }

void native_socket::on_message(std::string_view text, bool binary) {
  if (phase_ == phase::closed) return;
  native_decoded d = binary ? native_decoded{{}, error{errc::bad_message, "binary frames are not part of the protocol"}}
                            : decode_native(text, svc_.native.filters.max_filters);
  if (phase_ != phase::open) {
    if (phase_ == phase::authenticating) return;  // one auth at a time; the rest is ignored
    // The first message must authenticate (native.md §3.1).
    if (d.err || d.msg.type != native_msg::kind::auth)
      return fail(errc::auth_failed, "the first message must be {\"type\":\"auth\",...}", 4001);
    auth_request r;
    r.credential = !d.msg.token.empty() ? d.msg.token : d.msg.api_key;
    if (r.credential.empty()) return fail(errc::auth_failed, "auth: token or api_key required", 4001);
    r.ws_token = true;
    r.resume = d.msg.resume;
    r.last_seq = d.msg.last_seq;
    return start_auth(std::move(r));
  }
  if (d.err) return send_error(d.msg.id, d.err->code, d.err->message);
  handle(d.msg);
}

bool native_socket::begin_request(const std::string& id) {
  if (inflight_ >= svc_.native.max_inflight) {
    send_error(id, errc::too_many_requests,
               "more than " + std::to_string(svc_.native.max_inflight) + " requests in flight");
    return false;
  }
  ++inflight_;
  return true;
}

void native_socket::end_request() {
  if (inflight_ > 0) --inflight_;
}

void native_socket::handle(const native_msg& msg) {
  if (msg.type == native_msg::kind::pong) return;
  last_activity_ms_ = now_ms();
  switch (msg.type) {
    case native_msg::kind::ping:
      return send_text("{\"type\":\"pong\"" +
                       (msg.id.empty() ? std::string() : ",\"id\":" + json_quote(msg.id)) + "}");
    case native_msg::kind::subscribe: return handle_subscribe(msg);
    case native_msg::kind::unsubscribe: return handle_unsubscribe(msg);
    case native_msg::kind::request: return handle_request(msg);
    case native_msg::kind::auth: return send_error(msg.id, errc::bad_message, "already authenticated");
    case native_msg::kind::pong: return;
  }
}

void native_socket::handle_subscribe(const native_msg& msg) {
  const std::string& id = msg.id;
  subscription sub;
  sub.id = new_id("sub_");
  sub.snapshot = msg.snapshot;
  std::vector<std::string> listed;
  for (std::size_t i = 0; i < msg.filters.size(); ++i) {
    const filter_spec& spec = msg.filters[i];
    auto f = filter::compile(spec, who_.tenant, svc_.native.filters);
    if (!f) return send_error(id, errc::invalid_filter, "filters[" + std::to_string(i) + "]." + f.err().message);
    if (spec.subjects) listed.insert(listed.end(), spec.subjects->begin(), spec.subjects->end());
    sub.filters.push_back(std::move(*f));
  }
  if (!begin_request(id)) return;
  // Subject statuses read the store: off the shard, then install on the session's shard.
  auto statuses = std::make_shared<json::object>();
  auto install = [this, statuses, id, sub = std::move(sub)]() mutable {
    end_request();
    json::array echoed;
    for (const auto& f : sub.filters) echoed.push_back(filter_json(f.spec()));
    json::object ack{{"type", "ack"}, {"id", id},
                     {"subscription", json::object{{"id", sub.id}, {"filters", echoed},
                                                   {"subjects", *statuses}}}};
    const bool snapshot = sub.snapshot;
    const std::size_t shard = conn_.shard();
    const std::uint64_t me = sink_id_;
    hub* h = &svc_.h;
    svc_.h.with_session(session_, [this, h, shard, me, snapshot, ack = std::move(ack),
                                   sub = std::move(sub)](session* s) mutable {
      if (s == nullptr) return;
      auto filters = sub.filters;
      const principal who = s->who;
      h->set_subscription(*s, std::move(sub), snapshot);
      // Every event with a higher offset is matched against the new filters; lower ones
      // are in GET /v1/events?since=offset:N.
      ack.at("subscription").as_object()["from_offset"] = s->sub_from_offset;
      std::string ack_text = json::serialize(ack);
      // The ack goes out before any event of the new subscription (FIFO to the shard).
      h->run_on(shard, [this, h, me, ack_text] {
        if (h->find_sink(me) == this) send_text(ack_text);
      });
      if (!snapshot) return;
      const session_ref ref{s->home_shard, s->id};
      h->post(shard, [this, h, me, ref, filters, who] {
        if (h->find_sink(me) != this) return;
        auto copies = std::make_shared<std::vector<event_ptr>>();
        conn_.offload(
            [svc = &svc_, copies, filters, who] {
              std::vector<std::string> tenants;
              if (!who.is_admin_app()) tenants.push_back(who.tenant);
              auto states = svc->st.states(tenants);
              if (!states) return;
              for (const auto& e : *states)
                if (may_see(who, *e, &svc->dir) && any_matches(filters, *e)) copies->push_back(e);
            },
            [h, ref, copies] {
              h->with_session(ref, [h, copies](session* s2) {
                if (s2 != nullptr) h->release_snapshot(*s2, *copies);
              });
            });
      });
    });
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
  const std::string& id = msg.id;
  std::vector<filter_spec> remove;
  for (std::size_t i = 0; i < msg.filters.size(); ++i) {
    auto f = filter::compile(msg.filters[i], who_.tenant, svc_.native.filters);
    if (!f) return send_error(id, errc::invalid_filter, "filters[" + std::to_string(i) + "]." + f.err().message);
    remove.push_back(f->spec());
  }
  const std::size_t shard = conn_.shard();
  const std::uint64_t me = sink_id_;
  hub* h = &svc_.h;
  h->with_session(session_, [this, h, shard, me, remove, id](session* s) {
    if (s == nullptr) return;
    if (s->sub && !remove.empty()) {
      subscription next = *s->sub;
      std::erase_if(next.filters, [&](const filter& f) {
        return std::any_of(remove.begin(), remove.end(), [&](const filter_spec& r) { return same_spec(r, f.spec()); });
      });
      if (next.filters.empty()) h->clear_subscription(*s);
      else h->set_subscription(*s, std::move(next), false);
    } else {
      h->clear_subscription(*s);
    }
    h->run_on(shard, [this, h, me, id] {
      if (h->find_sink(me) == this) send_text("{\"type\":\"ack\",\"id\":" + json_quote(id) + "}");
    });
  });
}

void native_socket::handle_request(const native_msg& msg) {
  const std::string& id = msg.id;
  if (msg.path.size() > svc_.native.max_path_bytes) return send_error(id, errc::too_large, "path: too long");
  if (!begin_request(id)) return;
  http_request req;
  req.method = msg.method;
  req.target = msg.path;
  const auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query = q == std::string::npos ? std::string() : req.target.substr(q + 1);
  req.remote = conn_.remote();
  req.host = upgrade_.host;
  req.body = msg.body;
  // The socket's identity, as a short-lived access token of its principal.
  const token_claims c = claims_for(who_, "native", "access", 60000);
  req.headers["authorization"] = "Bearer " + svc_.signer.issue(c);
  if (!msg.idempotency_key.empty()) req.headers["idempotency-key"] = msg.idempotency_key;
  auto res = std::make_shared<http_response>();
  conn_.offload([routes = &routes_, res, req = std::move(req)] { *res = routes->dispatch(req); },
                [this, res, id] {
                  end_request();
                  std::string out = "{\"type\":\"ack\",\"id\":" + json_quote(id) +
                                    ",\"status\":" + std::to_string(res->status) + ",\"body\":";
                  out += res->body.empty() ? std::string("null") : res->body;
                  out += '}';
                  send_text(std::move(out));
                });
}

void native_socket::on_deliver(const delivery_ref& d) {
  if (phase_ != phase::open || slow_) return;
  if (in_replay_ || !backlog_.empty()) {
    backlog_.push_back(d.own());
    if (!in_replay_) {
      // A live event behind a replay: it counts against the send-queue bound.
      backlog_live_bytes_ += d.ev->data.size() + d.ev->topic.size() + 160;
      if (backlog_live_bytes_ + conn_.queued_bytes() > svc_.core.send_queue_bytes) slow_consumer();
    }
    return;
  }
  write_delivery(d);
}

void native_socket::write_delivery(const delivery_ref& d) {
  const std::string& body = d.ev->rendered(render_slot::native_event, render_event_json);
  // The per-connection head, written into a buffer this socket keeps: a constant prefix, the
  // seq digits, then the subscription part rendered once per subscription (no allocation and
  // no string growth per event).
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
  // Outbound traffic and activity, to the shard's coarse clock (no clock read per delivery; the
  // heartbeat and idle timers have a second's resolution).
  last_out_ms_ = last_activity_ms_ = coarse_now_ms();
  if (!conn_.send(parts)) slow_consumer();
}

void native_socket::on_batch_end() {
  if (in_replay_) {
    in_replay_ = false;
    pump_backlog();
  }
}

void native_socket::pump_backlog() {
  pump_armed_ = false;
  const std::size_t high_water = svc_.core.send_queue_bytes / 2;
  while (!backlog_.empty() && !slow_ && phase_ == phase::open &&
         conn_.queued_bytes() < high_water) {
    const delivery d = std::move(backlog_.front());
    backlog_.pop_front();
    write_delivery(d);
  }
  if (backlog_.empty()) {
    backlog_live_bytes_ = 0;
  } else if (!pump_armed_ && !slow_ && phase_ == phase::open) {
    pump_armed_ = true;
    conn_.after_written([this] { pump_backlog(); });
  }
}

void native_socket::on_kick(int close_code, const std::string& reason, bool resumable) {
  (void)resumable;
  if (phase_ == phase::closed) return;
  if (close_code == 4001) return fail(errc::auth_failed, reason, 4001);
  phase_ = phase::closed;
  conn_.close(close_code, reason);
}

std::int64_t native_socket::on_tick(std::int64_t now) {
  if (phase_ == phase::closed) return 0;
  const auto& n = svc_.native;
  if (phase_ != phase::open) {
    const std::int64_t auth_deadline = opened_ms_ + n.auth_timeout_s * 1000;
    if (now > auth_deadline) {
      send_error("", errc::auth_timeout, "no authentication within auth_timeout");
      phase_ = phase::closed;
      conn_.close(4002, "auth timeout");
      return 0;
    }
    return auth_deadline + 1;
  }
  const std::int64_t hb_ms = n.heartbeat_interval_s * 1000;
  const std::int64_t absolute_at = opened_ms_ + n.absolute_timeout_s * 1000;
  const std::int64_t silent_at = last_in_ms_ + 2 * hb_ms;
  const std::int64_t idle_at = last_activity_ms_ + n.idle_timeout_s * 1000;
  if (now > absolute_at) {
    phase_ = phase::closed;
    conn_.close(4009, "absolute timeout");
    return 0;
  }
  if (now > silent_at) {
    phase_ = phase::closed;
    conn_.close(4008, "heartbeat timeout");
    return 0;
  }
  if (now > idle_at) {
    phase_ = phase::closed;
    conn_.close(4008, "idle timeout");
    return 0;
  }
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
  return std::min({absolute_at + 1, silent_at + 1, idle_at + 1, ping_at()});
}

void native_socket::on_drain() {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  conn_.close(1012, "service restart");
}

void native_socket::on_closed(int close_code) {
  phase_ = phase::closed;
  release_socket(svc_, sink_id_, counted_, who_, session_, close_code != 4001);
  counted_ = false;
}

connection_info native_socket::info() const {
  return describe_socket(con_id_, "native", who_, session_, conn_.remote(), opened_ms_);
}

}  // namespace herald
