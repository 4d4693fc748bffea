// The Zoom wire (zoom.md §3, §4.3), without sockets or state: the client frame decoder, the
// server envelope, the Zoom webhook body an event is rendered to, and the socket URL's query
// values (percent-decoded with `+` kept, §3). Pure functions; the fuzz target drives them
// directly. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/event.h"

namespace herald::zoom {

// What a client frame asks for. Everything but a heartbeat is ignored (§3.8): no reply, no
// close, it only counts as traffic.
enum class client_module : std::uint8_t { heartbeat, ignored };

// A text frame: `{"module":"heartbeat",...}` (extra keys ignored) or the bare text `heartbeat`
// (surrounding whitespace allowed) is a heartbeat; anything else (other modules, non-JSON,
// a `module` that is not a string) is ignored.
client_module decode_client_frame(std::string_view text);

// One server frame (§3.1): {"module":M,"success":S,"content":C,"header":H}, keys in that
// order. `content` is plain text (quoted here); `header_json` a JSON object's text.
std::string envelope(std::string_view module, bool success, std::string_view content,
                     std::string_view header_json = "{}");

// The heartbeat reply (§3.3).
inline constexpr std::string_view heartbeat_reply =
    R"({"module":"heartbeat","success":true,"content":"live","header":{}})";

// An event frame is message_head + quoted content + "," "\"header\":" + header + "}".
inline constexpr std::string_view message_head = R"({"module":"message","success":true,"content":)";

// The event as a Zoom webhook body (§4.3): {"event","event_ts","payload":{"account_id",
// "object"}}, compact, `data` byte-exact; in payload form (data has an object-valued member
// `object`) the payload is account_id followed by data's members in order, minus account_id.
// `data` must be a JSON object's text (the store validated it); anything else is rendered as
// the plain form with `data` as it is.
std::string webhook_body(const event& e);
// webhook_body() as a JSON string literal: what a message frame's `content` holds. This is
// what the dialect's render slot caches (once per event, shared by every socket).
std::string quoted_webhook_body(const event& e);

// The members of a JSON object's text, in order, each as its decoded key and the exact bytes
// of the member (`"key":value`, whitespace inside kept). nullopt when `object_text` is not a
// well-formed object (a bounded scan; never reads past the text).
struct raw_member_span {
  std::string key;
  std::string_view member;  // "key":value as written
  std::string_view value;
};
std::optional<std::vector<raw_member_span>> object_members(std::string_view object_text);

// The percent-decoded value of query parameter `name` (RFC 3986: `+` stays a `+`, §3); the
// first occurrence. nullopt when absent; a malformed escape is kept as written.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

}  // namespace herald::zoom
