#include "api/json_util.h"

#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "api/native_errors.h"
#include "core/clock.h"

namespace herald {

namespace {
// True when Boost.JSON's serializer writes every byte of `s` as it is: printable ASCII other
// than '"' and '\\'. Anything else (control characters, non-ASCII) goes through the serializer.
bool plain_json_text(std::string_view s) noexcept {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}
}  // namespace

void append_json_quoted(std::string& out, std::string_view s) {
  if (!plain_json_text(s)) {
    out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_decimal(std::string& out, std::int64_t n) {
  char num[24];
  out.append(num, static_cast<std::size_t>(std::to_chars(num, num + sizeof num, n).ptr - num));
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_quoted(out, s);
  return out;
}

std::string error_body(errc code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":\"";
  out += errc_name(code);
  out += "\",\"message\":";
  out += json_quote(message);
  out += "}}";
  return out;
}

http_response error_response(const error& e) {
  http_response r = error_response(e.code, e.message);
  r.cause = e.cause;
  return r;
}

http_response error_response(errc code, std::string_view message) {
  http_response r;
  r.status = errc_http_status(code);
  r.body = error_body(code, message);
  if (code == errc::too_many_requests) r.headers.emplace_back("Retry-After", "1");
  return r;
}

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response json_response(int status, const boost::json::value& v) {
  return json_response(status, boost::json::serialize(v));
}

result<boost::json::value> parse_json(std::string_view text, boost::json::storage_ptr sp) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, std::move(sp));
  if (ec) return error{errc::bad_json, "body is not valid JSON: " + ec.message()};
  return v;
}

result<std::optional<std::string>> get_string(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>{};
  if (!v->is_string()) return error{errc::bad_message, std::string(name) + ": must be a string"};
  return std::optional<std::string>{std::string(v->get_string())};
}

result<std::optional<bool>> get_bool(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<bool>{};
  if (!v->is_bool()) return error{errc::bad_message, std::string(name) + ": must be a boolean"};
  return std::optional<bool>{v->get_bool()};
}

result<std::optional<std::int64_t>> get_int(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>{};
  if (v->is_int64()) return std::optional<std::int64_t>{v->get_int64()};
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return std::optional<std::int64_t>{static_cast<std::int64_t>(v->get_uint64())};
  return error{errc::bad_message, std::string(name) + ": must be an integer"};
}

std::string render_event_json(const event& e) {
  std::string out;
  out.reserve(160 + e.id.size() + e.topic.size() + e.type.size() + e.tenant.size() + e.app.size() +
              e.subject.size() + e.data.size());
  out += "{\"id\":";
  append_json_quoted(out, e.id);
  out += ",\"offset\":";
  append_decimal(out, e.offset);
  out += ",\"topic\":";
  append_json_quoted(out, e.topic);
  out += ",\"type\":";
  append_json_quoted(out, e.type);
  out += ",\"tenant\":";
  append_json_quoted(out, e.tenant);
  if (!e.app.empty()) {
    out += ",\"app\":";
    append_json_quoted(out, e.app);
  }
  if (!e.subject.empty()) {
    out += ",\"subject\":";
    append_json_quoted(out, e.subject);
  }
  out += ",\"time\":\"";
  out += format_rfc3339_ms(e.time_ms);
  out += "\",\"data\":";
  out += e.data;
  out += '}';
  return out;
}

namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string pct_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    const std::size_t amp = std::min(query.find('&', pos), query.size());
    const std::string_view pair = query.substr(pos, amp - pos);
    const std::size_t eq = pair.find('=');
    const std::string key = pct_decode(pair.substr(0, eq));
    if (key == name)
      return eq == std::string_view::npos ? std::string() : pct_decode(pair.substr(eq + 1));
    pos = amp + 1;
  }
  return std::nullopt;
}

}  // namespace herald
