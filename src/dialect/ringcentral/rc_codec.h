// The RingCentral wire format (ringcentral.md §2-§4) as pure functions: RC-shaped error bodies,
// client frame parsing, server frame rendering (ConnectionDetails, ClientRequest replies,
// ServerNotification split into a per-event shared part and per-session head/tail, Heartbeat,
// Error), eventFilter normalization onto native topics, subscription paths and records, and the
// wsc token codec. No sockets, no hub: unit-tested on its own. Thread-safe: pure functions;
// wsc_codec is immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/crypto.h"
#include "core/errc.h"
#include "core/event.h"
#include "core/principal.h"
#include "transport/http_types.h"

namespace herald::rc {

// ---- errors (§2)
// {"errorCode":C,"message":M,"errors":[{"errorCode":C,"message":M[,"parameterName":P]}]}
std::string api_error_body(std::string_view code, std::string_view message,
                           std::string_view parameter = {});
// {"error":E,"error_description":M,"errors":[{"errorCode":C,"message":M}]}
std::string oauth_error_body(std::string_view error, std::string_view code,
                             std::string_view message);
http_response api_error(int status, std::string_view code, std::string_view message,
                        std::string_view parameter = {});
http_response oauth_error(int status, std::string_view error, std::string_view code,
                          std::string_view message);

// ---- client frames (§3.2)
struct client_frame {
  std::string type;        // "ClientRequest", "Heartbeat", …
  std::string message_id;  // "" when absent
  std::string method;      // ClientRequest only
  std::string path;        // without query
  std::string query;       // raw query: the path's, then the `query` object's, joined by '&'
  std::optional<std::string> body;  // exact bytes of the body element; none: absent, null, ""
};

// Parses one text frame. On failure `out.message_id` holds the client's messageId if it could
// be read, and the error is bad_json, bad_message or unknown_type.
status parse_client_frame(std::string_view text, client_frame& out);

// ---- server frames (§3.3-§3.8)
struct wsc_value {
  std::string token;
  std::int64_t sequence = 0;
};

struct connection_details {
  std::int64_t creation_ms = 0;
  std::size_t max_connections_per_session = 0, recovery_buffer_size = 0, max_active_requests = 0;
  std::int64_t recovery_timeout_s = 0, idle_timeout_s = 0, absolute_timeout_s = 0;
  std::string recovery_state;       // "", "Successful" or "Failed"
  std::string recovery_error_code;  // with "Failed"
};

std::string render_connection_details(std::string_view message_id, const wsc_value& wsc,
                                      const connection_details& d);
// A ClientRequest reply; `wsc` may be null; `body` is JSON text or empty (no body element).
std::string render_reply(std::string_view message_id, int status, const wsc_value* wsc,
                         std::string_view body);
std::string render_heartbeat(std::string_view message_id);
std::string render_error(std::string_view message_id, int status, std::string_view code,
                         std::string_view message);

// ServerNotification = notification_head + notification_shared + notification_tail. The shared
// part ({"uuid","event","timestamp","body":<data byte-exact>) depends on the event only.
std::string notification_shared(const event& e);
std::string notification_head(std::string_view event_id, const wsc_value& wsc);
std::string notification_tail(std::string_view subscription_id, std::string_view owner_id);

// ---- filters (§4.2)
enum class filter_verdict { ok, invalid, forbidden };
struct normalized_filter {
  std::string topic;  // the native topic (valid when verdict is ok)
  filter_verdict verdict = filter_verdict::invalid;
};
// Splits off the query, drops a trailing '/', expands `~` after `account` (tenant) and after
// `extension` (the caller's extension_id; app principals: invalid), refuses wildcards and any
// other `~`, then checks the caller's reach: each account/{id} its own tenant, extensions per
// topic_allowed() (own extension unless the user is admin; apps: any of the tenant).
normalized_filter normalize_filter(std::string_view filter, const principal& who);

// ---- subscription paths and records (§3.5)
enum class sub_path_kind { none, collection, item, renew };
struct sub_path {
  sub_path_kind kind = sub_path_kind::none;
  std::string id;
};
// "/restapi/v1.0/subscription[/{id}[/renew]]", tolerant of '//' and a trailing '/'.
sub_path classify_subscription_path(std::string_view path);

struct subscription_record {
  std::string id;
  std::vector<std::string> event_filters;                     // accepted, `~` expanded
  std::vector<std::pair<std::string, std::string>> disabled;  // {filter, "Invalid"|"Forbidden"}
  std::int64_t creation_ms = 0;
  std::int64_t expires_in_s = 900;
};
// `uri_base`: "http://HOST:PORT/ringcentral" (no trailing '/').
std::string render_subscription(const subscription_record& s, std::string_view uri_base,
                                std::int64_t now_ms);

// ---- wsc tokens (§4.3)
// What a wsc token carries: the core session's resume token, the core seq at that point, the
// session's wsc base and the login session it belongs to.
struct wsc_state {
  std::string resume_token;
  std::uint64_t seq = 0;
  std::uint64_t base = 0;
  std::string login;
  bool operator==(const wsc_state&) const = default;
};

// base64url(payload) "." base64url(first 16 bytes of HMAC-SHA256(derived key, payload)): only
// [A-Za-z0-9_.-], unforgeable without the token key, checked by any node holding it.
class wsc_codec {
 public:
  explicit wsc_codec(std::string_view token_key);
  std::string encode(const wsc_state& s) const;
  std::optional<wsc_state> decode(std::string_view token) const;

  static constexpr std::size_t max_token_size = 1024;

 private:
  hmac_key key_;
};

// Query string helpers.
std::string percent_encode(std::string_view s);

}  // namespace herald::rc
