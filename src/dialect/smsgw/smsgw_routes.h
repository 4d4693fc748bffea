// The smsgw REST side's entry points (smsgw.md §5), called by the dialect's serve() and
// render_error(). Thread-safe: serve_rest runs on the blocking pool (it reads the store);
// with_request_id is pure and may run on a shard.
#pragma once

#include "api/router.h"
#include "dialect/smsgw/smsgw_context.h"
#include "transport/http_types.h"

namespace herald::smsgw {

// Answers a request under the prefix (path relative to it): every route, 404 `Not found`, 405
// `Method not allowed` with Allow, 413, the auth and rate refusals, each with X-Request-Id.
http_response serve_rest(smsgw_context& cx, const http_request& req);

// Registers the same routes in `r` (each answering through serve_rest), so that the router
// lists what this dialect serves (`herald routes`, the OpenAPI test).
void add_smsgw_routes(router& r, smsgw_context& cx);

// `res` with the X-Request-Id header of `req` (its own when well-formed, else a new UUID v4).
http_response with_request_id(const http_request& req, http_response res);

}  // namespace herald::smsgw
