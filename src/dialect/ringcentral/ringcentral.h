// The RingCentral dialect's entry points: its factory, registered by one line in app/dialects.cc
// (start-up only), and its HTTP answer, which its socket's ClientRequests use too (thread-safe:
// only reads the router).
#pragma once

#include <memory>

#include "dialect/dialect.h"

namespace herald {

// The dialect with its defaults: `[ringcentral]` table, served under "/ringcentral".
std::unique_ptr<dialect> make_ringcentral_dialect();

// Dispatches `req` (path relative to the prefix) to the dialect's router: unknown paths answer
// 404 CMN-102, known paths with another method 405, in RingCentral's error body.
http_response ringcentral_http(const router& routes, const http_request& req);

}  // namespace herald
