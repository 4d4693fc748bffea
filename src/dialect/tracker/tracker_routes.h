// The tracker dialect's REST companions (tracker.md §2, §3): login, logout, the tracker list and
// state, the Atmosphere close request, CORS preflight, and every refusal under its prefix in its
// `{"success":false,"status":{…}}` body. Runs on the blocking pool.
#pragma once

#include <string>

#include "dialect/tracker/tracker_context.h"
#include "transport/http_types.h"

namespace herald::tracker {

// Answers `req` (path relative to the prefix, with or without `/v2`).
http_response serve_rest(tracker_context& cx, const http_request& req);

// The dialect's error reply: HTTP status per §8, JSON body, CORS header.
http_response error_reply(int code, std::string_view detail = {});

}  // namespace herald::tracker
