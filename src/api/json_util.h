// JSON helpers shared by the routers and dialects: the native error body, quoting, field
// readers that name the offending field, and the native rendering of an event (with `data`
// written as its exact bytes). Thread-safe: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/errc.h"
#include "core/event.h"
#include "transport/http_types.h"

namespace herald {

// `"text"` with JSON escaping (Boost.JSON's serializer; printable ASCII is copied as it is).
std::string json_quote(std::string_view s);
// The same, appended to `out` (no temporary string on the publish and delivery paths).
void append_json_quoted(std::string& out, std::string_view s);
// `n` in decimal, appended to `out`.
void append_decimal(std::string& out, std::int64_t n);

// {"error":{"code":…,"message":…}}
std::string error_body(errc code, std::string_view message);
http_response error_response(const error& e);
http_response error_response(errc code, std::string_view message);
http_response json_response(int status, std::string body);
http_response json_response(int status, const boost::json::value& v);

// Parses `text` as JSON: bad_json on failure. With `sp`, the tree is allocated from it (a
// monotonic resource makes parsing and freeing a request's tree cheap; the value must not
// outlive the resource).
result<boost::json::value> parse_json(std::string_view text, boost::json::storage_ptr sp = {});

// Field readers: absent → nullopt; present with the wrong type → bad_message naming `name`.
result<std::optional<std::string>> get_string(const boost::json::object& o, std::string_view name);
result<std::optional<bool>> get_bool(const boost::json::object& o, std::string_view name);
result<std::optional<std::int64_t>> get_int(const boost::json::object& o, std::string_view name);

// The native event object of native.md §3.4, `data` byte-exact.
std::string render_event_json(const event& e);

// Percent-decoded query parameters (first value per name; `+` is a space).
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace herald
