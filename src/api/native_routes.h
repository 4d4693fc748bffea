// The native REST API (native.md §2) and the admin API (design.md §4) on one router.
// Handlers run on the blocking pool. Thread-safe.
#pragma once

#include "api/router.h"
#include "api/services.h"

namespace herald {

void add_native_routes(router& r, services& s);
void add_admin_routes(router& r, services& s);

// Publishes a body of POST /v1/events as `who` (used by REST and request-over-socket).
http_response publish_events(services& s, const principal& who, const http_request& req);
// GET /v1/events for `who`.
http_response read_history(services& s, const principal& who, const http_request& req);

}  // namespace herald
