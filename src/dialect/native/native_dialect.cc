// The native dialect (native.md): its `[native]` table, bound to the limits the native REST
// routes in api/ also read (services::native), its REST routes and the `{prefix}/v1/ws` socket.
// Registered in app/dialects.cc; served at the root by default.
#include "api/native_routes.h"
#include "dialect/dialect.h"
#include "dialect/native/native_socket.h"

namespace herald {
namespace {

class native_dialect final : public dialect {
 public:
  native_dialect() : dialect("native", "") {
    auto& t = config_;
    native_limits& l = limits_;
    t.integer("heartbeat_interval", "s", "quiet before a ping; 2x without traffic: 4008",
              l.heartbeat_interval_s)
        .integer("idle_timeout", "s", "without request or event: 4008", l.idle_timeout_s)
        .integer("absolute_timeout", "s", "a socket may live: 4009", l.absolute_timeout_s)
        .integer("recovery_window", "s", "a session outlives its socket", l.recovery_window_s)
        .integer("recovery_buffer", "", "deliveries kept per session for resume", l.recovery_buffer)
        .integer("max_log_replay", "", "missed events a resume may page from the log past the ring",
                 l.max_log_replay)
        .integer("max_inflight", "", "unanswered requests per socket", l.max_inflight)
        .integer("max_message_bytes", "bytes", "largest client frame (1009)", l.max_message_bytes)
        .integer("max_connections_per_session", "", "sockets per login session (4029)",
                 l.max_connections_per_session)
        .integer("auth_timeout", "s", "to authenticate in-band (4002)", l.auth_timeout_s)
        .integer("close_timeout", "s", "for the closing handshake", l.close_timeout_s)
        .integer("access_token_ttl", "s", "an access token lives", l.access_token_ttl_s)
        .integer("ws_token_ttl", "s", "a ws token lives", l.ws_token_ttl_s)
        .integer("max_publish_bytes", "bytes", "largest POST /v1/events body (413)",
                 l.max_publish_bytes)
        .integer("max_batch", "", "events per publish (413)", l.max_batch)
        .integer("max_filters", "", "filters per subscribe", l.filters.max_filters)
        .integer("max_subjects_per_filter", "", "subjects per filter",
                 l.filters.max_subjects_per_filter)
        .integer("max_where_keys", "", "where keys per filter", l.filters.max_where_keys)
        .integer("max_types_per_filter", "", "types per filter", l.filters.max_types_per_filter)
        .integer("max_path_bytes", "bytes", "request path and query (414)", l.max_path_bytes)
        .integer("max_history_bytes", "bytes",
                 "a history reply stops before passing this; next_cursor continues",
                 l.max_history_bytes)
        .integer("publish_rate", "/s", "events one app may publish per second (429)",
                 l.publish_rate)
        .integer("publish_burst", "", "events one app may publish in a burst", l.publish_burst)
        .integer("auth_fail_rate", "/s",
                 "failed authentications per second per address (then 429/4029)", l.auth_fail_rate)
        .integer("auth_fail_burst", "", "failed authentications in a burst per address",
                 l.auth_fail_burst)
        .sighup({"heartbeat_interval",
                 "idle_timeout",
                 "absolute_timeout",
                 "max_inflight",
                 "max_message_bytes",
                 "max_connections_per_session",
                 "auth_timeout",
                 "access_token_ttl",
                 "ws_token_ttl",
                 "max_publish_bytes",
                 "max_batch",
                 "max_filters",
                 "max_subjects_per_filter",
                 "max_where_keys",
                 "max_types_per_filter",
                 "max_path_bytes",
                 "max_history_bytes",
                 "publish_rate",
                 "publish_burst",
                 "auth_fail_rate",
                 "auth_fail_burst"})
        .at_least("heartbeat_interval", l.heartbeat_interval_s, std::int64_t{1})
        .at_least("recovery_buffer", l.recovery_buffer, std::size_t{1})
        .at_least("max_history_bytes", l.max_history_bytes, std::size_t{1024});
  }

  // The native REST routes in api/ read these too: they become services::native.
  void setup(services_setup& s) const override { s.native = limits_; }

  void install(dialect_install& d) override {
    add_native_routes(d.routes, d.svc);
    // Lives as long as the server (the dialect object does): every socket refers to it.
    cx_ = std::make_unique<native_context>(native_context{d.svc, d.routes, d.render_slot});
    const native_context* cx = cx_.get();
    ws_mount m;
    m.path = d.prefix + "/v1/ws";
    const services* s = &d.svc;
    m.current_max_message_bytes = [s] { return s->native->max_message_bytes; };
    m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
      return std::make_unique<native_socket>(*cx, conn, up);
    };
    d.mounts.push_back(std::move(m));
  }

 private:
  native_limits limits_;
  std::unique_ptr<native_context> cx_;
};

}  // namespace

std::unique_ptr<dialect> make_native_dialect() { return std::make_unique<native_dialect>(); }

}  // namespace herald
