// The RingCentral dialect (ringcentral.md): its `[ringcentral]` table, its REST companions on its
// own router and the socket `{prefix}/ws`, and RC-shaped answers for everything refused under its
// prefix (unknown paths, wrong methods, transport refusals).
#include "dialect/ringcentral/rc_context.h"
#include "dialect/ringcentral/rc_socket.h"
#include "dialect/ringcentral/ringcentral.h"

namespace herald {
namespace {

class ringcentral_dialect final : public dialect {
 public:
  ringcentral_dialect() : dialect("ringcentral", "/ringcentral") {
    ringcentral_limits& l = limits_;
    config_
        .integer("max_connections_per_session", "", "open sockets per login (4029)",
                 l.max_connections_per_session)
        .integer("recovery_buffer_size", "", "events a WSG session keeps for recovery",
                 l.recovery_buffer_size)
        .integer("recovery_timeout", "s", "a WSG session outlives its socket", l.recovery_timeout_s)
        .integer("idle_timeout", "s", "without inbound text or notification (WSG-902, 4008)",
                 l.idle_timeout_s)
        .integer("absolute_timeout", "s", "a socket may live (WSG-903, 4009)", l.absolute_timeout_s)
        .integer("max_active_requests", "", "unanswered ClientRequests per socket (429 CMN-301)",
                 l.max_active_requests)
        .integer("ping_interval", "s", "outbound quiet before a ping; 2x without inbound: 4008",
                 l.ping_interval_s)
        .integer("notify_pause_ms", "ms",
                 "pause after ConnectionDetails and subscription replies (min 20)",
                 l.notify_pause_ms)
        .integer("ws_token_ttl", "s", "a ws token lives (reusable until then)", l.ws_token_ttl_s)
        .integer("access_token_ttl", "s",
                 "default access token lifetime (a grant may ask 600..86400)", l.access_token_ttl_s)
        .integer("refresh_token_ttl", "s", "default and longest refresh token lifetime",
                 l.refresh_token_ttl_s)
        .integer("max_filters", "", "eventFilters per subscription", l.max_filters)
        .integer("max_frame_bytes", "bytes", "largest client frame (1009)", l.max_frame_bytes)
        .boolean("compress", "accept permessage-deflate (then every message is compressed)",
                 l.compress)
        .sighup({"max_connections_per_session", "recovery_buffer_size", "recovery_timeout",
                 "idle_timeout", "absolute_timeout", "max_active_requests", "ping_interval",
                 "notify_pause_ms", "ws_token_ttl", "access_token_ttl", "refresh_token_ttl",
                 "max_filters", "max_frame_bytes"})
        .rule("prefix", "'/name' required (no trailing '/')", [this] { return !prefix().empty(); })
        .at_least("notify_pause_ms", l.notify_pause_ms, ringcentral_limits::min_notify_pause_ms)
        .at_least("ping_interval", l.ping_interval_s, std::int64_t{1})
        .at_least("recovery_buffer_size", l.recovery_buffer_size, std::size_t{1})
        .at_least("max_active_requests", l.max_active_requests, std::size_t{1})
        .at_least("ws_token_ttl", l.ws_token_ttl_s, std::int64_t{1});
  }

  void install(dialect_install& d) override {
    auto cx = std::make_shared<rc_context>(d.svc, d.routes, limits_, d.prefix, d.render_slot);
    add_ringcentral_routes(cx);
    ws_mount m;
    m.path = d.prefix + "/ws";
    m.current_max_message_bytes = [cx] { return cx->cfg->max_frame_bytes; };
    m.compress = limits_.compress;
    m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
      return std::make_unique<rc_socket>(cx, conn, up);
    };
    d.mounts.push_back(std::move(m));
    cx_ = cx;
  }

  void reload() override {
    if (cx_) cx_->cfg.set(limits_);
  }

  // Unknown paths answer 404 CMN-102, wrong methods 405 (§2: "Anything else: 404 CMN-102").
  http_response serve(const router& routes, const http_request& req) const override {
    return ringcentral_http(routes, req);
  }

  // The spec names no code for requests refused before routing; CMN-101 ("invalid parameter")
  // keeps them in the body RC clients parse, with the status saying which refusal it was.
  http_response render_error(const http_request&, int status, std::string message) const override {
    return rc::api_error(status, "CMN-101", message);
  }

  // Its clients treat any status but 200/401/403 from /restapi/oauth/wstoken as fatal
  // (ringcentral.md §2.2, §8.2): a 429 from the per-address limiter would end them.
  bool counts_auth_failures() const override { return false; }

 private:
  ringcentral_limits limits_;
  std::shared_ptr<rc_context> cx_;  // set at install
};

}  // namespace

http_response ringcentral_http(const router& routes, const http_request& req) {
  if (!routes.has_path(req.path))
    return rc::api_error(404, "CMN-102", "Resource for parameter [path] is not found: " + req.path,
                         "path");
  http_response res = routes.dispatch(req);
  if (res.status == 405)
    return rc::api_error(405, "CMN-102",
                         "Method " + req.method + " is not allowed for " + req.path);
  return res;
}

std::unique_ptr<dialect> make_ringcentral_dialect() {
  return std::make_unique<ringcentral_dialect>();
}

}  // namespace herald
