// The RingCentral dialect's entry points for app/: install its routes and socket, and answer an
// HTTP request addressed to it (prefix already stripped) with RC-shaped refusals for unknown
// paths. Thread-safe after install (ringcentral_http only reads the router).
#pragma once

#include "dialect/dialect.h"
#include "dialect/ringcentral/rc_limits.h"

namespace herald {

// Registers the REST companions on d.routes and the socket `{d.prefix}/ws` in d.mounts.
void install_ringcentral(dialect_install& d, const ringcentral_limits& cfg);

// Dispatches `req` (path relative to the prefix) to the dialect's router: unknown paths answer
// 404 CMN-102, known paths with another method 405, in RingCentral's error body.
http_response ringcentral_http(const router& routes, const http_request& req);

}  // namespace herald
