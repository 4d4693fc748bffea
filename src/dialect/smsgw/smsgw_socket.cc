#include "dialect/smsgw/smsgw_socket.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "dialect/smsgw/smsgw_codec.h"

namespace herald {
namespace {

using namespace std::string_view_literals;

// smsgw has no recovery (§2.4): a detached session is dropped at once, so it keeps no ring.
session_options no_recovery() {
  session_options o;
  o.ring_capacity = 1;
  o.recovery_window_ms = 1;
  o.log_replay = false;
  return o;
}

}  // namespace

smsgw_socket::smsgw_socket(smsgw_context& cx, ws_connection& conn, const http_request& up)
    : dialect_socket(cx.svc, conn, up, "smsgw"),
      cx_(cx),
      addr_(cx.svc.auth_failures.client_address(up)) {
  msg_tokens_ = static_cast<double>(cx_.cfg->client_msg_burst);
  msg_tokens_at_ = opened_ms_;
}

filter_spec smsgw_socket::implicit_filter() {
  filter_spec f;
  f.topic = "/**";
  f.types =
      std::vector<std::string>{std::string(smsgw::type_status), std::string(smsgw::type_inbound)};
  return f;
}

// The smsgw close table (§2.2, §2.4, §8). Every refusal of the credential is an auth_error frame
// with the same text as the 1008 reason; the rest close without a frame.
wire_close smsgw_socket::close_table(close_reason why, const std::string& detail) const {
  auto auth_error = [](std::string_view text) {
    return wire_close{1008, std::string(text), smsgw::auth_error_frame(text)};
  };
  switch (why) {
    case close_reason::auth_failed:
      return auth_error(detail.empty() ? smsgw::txt_invalid_key : detail);
    case close_reason::forbidden:
      return auth_error(smsgw::txt_not_permitted);
    case close_reason::too_many:
      // The address block speaks of requests; every slot limit (per key, app, tenant) of
      // connections.
      return auth_error(detail == smsgw::txt_too_many_requests ? smsgw::txt_too_many_requests
                                                               : smsgw::txt_too_many_connections);
    case close_reason::auth_timeout:
      return auth_error(smsgw::txt_auth_timeout);
    case close_reason::revoked:
      return auth_error(smsgw::txt_revoked);
    case close_reason::protocol:
      // A dialect rule broken after auth: the flood (1008) or an oversized auth frame (1009).
      if (detail == smsgw::txt_frame_too_big) return {1009, detail, {}};
      return {1008, detail, {}};
    case close_reason::replaced:
    case close_reason::admin:
      return {1000, detail, {}};
    case close_reason::drain:
      return {1012, "service restart", {}};
    case close_reason::slow_consumer:
      return {4010, "slow consumer", {}};
    case close_reason::heartbeat:
    case close_reason::idle:
      return {4008, "liveness timeout", {}};
    case close_reason::absolute:
    case close_reason::seq_exhausted:
      return {4009, "absolute timeout", {}};
  }
  return {1011, "internal error", {}};
}

// ---- authentication

void smsgw_socket::on_open() {
  // Nothing of the upgrade request is used (no query, no header credential: §2).
  upgrade_.keep_origin_only();
}

void smsgw_socket::refuse(close_reason why, std::string_view text, bool count, error_cause cause) {
  if (count) cx_.auth_fails.fail(addr_, now());
  close_with(why, std::string(text), cause);
}

void smsgw_socket::on_frame(std::string_view text, bool binary) {
  if (phase_ == phase::authenticating) return;  // nothing more is read until auth resolves
  if (phase_ != phase::awaiting_auth) {
    // After auth every frame counts against the client's rate; only a ping is answered.
    if (!take_message_token())
      return close_with(close_reason::protocol, std::string(smsgw::txt_too_many_messages));
    if (smsgw::is_ping(text, binary)) send_text("{\"type\":\"pong\"}");
    return;
  }
  // The auth frame has its own, smaller bound than the socket's (§2.2: 1009, no auth_error).
  if (text.size() > cx_.cfg->max_auth_frame_bytes)
    return close_with(close_reason::protocol, std::string(smsgw::txt_frame_too_big));
  const smsgw::auth_frame f = smsgw::decode_auth(text, binary);
  using k = smsgw::auth_frame::kind;
  if (f.k == k::invalid_json)
    return refuse(close_reason::auth_failed, smsgw::txt_invalid_json, false,
                  error_cause::malformed);
  if (f.k == k::not_auth)
    return refuse(close_reason::auth_failed, smsgw::txt_send_auth_first, false,
                  error_cause::missing);
  // A blocked address is refused whatever it presents (§7), before the credential is looked at.
  if (cx_.auth_fails.blocked_for_s(addr_, now()) > 0)
    return refuse(close_reason::too_many, smsgw::txt_too_many_requests, false,
                  error_cause::auth_failures);
  if (f.k == k::no_credential)
    return refuse(close_reason::auth_failed, smsgw::txt_invalid_key, true, error_cause::missing);
  authenticate(f.credential, f.k == k::token);
}

void smsgw_socket::authenticate(std::string credential, bool ws_token) {
  phase_ = phase::authenticating;
  if (!ws_token) {
    // An API key is a hash and a directory lookup: right here on the shard.
    return authenticated(smsgw::principal_of_key(svc_, credential));
  }
  auto out = std::make_shared<std::optional<result<principal>>>();
  conn_.offload(
      // The blocking pool (the single-use guard is a store write): values only, never `this`.
      [cx = &cx_, out, cred = std::move(credential)] { *out = smsgw::redeem_ws_token(*cx, cred); },
      [this, out] { authenticated(std::move(**out)); });
}

void smsgw_socket::authenticated(result<principal> p) {
  if (closed()) return;
  if (!p) {
    if (p.err().code == errc::forbidden)
      return refuse(close_reason::forbidden, smsgw::txt_not_permitted, false);
    return refuse(close_reason::auth_failed, smsgw::txt_invalid_key, true, p.err().cause);
  }
  // The per-key slot first; admit() then takes the core's per-app/tenant slot and the sink.
  if (!cx_.sockets.acquire(p->app_id, cx_.cfg->max_connections_per_key))
    return close_with(close_reason::too_many, std::string(smsgw::txt_too_many_connections),
                      error_cause::connections);
  slot_key_ = p->app_id;
  // Failures are counted here, by the dialect's own block (§7), not the native limiter.
  if (!admit(std::move(p), admit_options{0, false})) return;
  open_session(no_recovery());
  subscription sub;
  sub.id = new_id("sub_");
  auto f = filter::compile(implicit_filter(), who_.tenant, filter_limits{});
  if (!f) return close_with(close_reason::protocol, f.err().message);  // cannot happen: fixed
  sub.filters.push_back(std::move(*f));
  // Subscribed first, then auth_ok (§2.1): every event published after the client read auth_ok
  // is matched by the installed filter.
  install_subscription(std::move(sub), false, [this](const session&) -> hub::task {
    return [this] {
      authed_ms_ = last_ping_ms_ = now();
      send_text("{\"type\":\"auth_ok\"}");
    };
  });
}

void smsgw_socket::on_closed(int close_code) {
  if (!slot_key_.empty()) cx_.sockets.release(std::exchange(slot_key_, {}));
  dialect_socket::on_closed(close_code);
}

bool smsgw_socket::take_message_token() {
  const std::int64_t t = now();
  const smsgw_limits& c = *cx_.cfg;  // a SIGHUP's rate applies from this frame
  const double rate = static_cast<double>(c.client_msg_rate);
  msg_tokens_ = std::min(static_cast<double>(c.client_msg_burst),
                         msg_tokens_ + rate * static_cast<double>(t - msg_tokens_at_) / 1000.0);
  msg_tokens_at_ = t;
  if (msg_tokens_ < 1.0) return false;
  msg_tokens_ -= 1.0;
  return true;
}

// ---- events

void smsgw_socket::write_delivery(const delivery_ref& d) {
  // Rendered once per event for every smsgw socket (the render slot), shared by reference.
  const std::string& body = d.ev->rendered(cx_.render_slot, smsgw::render_event);
  if (body.empty()) return;
  write_frame(out_frame{std::string(), std::shared_ptr<const std::string>(d.ev, &body), {}});
}

// ---- timers

std::int64_t smsgw_socket::on_tick(std::int64_t now) {
  if (closed()) return 0;
  deadlines d(now);
  const auto& c = *cx_.cfg;
  if (phase_ == phase::awaiting_auth || phase_ == phase::authenticating || authed_ms_ == 0) {
    // From the 101 (§2.1); an admitted socket waiting for its subscription is still "in auth".
    d.expire_at(opened_ms_ + c.auth_timeout_s * 1000, close_reason::auth_timeout);
    // Look again within a second: the first heartbeat counts from auth_ok, which may come
    // long before the auth deadline.
    d.wake_at(now + 1000);
    return finish_tick(d);
  }
  d.expire_at(opened_ms_ + c.absolute_timeout_s * 1000, close_reason::absolute);
  d.expire_at(last_in_ms_ + c.liveness_timeout_s * 1000, close_reason::heartbeat);
  if (d.expired()) return finish_tick(d);
  // Every ping_interval after auth_ok whatever the traffic (§2.4): a JSON ping and a control one.
  const std::int64_t interval = c.ping_interval_s * 1000;
  if (now >= last_ping_ms_ + interval) {
    last_ping_ms_ = now;
    send_now("{\"type\":\"ping\"}");
    conn_.ping();
  }
  d.wake_at(last_ping_ms_ + interval);
  return finish_tick(d);
}

}  // namespace herald
