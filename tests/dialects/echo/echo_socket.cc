#include "echo/echo_socket.h"

#include "api/authn.h"

namespace herald::echo {

void echo_socket::on_open() {
  const auto* h = upgrade_.header("authorization");
  const std::string cred = h != nullptr ? std::string(bearer_of(*h)) : std::string();
  if (cred.empty()) return close_with(close_reason::auth_failed, "credential required");
  if (!auth_allowed()) return close_with(close_reason::too_many, "too many failed authentications");
  if (!admit(authenticate_credential(svc_, cred, "native"), {0, true})) return;
  open_session(session_options{});
  send_text("welcome " + session_.id);
}

void echo_socket::on_frame(std::string_view text, bool binary) {
  if (binary) return;  // a text protocol: binary frames are not echoed
  if (text == "ping") {
    send_text("pong");
    return;
  }
  if (text.substr(0, 4) == "sub ") {
    const std::string topic(text.substr(4));
    auto f = filter::compile(filter_spec{topic, {}, {}, {}}, who_.tenant, filter_limits{});
    if (!f) {
      send_text("error " + f.err().message);
      return;
    }
    subscription sub;
    sub.id = new_id("sub_");
    sub.filters.push_back(std::move(*f));
    // The ack is sent from the home shard's continuation: before any event it matches.
    install_subscription(std::move(sub), false, [this, topic](const session&) {
      return [this, topic] { send_text("ack " + topic); };
    });
    return;
  }
  send_text(std::string(text));
}

void echo_socket::write_delivery(const delivery_ref& d) {
  write_frame(out_frame{"event " + std::to_string(d.seq) + " " + d.ev->topic, nullptr, {}});
}

wire_close echo_socket::close_table(close_reason why, const std::string& detail) const {
  switch (why) {
    case close_reason::replaced:
    case close_reason::admin:
      return {1000, detail, {}};
    case close_reason::drain:
      return {1012, "draining", {}};
    case close_reason::revoked:
    case close_reason::auth_failed:
      return {4001, detail, "error " + detail};
    case close_reason::forbidden:
      return {4003, detail, {}};
    case close_reason::too_many:
      return {4029, detail, {}};
    case close_reason::slow_consumer:
      return {4010, "slow consumer", {}};
    case close_reason::heartbeat:
    case close_reason::idle:
      return {4008, close_reason_name(why), {}};
    case close_reason::absolute:
    case close_reason::seq_exhausted:
      return {4009, close_reason_name(why), {}};
    case close_reason::auth_timeout:
      return {4002, "auth timeout", {}};
    case close_reason::protocol:
      return {1008, detail, {}};
  }
  return {1011, "internal error", {}};
}

std::int64_t echo_socket::on_tick(std::int64_t now) {
  if (closed()) return 0;
  deadlines d(now);
  d.expire_at(last_in_ms_ + 2 * heartbeat_ms_, close_reason::heartbeat);
  if (!d.expired() && now - last_out_ms_ >= heartbeat_ms_) {
    conn_.ping();
    last_out_ms_ = now;
  }
  d.wake_at(last_out_ms_ + heartbeat_ms_);
  return finish_tick(d);
}

}  // namespace herald::echo
