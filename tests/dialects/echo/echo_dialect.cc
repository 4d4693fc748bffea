#include "echo/echo_dialect.h"

#include "api/json_util.h"
#include "echo/echo_socket.h"

namespace herald {
namespace {

struct echo_limits {
  std::size_t max_frame_bytes = 4096;  // inbound frame: 1009
  std::string ping_reply = "pong";     // what GET /ping answers
  std::int64_t heartbeat_s = 30;       // ping after this much outbound quiet; 2x silence: 4008
};

class echo_dialect final : public dialect {
 public:
  echo_dialect() : dialect("echo", "/echo") {
    config_
        .integer("max_frame_bytes", "bytes", "largest client frame (1009)", limits_.max_frame_bytes)
        .string("ping_reply", "what GET {prefix}/ping answers", limits_.ping_reply)
        .integer("heartbeat", "s", "outbound quiet before a ping; 2x without inbound: 4008",
                 limits_.heartbeat_s)
        .at_least("heartbeat", limits_.heartbeat_s, std::int64_t{1})
        .at_least("max_frame_bytes", limits_.max_frame_bytes, std::size_t{16});
  }

  void install_admin(dialect_admin& a) override {
    // Answers whether or not the dialect is served (the dialect outlives the server).
    a.routes.add("GET", "/v1/admin/echo", [this](route_match&) {
      return json_response(200, std::string("{\"dialect\":\"echo\",\"enabled\":") +
                                    (enabled() ? "true" : "false") + "}");
    });
  }

  void install(dialect_install& d) override {
    const std::string reply = limits_.ping_reply;
    d.routes.add("GET", "/ping", [reply](route_match&) {
      return json_response(200, "{\"reply\":" + json_quote(reply) + "}");
    });
    ws_mount m;
    m.path = d.prefix + "/ws";
    m.max_message_bytes = limits_.max_frame_bytes;
    services* svc = &d.svc;
    const std::int64_t hb = limits_.heartbeat_s;
    m.factory = [svc, hb](ws_connection& conn,
                          const http_request& up) -> std::unique_ptr<ws_handler> {
      return std::make_unique<echo::echo_socket>(*svc, conn, up, hb);
    };
    d.mounts.push_back(std::move(m));
  }

  http_response serve(const router& routes, const http_request& req) const override {
    if (!routes.has_path(req.path))
      return json_response(
          404, "{\"echo_error\":\"no such path\",\"path\":" + json_quote(req.path) + "}");
    return routes.dispatch(req);
  }

  http_response render_error(const http_request&, int status, std::string message) const override {
    return json_response(status, "{\"echo_error\":" + json_quote(message) + "}");
  }

 private:
  echo_limits limits_;
};

}  // namespace

std::unique_ptr<dialect> make_echo_dialect() { return std::make_unique<echo_dialect>(); }

}  // namespace herald
