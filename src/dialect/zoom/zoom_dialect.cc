// The zoom dialect (zoom.md): its `[zoom]` table, the OAuth token endpoint and the socket
// `{prefix}/ws`, Zoom-shaped answers under its prefix, and the admin calls for stored
// subscriptions (kept when the dialect is disabled, design.md §4). Registered in
// app/dialects.cc; served under "/zoom" by default.
#include "api/cluster_link.h"
#include "dialect/dialect.h"
#include "dialect/zoom/zoom_context.h"
#include "dialect/zoom/zoom_socket.h"

namespace herald {
namespace {

class zoom_dialect final : public dialect {
 public:
  zoom_dialect() : dialect("zoom", "/zoom"), cx_(std::make_shared<zoom_context>()) {
    zoom_limits& l = limits_;
    config_.integer("token_ttl", "s", "token lifetime (expires_in)", l.token_ttl_s)
        .integer("heartbeat_interval", "s", "expected client heartbeat interval (docs, metrics)",
                 l.heartbeat_interval_s)
        .integer("idle_timeout", "s", "no client frame: 4008", l.idle_timeout_s)
        .integer("close_grace", "s", "after the close frame, then the TCP drop", l.close_grace_s)
        .integer("validate_timeout", "s", "upgrade to build_connection (then 1013)",
                 l.validate_timeout_s)
        .integer("max_client_frame_bytes", "bytes", "largest client frame (1009)",
                 l.max_client_frame_bytes)
        .integer("client_frames_per_second", "/s", "client frames, averaged over 10 s (1008)",
                 l.client_frames_per_second)
        .boolean("single_connection", "a newer socket of a subscription replaces the older",
                 l.single_connection)
        .boolean("close_on_token_expiry", "close 4001 'token expired' at the token's expiry",
                 l.close_on_token_expiry)
        .integer("token_failures_per_minute", "", "failed token requests per address (then 429)",
                 l.token_failures_per_minute)
        .sighup({"token_ttl", "heartbeat_interval", "idle_timeout", "validate_timeout",
                 "max_client_frame_bytes", "client_frames_per_second", "single_connection",
                 "close_on_token_expiry", "token_failures_per_minute"})
        .rule("prefix", "'/name' required (no trailing '/')", [this] { return !prefix().empty(); })
        .at_least("token_ttl", l.token_ttl_s, std::int64_t{1})
        .at_least("idle_timeout", l.idle_timeout_s, std::int64_t{1})
        .at_least("validate_timeout", l.validate_timeout_s, std::int64_t{1})
        .at_least("client_frames_per_second", l.client_frames_per_second, std::int64_t{1})
        .at_least("token_failures_per_minute", l.token_failures_per_minute, std::int64_t{1})
        .at_least("max_client_frame_bytes", l.max_client_frame_bytes, std::size_t{64});
  }

  // Stored subscriptions are managed whether or not the socket is served (design.md §4).
  void install_admin(dialect_admin& a) override {
    fill(a.svc);
    add_zoom_admin_routes(a.routes, cx_);
  }

  void install(dialect_install& d) override {
    fill(d.svc);
    cx_->prefix = d.prefix;
    cx_->render_slot = d.render_slot;
    add_zoom_routes(d.routes, cx_);
    ws_mount m;
    m.path = d.prefix + "/ws";
    std::shared_ptr<zoom_context> cx = cx_;
    m.current_max_message_bytes = [cx] { return cx->cfg->max_client_frame_bytes; };
    m.close_timeout_ms = cx->cfg->close_grace_s * 1000;  // restart-only: read at mount
    m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
      return std::make_unique<zoom_socket>(cx, conn, up);
    };
    d.mounts.push_back(std::move(m));
  }

  http_response serve(const router& routes, const http_request& req) const override {
    return zoom_http(routes, req);
  }

  // Refused before routing (malformed, too large): still the Zoom error body.
  http_response render_error(const http_request&, int status, std::string message) const override {
    return zoom_error(status, "invalid_request", message);
  }

  // The token endpoint keeps its own per-address count (token_failures_per_minute, §6).
  bool counts_auth_failures() const override { return false; }

  void reload() override {
    if (!cx_->token_failures) return;  // never installed
    cx_->cfg.set(limits_);
    const double per_minute = static_cast<double>(limits_.token_failures_per_minute);
    cx_->token_failures->set_rates(per_minute / 60.0, per_minute);
  }

 private:
  // Both installs see the same services; the table is final by then.
  void fill(services& svc) {
    cx_->svc = &svc;
    // Cluster mode: what other nodes' zoom messages mean here (zoom_context.h).
    if (svc.cluster != nullptr)
      svc.cluster->on_broadcast(
          std::string(zoom_broadcast_kind),
          [cx = cx_](const std::string& arg) { zoom_on_broadcast(*cx, arg); });
    cx_->cfg.set(limits_);
    if (cx_->prefix.empty()) cx_->prefix = prefix();
    if (!cx_->token_failures) {
      const double per_minute = static_cast<double>(limits_.token_failures_per_minute);
      cx_->token_failures = std::make_unique<rate_limiter>(per_minute / 60.0, per_minute);
    }
  }

  zoom_limits limits_;
  std::shared_ptr<zoom_context> cx_;
};

}  // namespace

std::unique_ptr<dialect> make_zoom_dialect() { return std::make_unique<zoom_dialect>(); }

}  // namespace herald
