// The smsgw dialect (smsgw.md): its `[smsgw]` table, the publish validator of the types it
// reserves (installed whether or not it is served), the socket `{prefix}/ws` and its REST read
// side with the `{"error":"…"}` body for everything refused under its prefix.
// Registered in app/dialects.cc; served under "/smsgw" by default.
#include <algorithm>

#include "api/json_util.h"
#include "dialect/dialect.h"
#include "dialect/smsgw/smsgw_codec.h"
#include "dialect/smsgw/smsgw_routes.h"
#include "dialect/smsgw/smsgw_socket.h"

namespace herald {
namespace {

// §4.1: the draft's own shape, then what needs the directory and the store (the app belongs to
// the event's tenant; a message's type and app are fixed by its first event). Runs on the
// blocking pool before store.append, for native publishes and the send intake alike.
status validate_sms_draft(services& s, const event_draft& d) {
  if (d.type != smsgw::type_status && d.type != smsgw::type_inbound) return {};
  if (status st = smsgw::check_draft(d); !st) return st;
  if (!d.app.empty()) {
    auto a = s.dir.app(d.app);
    if (!a || a->tenant != d.tenant)
      return {errc::bad_message, "app: '" + d.app + "' is not an app of tenant '" + d.tenant + "'"};
  }
  // sms.* events are always retained, so the retained state is the message's first event's type
  // and app (both fixed). A concurrent first publish of the same id is not serialized here.
  auto prev = s.st.state(d.tenant, d.subject);
  if (!prev) return prev.err();
  if (*prev && ((**prev)->type != d.type || (**prev)->app != d.app))
    return {errc::conflict, "messageId already in use"};
  return {};
}

class smsgw_dialect final : public dialect {
 public:
  smsgw_dialect() : dialect("smsgw", "/smsgw") {
    smsgw_limits& l = limits_;
    config_
        .integer("auth_timeout", "s", "for the first (auth) frame: auth_error + 1008",
                 l.auth_timeout_s)
        .integer("close_grace", "s", "for the client's close reply", l.close_grace_s)
        .integer("ping_interval", "s", "between heartbeats after auth_ok", l.ping_interval_s)
        .integer("liveness_timeout", "s", "without inbound traffic: 4008", l.liveness_timeout_s)
        .integer("absolute_timeout", "s", "a socket may live: 4009", l.absolute_timeout_s)
        .integer("max_auth_frame_bytes", "bytes", "largest auth frame (1009)",
                 l.max_auth_frame_bytes)
        .integer("max_frame_bytes", "bytes", "largest later client frame (1009)", l.max_frame_bytes)
        .integer("max_body_bytes", "bytes", "largest REST body (413)", l.max_body_bytes)
        .integer("client_msg_rate", "/s", "client frames per second after auth (1008)",
                 l.client_msg_rate)
        .integer("client_msg_burst", "", "client frames in a burst", l.client_msg_burst)
        .integer("max_connections_per_key", "", "open sockets per API key",
                 l.max_connections_per_key)
        .integer("ws_token_ttl", "s", "a wst_ token lives (single use)", l.ws_token_ttl_s)
        .integer("rate_limit_app", "", "REST requests per app key per window (429)",
                 l.rate_limit_app)
        .integer("rate_limit_admin", "", "REST requests per admin key per window (429)",
                 l.rate_limit_admin)
        .integer("rate_limit_window", "s", "the sliding window of the REST rate limits",
                 l.rate_limit_window_s)
        .integer("auth_fail_limit", "", "failed auths per address in auth_fail_window: blocked",
                 l.auth_fail_limit)
        .integer("auth_fail_window", "s", "the window auth_fail_limit counts in",
                 l.auth_fail_window_s)
        .integer("auth_fail_block", "s", "how long a blocked address is refused (429)",
                 l.auth_fail_block_s)
        .boolean("send_enabled", "accept POST /v1/sms/send (else 501)", l.send_enabled)
        .sighup({"auth_timeout", "ping_interval", "liveness_timeout", "absolute_timeout",
                 "max_auth_frame_bytes", "max_frame_bytes", "max_body_bytes", "client_msg_rate",
                 "client_msg_burst", "max_connections_per_key", "ws_token_ttl", "rate_limit_app",
                 "rate_limit_admin", "send_enabled"})
        .rule("prefix", "'/name' required (no trailing '/')", [this] { return !prefix().empty(); })
        .at_least("ping_interval", l.ping_interval_s, std::int64_t{1})
        .at_least("liveness_timeout", l.liveness_timeout_s, std::int64_t{1})
        .at_least("auth_timeout", l.auth_timeout_s, std::int64_t{1})
        .at_least("auth_fail_limit", l.auth_fail_limit, std::size_t{1})
        .at_least("rate_limit_window", l.rate_limit_window_s, std::int64_t{1})
        .at_least("rate_limit_app", l.rate_limit_app, std::size_t{1})
        .at_least("rate_limit_admin", l.rate_limit_admin, std::size_t{1})
        .at_least("ws_token_ttl", l.ws_token_ttl_s, std::int64_t{1})
        .at_least("max_auth_frame_bytes", l.max_auth_frame_bytes, std::size_t{16})
        .at_least("max_frame_bytes", l.max_frame_bytes, std::size_t{16});
  }

  // Kept when disabled (design.md §3): nobody may publish a malformed sms.* event.
  void install_admin(dialect_admin& a) override {
    services* s = &a.svc;
    a.svc.validators.push_back([s](const event_draft& d) { return validate_sms_draft(*s, d); });
  }

  void install(dialect_install& d) override {
    // Lives as long as the server (the dialect object does): every socket and route uses it.
    cx_ = std::make_unique<smsgw_context>(d.svc, limits_, d.render_slot);
    smsgw_context* cx = cx_.get();
    ws_mount m;
    m.path = d.prefix + "/ws";
    // The transport's bound is the larger one; the auth frame's smaller one is the socket's.
    m.current_max_message_bytes = [cx] {
      const smsgw_limits& l = *cx->cfg;
      return std::max(l.max_frame_bytes, l.max_auth_frame_bytes);
    };
    m.close_timeout_ms = cx->cfg->close_grace_s * 1000;  // restart-only: read at mount
    m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
      return std::make_unique<smsgw_socket>(*cx, conn, up);
    };
    d.mounts.push_back(std::move(m));
    smsgw::add_smsgw_routes(d.routes, *cx);
  }

  http_response serve(const router&, const http_request& req) const override {
    return smsgw::serve_rest(*cx_, req);
  }

  // Transport refusals under the prefix, in this dialect's body (§5: 413 `Payload too large`).
  http_response render_error(const http_request& req, int status,
                             std::string message) const override {
    std::string text = status == 413 ? "Payload too large" : std::move(message);
    return smsgw::with_request_id(req, smsgw::error_reply(status, text));
  }

  // Its own failed-auth block (§7: 10 per 300 s, then 900 s) counts; not the native limiter.
  bool counts_auth_failures() const override { return false; }

  void reload() override {
    if (cx_) cx_->cfg.set(limits_);
  }

 private:
  smsgw_limits limits_;
  std::unique_ptr<smsgw_context> cx_;
};

}  // namespace

std::unique_ptr<dialect> make_smsgw_dialect() { return std::make_unique<smsgw_dialect>(); }

}  // namespace herald
