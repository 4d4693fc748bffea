// Installs the RingCentral dialect: its REST companions on its own router and the socket
// `{prefix}/ws`; and answers HTTP requests addressed to it with RC-shaped refusals.
#include "dialect/ringcentral/ringcentral.h"

#include "dialect/ringcentral/rc_context.h"
#include "dialect/ringcentral/rc_socket.h"

namespace herald {

void install_ringcentral(dialect_install& d, const ringcentral_limits& cfg) {
  auto cx = std::make_shared<rc_context>(d.svc, d.routes, cfg, d.prefix);
  add_ringcentral_routes(cx);
  ws_mount m;
  m.path = d.prefix + "/ws";
  m.max_message_bytes = cfg.max_frame_bytes;
  m.compress = cfg.compress;
  m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
    return std::make_unique<rc_socket>(cx, conn, up);
  };
  d.mounts.push_back(std::move(m));
}

http_response ringcentral_http(const router& routes, const http_request& req) {
  if (!routes.has_path(req.path))
    return rc::api_error(404, "CMN-102", "Resource for parameter [path] is not found: " + req.path, "path");
  http_response res = routes.dispatch(req);
  if (res.status == 405)
    return rc::api_error(405, "CMN-102", "Method " + req.method + " is not allowed for " + req.path);
  return res;
}

}  // namespace herald
