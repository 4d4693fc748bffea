#include "dialect/zoom/zoom_socket.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/numbers.h"
#include "dialect/zoom/zoom_codec.h"

namespace herald {
namespace {

// The contents of failed build_connection frames (§3.2), exactly as Zoom clients match them.
constexpr std::string_view token_empty = "token is empty";
constexpr std::string_view invalid_token = "Invalid Token";
constexpr std::string_view invalid_subscription = "Invalid subscriptionId";
constexpr std::string_view too_many_connections = "Too many connections";
constexpr std::string_view service_unavailable = "Service unavailable";
constexpr std::string_view token_expired = "token expired";

// The render slot's function, made once (event::rendered takes a std::function).
const std::function<std::string(const event&)>& render_content() {
  static const std::function<std::string(const event&)> f = zoom::quoted_webhook_body;
  return f;
}

}  // namespace

zoom_socket::zoom_socket(std::shared_ptr<zoom_context> cx, ws_connection& conn,
                         const http_request& up)
    : dialect_socket(*cx->svc, conn, up, "zoom"), cx_(std::move(cx)) {
  frame_tokens_ =
      static_cast<double>(cx_->cfg->client_frames_per_second * zoom_limits::rate_window_s);
  frame_tokens_at_ = opened_ms_;
}

zoom_socket::~zoom_socket() {
  if (registered_) cx_->sockets.release(sub_id_, con_id_);
}

// The zoom close table (§3.2, §7). Before the success frame a refusal is said in-band first
// (build_connection success:false); after it, closes carry no frame. The store being down and
// validate_timeout both end validation as auth_timeout: 1013 "Service unavailable".
wire_close zoom_socket::close_table(close_reason why, const std::string& detail) const {
  auto refuse = [&](int code, std::string text, std::string_view content) {
    wire_close w{code, std::move(text), {}};
    if (!built_) w.final_frame = zoom::envelope("build_connection", false, content);
    return w;
  };
  switch (why) {
    case close_reason::auth_failed:
      return refuse(4001, "invalid_token", detail == token_empty ? token_empty : invalid_token);
    case close_reason::forbidden:
      return refuse(4003, "invalid_subscription", invalid_subscription);
    case close_reason::too_many:
      return refuse(4029, "too_many_connections", too_many_connections);
    case close_reason::auth_timeout:
      return refuse(1013, "try_again_later", service_unavailable);
    // App deleted (or close_on_token_expiry): 4001 without a frame (§7).
    case close_reason::revoked:
      return {4001, detail == token_expired ? std::string(token_expired) : "invalid_token", {}};
    case close_reason::replaced:
      return {1000, "replaced", {}};
    case close_reason::admin:
      return {1000, detail, {}};  // "closed by admin", "subscription deleted"
    case close_reason::drain:
      return {1012, "service restart", {}};
    case close_reason::slow_consumer:
      return {4010, "slow consumer", {}};
    case close_reason::heartbeat:
    case close_reason::idle:
      return {4008, "heartbeat timeout", {}};
    case close_reason::absolute:
    case close_reason::seq_exhausted:
      return {4009, "absolute timeout", {}};
    case close_reason::protocol:
      return {1008, detail, {}};  // "rate limit", a bad last_seq
  }
  return {1011, "internal error", {}};
}

// ---- validation (§3.2, in order)

void zoom_socket::on_open() {
  const std::string& q = upgrade_.query;
  sub_id_ = zoom::query_value(q, "subscriptionId").value_or("");
  const std::string token = zoom::query_value(q, "access_token").value_or("");
  herald_ = zoom::query_value(q, "herald").value_or("") == "1";
  if (herald_) {
    resume_ = zoom::query_value(q, "resume").value_or("");
    if (auto ls = zoom::query_value(q, "last_seq")) {
      // Strict: a last_seq read as 0 would replay the ring as duplicates.
      auto n = parse_u64(*ls);
      if (!n) return close_with(close_reason::protocol, "last_seq: not a number");
      last_seq_ = *n;
    }
  }
  upgrade_.keep_origin_only();
  phase_ = phase::authenticating;
  if (token.empty())
    return close_with(close_reason::auth_failed, std::string(token_empty), error_cause::missing);
  // A native access token (audience native, kind access), checked in memory on the shard.
  auto claims = svc_.signer.verify(token, now());
  if (!claims || claims->aud != "native" || claims->kind != "access")
    return close_with(close_reason::auth_failed, std::string(invalid_token),
                      claims ? error_cause::wrong_kind : claims.err().cause);
  auto who = principal_of_claims(svc_, *claims);
  if (!who)
    return close_with(close_reason::auth_failed, std::string(invalid_token), who.err().cause);
  token_exp_ms_ = claims->exp_ms;
  if (sub_id_.empty())
    return close_with(close_reason::forbidden, std::string(invalid_subscription));
  auto out = std::make_shared<std::optional<result<std::optional<zoom_subscription>>>>();
  conn_.offload(
      // The blocking pool: values only, never `this`.
      [st = &svc_.st, out, id = sub_id_] { *out = load_zoom_subscription(*st, id); },
      [this, out, who = std::move(*who)]() mutable { validated(std::move(who), **out); });
}

void zoom_socket::validated(principal who, const result<std::optional<zoom_subscription>>& rec) {
  if (closed()) return;
  if (!rec) return close_with(close_reason::auth_timeout, std::string(service_unavailable));
  const bool ok = rec->has_value() && (*rec)->tenant == who.tenant &&
                  ((*rec)->app.empty() || (*rec)->app == who.app_id) &&
                  who.kind == principal_kind::app && who.app_role != role::publisher;
  if (!ok) return close_with(close_reason::forbidden, std::string(invalid_subscription));
  auto sub = core_subscription_of(**rec);
  if (!sub) return close_with(close_reason::forbidden, std::string(invalid_subscription));
  // The connection limits (4029) and the subscribe scope (4003); no failure counting: Zoom
  // clients reconnect at once after any close (§8), a 429 would not reach them anyway.
  if (!admit(std::move(who), admit_options{0, false})) return;
  // One socket per subscription (§3.5): the older ones stop taking deliveries now, before this
  // one's session exists, so no event goes to both; then they are closed on their shards.
  superseded_ = std::make_shared<std::atomic<bool>>(false);
  const bool single = cx_->cfg->single_connection;
  const std::int64_t claimed_ms = now();
  auto replaced =
      cx_->sockets.claim(sub_id_, {con_id_, self_ref(), this, superseded_, claimed_ms}, single);
  registered_ = true;
  // In a cluster the other nodes close theirs too (§3.5 "any node").
  if (single) zoom_announce(*cx_, "claim " + sub_id_ + " " + std::to_string(claimed_ms));
  for (const auto& e : replaced) {
    zoom_socket* old = e.sock;
    svc_.h.on_socket_shard(e.ref, [old] {
      old->on_kick(kick{close_reason::replaced, "replaced"});
    });
  }
  if (!herald_ || resume_.empty()) return start_fresh(std::move(*sub), recovery_error::none);
  resume_session(resume_, last_seq_,
                 [this, sub = std::move(*sub)](const resume_outcome& o) mutable {
                   if (o.error != recovery_error::none) return start_fresh(std::move(sub), o.error);
                   // The resumed session keeps its subscription; its missed events follow this
                   // frame.
                   send_success(o.seq, true, recovery_error::none);
                 });
}

void zoom_socket::start_fresh(subscription sub, recovery_error failed) {
  open_session(session_options{});
  // The success frame is the subscription's acknowledgement: it is written after the session is
  // in the hub's index and before any of its events (§3.2).
  install_subscription(std::move(sub), false, [this, failed](const session&) -> hub::task {
    return [this, failed] { send_success(0, false, failed); };
  });
}

void zoom_socket::send_success(std::uint64_t seq, bool recovered, recovery_error failed) {
  built_ = true;
  std::string header = "{}";
  if (herald_) {
    header = "{\"session\":" + json_quote(session_.id) +
             ",\"resume_token\":" + json_quote(resume_token_) + ",\"seq\":" + std::to_string(seq) +
             ",\"recovered\":" + (recovered ? "true" : "false");
    if (failed != recovery_error::none)
      header += ",\"recovery_error\":" + json_quote(recovery_error_name(failed));
    header += '}';
  }
  send_text(zoom::envelope("build_connection", true, "success", header));
  // Heartbeats that arrived during validation are answered now, after the success frame.
  for (; early_heartbeats_ > 0; --early_heartbeats_) send_text(std::string(zoom::heartbeat_reply));
}

void zoom_socket::apply(const zoom_subscription& rec) {
  if (closed() || !built_) return;
  auto sub = core_subscription_of(rec);
  if (!sub) return;
  install_subscription(std::move(*sub), false, [](const session&) { return hub::task{}; });
}

// ---- client frames (§3.3, §3.8)

bool zoom_socket::take_frame_token() {
  const std::int64_t t = now();
  const std::int64_t per_s = cx_->cfg->client_frames_per_second;  // a SIGHUP's: from this frame
  const double cap = static_cast<double>(per_s * zoom_limits::rate_window_s);
  frame_tokens_ = std::min(cap, frame_tokens_ + static_cast<double>(t - frame_tokens_at_) *
                                                    static_cast<double>(per_s) / 1000.0);
  frame_tokens_at_ = t;
  if (frame_tokens_ < 1.0) return false;
  frame_tokens_ -= 1.0;
  return true;
}

void zoom_socket::on_frame(std::string_view text, bool binary) {
  if (!take_frame_token()) {
    if (!built_) return;  // during validation the excess is dropped (§3.2)
    return close_with(close_reason::protocol, "rate limit");
  }
  if (binary || zoom::decode_client_frame(text) != zoom::client_module::heartbeat) return;
  if (!built_) {
    ++early_heartbeats_;  // answered after the success frame; after a failure, never
    return;
  }
  // "Reply at once": ahead of anything held.
  send_now(std::string(zoom::heartbeat_reply));
}

// ---- events (§3.4)

bool zoom_socket::accept_delivery(const delivery_ref& d) {
  if (superseded_ && superseded_->load(std::memory_order_acquire)) return false;
  return d.ev != nullptr;
}

void zoom_socket::write_delivery(const delivery_ref& d) {
  const std::string& content = d.ev->rendered(cx_->render_slot, render_content());
  std::string tail = ",\"header\":{}}";
  if (herald_) {
    tail = ",\"header\":{\"seq\":" + std::to_string(d.seq) + ",\"id\":" + json_quote(d.ev->id) +
           ",\"offset\":" + std::to_string(d.ev->offset) + "}}";
  }
  // The content is shared by every socket (one rendering per event); only a frame that has to
  // wait in the queue owns its parts, the content through an aliasing pointer to the event.
  struct owner {
    const event_ptr& ev;
    const std::string& content;
  } own{d.ev, content};
  const frame_parts parts{zoom::message_head, content, tail,
                          [](const frame_parts& p, const void* ctx) {
                            const auto& o = *static_cast<const owner*>(ctx);
                            return out_frame{std::string(p.head),
                                             std::shared_ptr<const std::string>(o.ev, &o.content),
                                             std::string(p.tail)};
                          },
                          &own};
  last_out_ms_ = coarse_now();
  send_parts(parts);
}

// ---- timers and the end

std::int64_t zoom_socket::on_tick(std::int64_t now_ms) {
  if (closed()) return 0;
  deadlines d(now_ms);
  const zoom_limits& cfg = *cx_->cfg;  // the values in force at this check (SIGHUP)
  if (!built_) {
    d.expire_at(opened_ms_ + cfg.validate_timeout_s * 1000, close_reason::auth_timeout);
    return finish_tick(d);
  }
  // Any client frame, data or control, moves last_in_ms_ (dialect_socket::on_traffic).
  d.expire_at(last_in_ms_ + cfg.idle_timeout_s * 1000, close_reason::heartbeat);
  d.expire_at(opened_ms_ + svc_.native->absolute_timeout_s * 1000, close_reason::absolute);
  if (cfg.close_on_token_expiry && token_exp_ms_ > 0) {
    if (now_ms >= token_exp_ms_) {
      close_with(close_reason::revoked, std::string(token_expired));
      return 0;
    }
    d.wake_at(token_exp_ms_);
  }
  return finish_tick(d);
}

void zoom_socket::on_closed(int close_code) {
  if (registered_) cx_->sockets.release(sub_id_, con_id_);
  registered_ = false;
  dialect_socket::on_closed(close_code);
}

connection_info zoom_socket::info() const {
  connection_info c = dialect_socket::info();
  c.extras_json = "{\"subscription_id\":" + json_quote(sub_id_) + "}";  // §5
  return c;
}

}  // namespace herald
