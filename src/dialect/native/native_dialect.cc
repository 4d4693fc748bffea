// Installs the native dialect: its REST routes on its router and the /v1/ws socket.
#include "dialect/dialect.h"
#include "api/native_routes.h"
#include "dialect/native/native_socket.h"

namespace herald {

void install_native(dialect_install& d) {
  add_native_routes(d.routes, d.svc);
  services* svc = &d.svc;
  const router* routes = &d.routes;
  ws_mount m;
  m.path = d.prefix + "/v1/ws";
  m.max_message_bytes = d.svc.native.max_message_bytes;
  m.factory = [svc, routes](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
    return std::make_unique<native_socket>(*svc, *routes, conn, up);
  };
  d.mounts.push_back(std::move(m));
}

}  // namespace herald
