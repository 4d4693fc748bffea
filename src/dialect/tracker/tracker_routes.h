// The tracker dialect's REST companions (tracker.md §2, §3): login, logout, the tracker list and
// state, the Atmosphere close request, CORS preflight, and every refusal under its prefix in its
// `{"success":false,"status":{…}}` body. Runs on the blocking pool.
#pragma once

#include <string>
#include <string_view>

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

// Cluster mode: a close request (§3) for a tracking id no socket of this node holds goes to the
// other nodes as a message of this kind (api/cluster_link.h), the id its argument.
inline constexpr std::string_view close_broadcast_kind = "tracker.close";
// Closes this node's socket holding tracking id `uuid` as a close request does (1000): false
// when none does. Any thread.
bool close_uuid(tracker_context& cx, const std::string& uuid);

// Cluster mode: a hash logged out on one node ends on the others as a message of this kind,
// "<user id> <login session id>".
inline constexpr std::string_view logout_broadcast_kind = "tracker.logout";
// One logout frame to each of this node's sockets holding subscriptions under the login
// session (§5.5), which they drop. Any thread.
void logout_sockets(tracker_context& cx, const std::string& user_id, const std::string& login_id);

// The dialect's error reply: HTTP status per §8, JSON body, CORS header.
http_response error_reply(int code, std::string_view detail = {});

}  // namespace herald::tracker
