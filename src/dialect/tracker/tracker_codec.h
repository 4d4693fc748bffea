// The tracker wire (tracker.md §3, §4, §8): pure functions from client frames to checked
// requests and from replies, events and errors to frames, plus the Atmosphere framing (the
// handshake, `X` heartbeats, the TrackMessageSize length prefix in UTF-16 code units). No
// sockets, no directory: the socket and the routes apply the checks that need state (a live
// hash, the socket's user) in the spec's order between decode() and the late checks it returns.
// Thread-safe: pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::tracker {

// The error codes of §8.
enum code : int {
  wrong_hash = 3,
  session_ended = 4,
  wrong_format = 5,
  unexpected = 6,
  invalid_params = 7,
  too_large = 9,
  access_denied = 11,
  not_permitted = 13,
  rate_limited = 15,
  wrong_login = 102,
  logins_limit = 104,
  login_attempts = 105,
  not_found = 201,
  device_blocked = 208,
};
// The exact description of a code, and the HTTP status a REST reply carries it with.
std::string_view description(int code);
int http_status(int code);

constexpr std::int64_t max_tracker_id = 2147483647;

enum class action { none, subscribe, unsubscribe };
std::string_view action_name(action a);  // "subscription/subscribe", or "" for none

// One client frame, decoded as far as it goes. `error` (5 or 3) is the first failure of the
// checks that precede the live-hash check; `late_error` (7 or 9) the first of those that follow
// it (the caller checks hash liveness and the socket's user in between, §8).
struct request {
  action act = action::none;
  std::string hash;
  std::vector<std::int64_t> trackers;  // distinct, in request order
  int error = 0, late_error = 0;
  std::string detail;  // what a 5 names
  std::string echo;    // data of a 3/4/7/9/13 error: {"events":…,"trackers":…} as sent
};
request decode(std::string_view text, std::size_t max_trackers);

// A client frame that only proves life: `X`, whitespace around allowed.
bool is_heartbeat(std::string_view text);
// 32 characters [0-9a-f].
bool valid_hash(std::string_view hash);
// A tracker id as text: decimal 1…2147483647, no sign, no leading zero.
std::optional<std::int64_t> parse_tracker_id(std::string_view text);

// ---- server frames (payloads; frame() adds the length prefix when asked)
std::string frame(std::string_view payload, bool track_size);
// Payload length in UTF-16 code units (what atmosphere.js counts); invalid UTF-8 bytes count one.
std::size_t utf16_units(std::string_view utf8);
std::string handshake(std::string_view uuid, std::int64_t heartbeat_ms);
inline constexpr std::string_view heartbeat = "X";

enum class tstatus { normal, blocked, unknown, disallowed };
std::string_view status_name(tstatus s);
std::string subscribe_reply(const std::vector<std::pair<std::int64_t, tstatus>>& statuses);
std::string unsubscribe_reply(const std::vector<std::int64_t>& ids);
// An error frame. `data_json` is raw JSON (the request's echo, or a quoted string); empty: null.
std::string error_frame(action a, int code, std::string_view data_json);
// The parts around a state's `data` (byte-exact, in between): head holds user_time.
std::string state_head(std::string_view user_time);
inline constexpr std::string_view event_tail = "}";
inline constexpr std::string_view lifecycle_head = R"({"type":"event","event":"lifecycle","data":)";
inline constexpr std::string_view logout_frame =
    R"({"type":"event","event":"logout","data":"session closed"})";
// The stored data of a lifecycle event (§5.4).
std::string lifecycle_data(std::int64_t source_id, std::string_view what);

// A RFC 4122 version-4 UUID, lowercase, from the CSPRNG; and the check of one.
std::string new_uuid();
bool valid_uuid(std::string_view s);

}  // namespace herald::tracker
