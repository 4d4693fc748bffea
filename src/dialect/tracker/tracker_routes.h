// The tracker dialect's REST companions (tracker.md §2, §3): login, logout, the tracker list and
// state, the Atmosphere close request, CORS preflight, and every refusal under its prefix in its
// `{"success":false,"status":{…}}` body. Runs on the blocking pool.
#pragma once

#include <string>

#include "api/router.h"
#include "dialect/tracker/tracker_context.h"
#include "transport/http_types.h"

namespace herald::tracker {

// Answers `req` (path relative to the prefix, with or without `/v2`).
http_response serve_rest(tracker_context& cx, const http_request& req);

// Registers the routes serve_rest answers in `r`, each with and without `/v2` (answering through
// serve_rest), so that the router lists what this dialect serves (`herald routes`, the OpenAPI
// check in tests/ops): the calls by GET, POST and OPTIONS, the close request by GET and OPTIONS.
void add_tracker_routes(router& r, tracker_context& cx);

// The dialect's error reply: HTTP status per §8, JSON body, CORS header.
http_response error_reply(int code, std::string_view detail = {});

}  // namespace herald::tracker
