// The smsgw wire (smsgw.md §2-§5) as pure functions: decoding client frames, rendering events,
// message records and errors, checking the reserved event types, and the REST query helpers
// (dates, cursors, phone numbers). No sockets, no store: the socket, the routes and the fuzz
// target all call these. Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/errc.h"
#include "core/event.h"
#include "transport/http_types.h"

namespace herald::smsgw {

// The fixed texts of the wire (outside checks compare them byte for byte).
inline constexpr std::string_view txt_invalid_json = "Invalid JSON";
inline constexpr std::string_view txt_send_auth_first = "Send auth first";
inline constexpr std::string_view txt_invalid_key = "Invalid API key";
inline constexpr std::string_view txt_not_permitted = "API key not permitted";
inline constexpr std::string_view txt_too_many_connections = "Too many connections";
inline constexpr std::string_view txt_too_many_requests = "Too many requests";
inline constexpr std::string_view txt_auth_timeout = "Authentication timeout";
inline constexpr std::string_view txt_revoked = "API key revoked";
inline constexpr std::string_view txt_too_many_messages = "Too many messages";
inline constexpr std::string_view txt_frame_too_big = "Message too big";  // close 1009 reason
inline constexpr std::string_view txt_missing_key = "Missing or invalid API key";
inline constexpr std::string_view txt_not_found = "Not found";
inline constexpr std::string_view txt_message_not_found = "Message not found";

// The event types this dialect reserves and renders.
inline constexpr std::string_view type_status = "sms.status";
inline constexpr std::string_view type_inbound = "sms.inbound";

// What the first client frame asks (§2.1-2.2).
struct auth_frame {
  enum class kind { invalid_json, not_auth, no_credential, api_key, token };
  kind k = kind::invalid_json;
  std::string credential;  // the apiKey (if a string) else the token
};
auth_frame decode_auth(std::string_view text, bool binary);

// Whether a frame after auth is {"type":"ping"} (everything else is read and ignored).
bool is_ping(std::string_view text, bool binary);

// The frame of an sms.status / sms.inbound event (§2.3, §4.2); empty for any other type.
std::string render_event(const event& e);

// The "auth_error" frame for `text`.
std::string auth_error_frame(std::string_view text);

// {"error":"<text>"}: the REST error body (§5).
std::string error_body(std::string_view text);
http_response error_reply(int status, std::string_view text);

// The message record of §5 from a message's latest (retained) event and its first event's time.
std::string render_record(const event& latest, std::int64_t created_ms);
// The record's `status` field of a latest event ("received" for inbound).
std::string record_status(const event& latest);

// The publish rules of §4.1 that need nothing but the draft itself (the app's tenant and the
// first-event conflict are the validator's, which holds the directory and the store). ok for
// types this dialect does not reserve. Errors are bad_message naming the field.
status check_draft(const event_draft& d);

// ^msg_[0-9A-Za-z]{1,64}$
bool valid_message_id(std::string_view s) noexcept;
// ^\+[1-9][0-9]{8,14}$
bool valid_e164(std::string_view s) noexcept;
// Unicode code points of UTF-8 `s` (continuation bytes are not counted).
std::size_t code_points(std::string_view s) noexcept;

// startDate / endDate: RFC 3339, or YYYY-MM-DD (UTC midnight).
std::optional<std::int64_t> parse_date(std::string_view s);

// The position after the last record of a page: (createdAt, tenant, messageId), ordered newest
// first, bound to the query it belongs to by a hash of its other parameters.
struct cursor {
  std::int64_t created_ms = 0;
  std::string tenant;
  std::string message_id;
  std::string query_hash;
};
std::string encode_cursor(const cursor& c);
std::optional<cursor> decode_cursor(std::string_view text);

// "msg_" + 12 random lowercase hex digits.
std::string new_message_id();

}  // namespace herald::smsgw
